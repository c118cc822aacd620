import { assert, describe, it } from "@effect/vitest"
import {
  type BaseKvStore,
  BaseKvStoreService,
  KvInputError,
  KvSchemaError,
  layerWithPrefix,
  makeMemoryBaseKvStore,
  memoryKvStore,
  scoped,
  toSchemaStore,
  withPrefix
} from "effect-kv"
import { conformance } from "effect-kv/testing"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"

const viewOf = (prefix: string) => Layer.sync(BaseKvStoreService)(() => withPrefix(makeMemoryBaseKvStore(), prefix))

// A view is a store: the whole suite, unchanged, on views over the memory store.
conformance("withPrefix view over memory", viewOf("tenant:1:"), { clock: "test" })
conformance(
  "nested withPrefix views over memory",
  Layer.sync(BaseKvStoreService)(() => withPrefix(withPrefix(makeMemoryBaseKvStore(), "a:"), "b:")),
  { clock: "test" }
)
conformance("layerWithPrefix over memoryKvStore", Layer.provide(layerWithPrefix("app:"), memoryKvStore), {
  clock: "test"
})

describe("withPrefix", () => {
  it.effect("stores keys under the prefix and never touches keys outside it", () =>
    Effect.gen(function*() {
      const store = makeMemoryBaseKvStore()
      yield* store.setMany([["other:1", "x"], ["tenant:1", "not under tenant:1:"], ["tenant:10:a", "y"]])
      const tenant = withPrefix(store, "tenant:1:")
      yield* tenant.set("upload:1", "a")
      yield* tenant.setMany([["upload:2", "b"], ["upload:3", "c"]])
      assert.strictEqual(yield* store.get("tenant:1:upload:1"), "a", "stored as prefix + key")
      assert.deepStrictEqual(yield* tenant.list(""), ["upload:1", "upload:2", "upload:3"])
      assert.deepStrictEqual((yield* tenant.listPage("upload:", { limit: 2 })).keys, ["1", "2"])
      assert.strictEqual(yield* tenant.count(""), 3)
      assert.strictEqual(yield* tenant.clear(""), 3, "clear(\"\") clears the view only")
      assert.deepStrictEqual(yield* store.list(""), ["other:1", "tenant:1", "tenant:10:a"])
      const nested = withPrefix(withPrefix(store, "a:"), "b:")
      yield* nested.set("k", "v")
      assert.deepStrictEqual(yield* store.list("a:"), ["b:k"])
      assert.strictEqual(withPrefix(store, ""), store, "an empty prefix is the store itself")
      assert.deepStrictEqual(yield* withPrefix("tenant:10:")(store).list(""), ["a"], "the dual form")
    }))

  it.effect("the caller's key is checked before it is prefixed", () =>
    Effect.gen(function*() {
      const tenant = withPrefix(makeMemoryBaseKvStore(), "t:")
      const error = yield* Effect.flip(tenant.get(""))
      assert.instanceOf(error, KvInputError)
      assert.strictEqual((error as KvInputError).reason, "Empty", "\"\" is refused, not read as the key \"t:\"")
      assert.instanceOf(yield* Effect.flip(tenant.list(42 as unknown as string)), KvInputError)
      assert.instanceOf(yield* Effect.flip(tenant.listPage(42 as unknown as string, { limit: 1 })), KvInputError)
    }))

  it.effect("works over a store not built by make, through its public operations", () =>
    Effect.gen(function*() {
      const memory = makeMemoryBaseKvStore()
      const plain: BaseKvStore = { ...memory }
      const view = withPrefix(plain, "v:")
      yield* view.setMany([["a", "1"], ["b", "2"]], { ttl: "1 hour" })
      assert.strictEqual(yield* view.modify("a", (v) => v + "!"), "1!")
      assert.deepStrictEqual(yield* memory.list(""), ["v:a", "v:b"])
      const first = yield* view.listPage("", { limit: 1 })
      assert.deepStrictEqual((yield* view.listPage("", { limit: 1, cursor: first.cursor })).keys, ["b"])
      const error = yield* Effect.flip(view.modify("a", () => 1 as unknown as string))
      assert.deepStrictEqual([error._tag, (error as KvInputError).reason], ["KvInputError", "NotAString"])
      assert.strictEqual(yield* view.clear(""), 2)
    }))

  it.effect("watch sees the namespace only, with the view's keys, whoever writes", () =>
    Effect.gen(function*() {
      const memory = makeMemoryBaseKvStore()
      const tenant = withPrefix(memory, "t:")
      const events = yield* Effect.forkChild(Stream.runCollect(Stream.take(tenant.watch("u:"), 3)))
      yield* Effect.yieldNow
      yield* memory.set("u:1", "outside the namespace")
      yield* memory.set("t:u:1", "through the base store")
      yield* memory.set("t:x:1", "outside the watched prefix")
      yield* tenant.set("u:2", "through the view")
      yield* tenant.delete("u:1")
      assert.deepStrictEqual(yield* Fiber.join(events), [
        { _tag: "Set", key: "1", value: "through the base store" },
        { _tag: "Set", key: "2", value: "through the view" },
        { _tag: "Delete", key: "1" }
      ])
    }))

  it.effect("watch of a view over a store not built by make runs on the store's own watch", () =>
    Effect.gen(function*() {
      const memory = makeMemoryBaseKvStore()
      const view = withPrefix({ ...memory }, "v:")
      const events = yield* Effect.forkChild(
        Stream.runCollect(Stream.takeUntil(view.watch(""), (event) => event._tag === "Delete"))
      )
      // Such a view cannot tell when the store's watch is live: write until it is.
      const writer = yield* Effect.forkChild(
        Effect.forever(Effect.andThen(memory.set("w:1", "outside"), memory.set("v:1", "a")))
      )
      while ((yield* memory.get("v:1")) === null) yield* Effect.yieldNow
      yield* Effect.repeat(Effect.yieldNow, { times: 50 })
      yield* Fiber.interrupt(writer)
      yield* view.delete("1")
      const seen = yield* Fiber.join(events)
      assert.isAbove(seen.length, 1)
      assert.deepStrictEqual(seen.at(-1), { _tag: "Delete", key: "1" })
      for (const event of seen.slice(0, -1)) assert.deepStrictEqual(event, { _tag: "Set", key: "1", value: "a" })
    }))

  it.effect("a prefix that is not a valid prefix: withPrefix throws, layerWithPrefix fails, with KvInputError", () =>
    Effect.gen(function*() {
      for (const bad of [undefined, 42, "\uD800", "p".repeat(1025)]) {
        const thrown = (() => {
          try {
            withPrefix(makeMemoryBaseKvStore(), bad as string)
          } catch (error) {
            return error
          }
        })()
        assert.instanceOf(thrown, KvInputError, String(bad))
        assert.deepInclude(thrown, { operation: "options", argument: "prefix", reason: "InvalidOption" })
        assert.match((thrown as KvInputError).message, /^effect-kv withPrefix: prefix must be/)
        const failed = yield* Effect.flip(
          Effect.scoped(Layer.build(Layer.provide(layerWithPrefix(bad as string), memoryKvStore)))
        )
        assert.instanceOf(failed, KvInputError)
        assert.deepInclude(failed, {
          operation: "options",
          argument: "prefix",
          reason: "InvalidOption",
          message: (thrown as KvInputError).message
        })
      }
    }))
})

describe("scoped", () => {
  it.effect("a scoped view's keys are deleted when its scope closes", () =>
    Effect.gen(function*() {
      const store = makeMemoryBaseKvStore()
      yield* store.set("kept", "v")
      const scope = yield* Scope.make()
      const session = yield* Scope.provide(scoped(store), scope)
      const other = yield* Scope.provide(scoped(store), scope)
      yield* session.setMany([["cart", "[]"], ["user", "alice"]])
      yield* other.set("cart", "[1]")
      assert.deepStrictEqual(yield* session.list(""), ["cart", "user"], "each scoped view has a prefix of its own")
      assert.strictEqual(yield* other.get("cart"), "[1]")
      assert.strictEqual(yield* store.count(""), 4)
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(yield* store.list(""), ["kept"])
    }))

  it.effect("a scoped view watches inside its namespace, and sees its keys deleted when the scope closes", () =>
    Effect.gen(function*() {
      const store = makeMemoryBaseKvStore()
      const scope = yield* Scope.make()
      const session = yield* Scope.provide(scoped(store), scope)
      const other = yield* Scope.provide(scoped(store), scope)
      const events = yield* Effect.forkChild(Stream.runCollect(Stream.take(session.watch(""), 3)))
      yield* Effect.yieldNow
      yield* other.set("cart", "not this session's")
      yield* session.set("cart", "[]")
      yield* session.set("user", "alice")
      yield* Scope.close(scope, Exit.void)
      const [first, ...deleted] = yield* Fiber.join(events)
      assert.deepStrictEqual(first, { _tag: "Set", key: "cart", value: "[]" })
      assert.sameDeepMembers(deleted, [{ _tag: "Set", key: "user", value: "alice" }, { _tag: "Delete", key: "cart" }])
    }))

  it.effect("a given prefix is used as is", () =>
    Effect.gen(function*() {
      const store = makeMemoryBaseKvStore()
      yield* Effect.scoped(Effect.flatMap(scoped(store, "request:7:"), (view) =>
        Effect.gen(function*() {
          yield* view.set("a", "1")
          assert.strictEqual(yield* store.get("request:7:a"), "1")
        })))
      assert.deepStrictEqual(yield* store.list(""), [])
      assert.instanceOf(yield* Effect.flip(Effect.scoped(scoped(store, ""))), KvInputError)
    }))

  it.effect("a failing clear is logged as a warning and does not fail the scope", () =>
    Effect.gen(function*() {
      const memory = makeMemoryBaseKvStore()
      const failing = { ...memory, clear: () => Effect.die(new Error("backend gone")) }
      const logs: Array<string> = []
      const capture = Logger.make(({ logLevel, message }) => logs.push(`${logLevel}: ${String(message)}`))
      const exit = yield* Effect.exit(Effect.scoped(Effect.flatMap(scoped(failing), (view) => view.set("a", "1"))))
        .pipe(Effect.provide(Logger.layer([capture])))
      assert.isTrue(Exit.isSuccess(exit), "closing the scope succeeded")
      assert.lengthOf(logs.filter((line) => line.startsWith("Warn") && line.includes("could not clear")), 1, `${logs}`)
    }))
})

const Upload = Schema.Struct({
  id: Schema.String,
  offset: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)),
  length: Schema.NullOr(Schema.Int),
  createdAt: Schema.Date
})

describe("toSchemaStore", () => {
  const record = { id: "a1", offset: 0, length: 1024, createdAt: new Date("2026-12-01T10:00:00Z") }

  it.effect("stores records as JSON and reads them back typed, Dates included", () =>
    Effect.gen(function*() {
      const store = makeMemoryBaseKvStore()
      const uploads = toSchemaStore(store, Upload)
      yield* uploads.set("upload:a1", record)
      const json = JSON.parse((yield* store.get("upload:a1"))!)
      assert.deepStrictEqual(json, { ...record, createdAt: "2026-12-01T10:00:00.000Z" }, "plain JSON in the store")
      assert.deepStrictEqual(yield* uploads.get("upload:a1"), record)
      assert.strictEqual(yield* uploads.get("upload:none"), null)
      yield* uploads.setMany([["upload:b2", { ...record, id: "b2" }]])
      assert.deepStrictEqual((yield* uploads.getMany(["upload:b2", "upload:none"])).map((u) => u?.id ?? null), [
        "b2",
        null
      ])
      const advanced = yield* uploads.modify("upload:a1", (u) => u && { ...u, offset: u.offset + 512 })
      assert.strictEqual(advanced?.offset, 512)
      assert.isTrue(yield* uploads.compareAndSet("upload:a1", advanced, { ...advanced!, offset: 1024 }))
      assert.isFalse(yield* uploads.compareAndSet("upload:a1", advanced, { ...advanced!, offset: 9 }), "stale")
      assert.isFalse(yield* uploads.setIfAbsent("upload:a1", record))
      assert.deepStrictEqual(yield* uploads.list("upload:"), ["a1", "b2"])
      yield* Effect.forEach(Array.from({ length: 200 }), () =>
        uploads.modify("upload:b2", (u) => u && { ...u, offset: u.offset + 1 }), {
        concurrency: "unbounded",
        discard: true
      })
      assert.strictEqual((yield* uploads.get("upload:b2"))?.offset, 200, "typed modify loses no update")
    }))

  it.effect("stores exactly the string the schema's own JSON codec writes, and reads back what it reads", () =>
    Effect.gen(function*() {
      // toSchemaStore calls JSON.parse/JSON.stringify itself around the schema's codec (faster than fromJsonString):
      // the strings must be the codec's to the byte, or a compareAndSet against a record another writer stored fails.
      const Rich = Schema.Struct({
        name: Schema.String,
        at: Schema.Date,
        size: Schema.BigInt,
        tags: Schema.Array(Schema.String),
        parts: Schema.NullOr(Schema.Array(Schema.Struct({ n: Schema.Number, ok: Schema.Boolean }))),
        kind: Schema.Literals(["a", "b"]),
        note: Schema.optionalKey(Schema.String),
        index: Schema.ReadonlyMap(Schema.String, Schema.Number)
      })
      const reference = Schema.fromJsonString(Schema.toCodecJson(Rich))
      const values: ReadonlyArray<typeof Rich.Type> = [
        {
          name: "é \"quoted\" \u2028",
          at: new Date(0),
          size: 12345678901234567890n,
          tags: [],
          parts: null,
          kind: "a",
          index: new Map()
        },
        {
          name: "",
          at: new Date("2026-12-05T12:00:00.123Z"),
          size: -1n,
          tags: ["x", "y"],
          parts: [{ n: 1.5, ok: true }, { n: -0, ok: false }],
          kind: "b",
          note: "present",
          index: new Map([["k", 1], ["j", 2]])
        }
      ]
      const store = makeMemoryBaseKvStore()
      const typed = toSchemaStore(store, Rich)
      for (const [i, value] of values.entries()) {
        yield* typed.set(`rich:${i}`, value)
        const stored = (yield* store.get(`rich:${i}`))!
        assert.strictEqual(stored, Schema.encodeSync(reference)(value), "the codec's own string")
        assert.deepStrictEqual(yield* typed.get(`rich:${i}`), Schema.decodeSync(reference)(stored))
        assert.isTrue(yield* typed.compareAndSet(`rich:${i}`, value, { ...value, kind: "b" }), "matches its own write")
      }
    }))

  it.effect("watch decodes records; a value that does not decode is an Invalid event and the stream goes on", () =>
    Effect.gen(function*() {
      const store = makeMemoryBaseKvStore()
      const uploads = toSchemaStore(store, Upload)
      const events = yield* Effect.forkChild(Stream.runCollect(Stream.take(uploads.watch("upload:"), 4)))
      yield* Effect.yieldNow
      yield* uploads.set("upload:a1", record)
      yield* store.set("upload:bad", "{\"id\": 1}")
      yield* uploads.delete("upload:a1")
      yield* uploads.set("upload:b2", { ...record, id: "b2" })
      const [set, invalid, deleted, after] = yield* Fiber.join(events)
      assert.deepStrictEqual(set, { _tag: "Set", key: "a1", value: record }, "a decoded record, Date included")
      assert.strictEqual(invalid._tag, "Invalid")
      if (invalid._tag === "Invalid") {
        assert.strictEqual(invalid.key, "bad")
        assert.instanceOf(invalid.error, KvSchemaError)
        assert.deepStrictEqual([invalid.error.operation, invalid.error.key, invalid.error.direction], [
          "watch",
          "upload:bad",
          "decode"
        ])
      }
      assert.deepStrictEqual(deleted, { _tag: "Delete", key: "a1" })
      assert.deepStrictEqual(after, { _tag: "Set", key: "b2", value: { ...record, id: "b2" } })
    }))

  it.effect("a record that does not fit the schema fails with KvSchemaError and writes nothing", () =>
    Effect.gen(function*() {
      const store = makeMemoryBaseKvStore()
      const uploads = toSchemaStore(Upload)(store)
      const bad = { ...record, offset: -1 }
      for (
        const effect of [
          uploads.set("upload:x", bad),
          uploads.setIfAbsent("upload:x", bad),
          uploads.setMany([["upload:y", record], ["upload:x", bad]]),
          uploads.compareAndSet("upload:x", null, bad),
          uploads.modify("upload:x", () => bad)
        ]
      ) {
        const error = yield* Effect.flip(effect)
        assert.instanceOf(error, KvSchemaError)
        assert.strictEqual((error as KvSchemaError).direction, "encode")
        assert.strictEqual((error as KvSchemaError).key, "upload:x")
        assert.include(error.message, "offset")
      }
      assert.deepStrictEqual(yield* store.list(""), [], "nothing written, the valid half of the batch neither")
    }))

  it.effect("a stored value that does not decode fails with KvSchemaError naming the key", () =>
    Effect.gen(function*() {
      const store = makeMemoryBaseKvStore()
      yield* store.setMany([["upload:old", JSON.stringify({ id: "old", offset: "12" })], ["upload:junk", "{not json"]])
      const uploads = toSchemaStore(store, Upload)
      for (const key of ["upload:old", "upload:junk"]) {
        const error = yield* Effect.flip(uploads.get(key))
        assert.instanceOf(error, KvSchemaError)
        assert.deepStrictEqual([(error as KvSchemaError).direction, (error as KvSchemaError).key], ["decode", key])
      }
      const fromModify = yield* Effect.flip(uploads.modify("upload:old", (u) => u))
      assert.instanceOf(fromModify, KvSchemaError)
      assert.strictEqual(yield* store.get("upload:old"), JSON.stringify({ id: "old", offset: "12" }), "untouched")
      assert.instanceOf(yield* Effect.flip(uploads.getMany(["upload:junk"])), KvSchemaError)
    }))
})
