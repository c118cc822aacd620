/**
 * What `make` derives for every backend, beyond the conformance suite: the derived `modify`'s local turn-taking and
 * its deadline, on primitives instrumented to count and to lose races. And the error guards, which must recognise
 * errors built by another installed copy of effect-kv.
 */
import { assert, describe, it } from "@effect/vitest"
import {
  isKvBackendError,
  isKvInputError,
  isKvSchemaError,
  isKvStoreError,
  KvBackendError,
  KvInputError,
  KvSchemaError,
  make,
  makeMemoryPrimitives
} from "effect-kv"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"

const increment = (current: string | null) => String(Number(current ?? "0") + 1)

describe("make: the derived modify", () => {
  it.live("a store's own concurrent modify calls on one key take turns: no compareAndSet is ever lost", () =>
    Effect.gen(function*() {
      const { modify: _native, ...memory } = makeMemoryPrimitives()
      let attempts = 0
      let lost = 0
      const store = make({
        ...memory,
        get: (key) => Effect.andThen(Effect.yieldNow, memory.get(key)),
        compareAndSet: (key, expected, next, expiry) =>
          Effect.tap(memory.compareAndSet(key, expected, next, expiry), (won) =>
            Effect.sync(() => {
              attempts++
              if (!won) lost++
            }))
      })
      yield* Effect.forEach(Array.from({ length: 200 }), () => store.modify("k", increment), {
        concurrency: "unbounded",
        discard: true
      })
      assert.strictEqual(yield* store.get("k"), "200")
      assert.strictEqual(lost, 0, "no attempt lost to another fiber of the same store")
      assert.strictEqual(attempts, 200)
      yield* Effect.forEach(["a", "b", "c"], (key) => store.modify(key, increment), { concurrency: "unbounded" })
      assert.deepStrictEqual(yield* store.getMany(["a", "b", "c"]), ["1", "1", "1"], "other keys do not wait")
    }))

  it.live("a modify that keeps losing to other writers fails with Conflict at its deadline, writing nothing", () =>
    Effect.gen(function*() {
      const memory = makeMemoryPrimitives()
      let calls = 0
      const store = make({
        ...memory,
        modify: undefined,
        modifyTimeout: "200 millis",
        // Another process always changes the key between our read and our write.
        compareAndSet: () => Effect.succeed(false)
      })
      yield* store.set("k", "1")
      const started = Date.now()
      const error = yield* Effect.flip(store.modify("k", (current) => (calls++, increment(current))))
      const elapsed = Date.now() - started
      assert.instanceOf(error, KvBackendError)
      assert.strictEqual((error as KvBackendError).reason, "Conflict")
      assert.include(error.message, "modify")
      assert.isAbove(calls, 3, "it retried")
      assert.isAtLeast(elapsed, 150, "it kept trying until about its deadline")
      assert.strictEqual(yield* store.get("k"), "1", "nothing written")
    }))
})

describe("error guards", () => {
  it.effect("recognise the errors of a second copy of the package, which instanceof does not", () =>
    Effect.gen(function*() {
      // The query string makes the module runner load the contract module a second time, as a second installed copy
      // of effect-kv would be: its own classes, its own prototypes.
      const secondCopy = "../src/BaseKvStore.ts?second-copy"
      const second: typeof import("../src/BaseKvStore.ts") = yield* Effect.promise(() =>
        import(/* @vite-ignore */ secondCopy)
      )
      assert.notStrictEqual(second.KvInputError, KvInputError, "a separate copy of the module")
      const input = new second.KvInputError({
        operation: "get",
        argument: "key",
        reason: "Empty",
        key: "",
        message: "get: the key must be a non-empty string"
      })
      const backend = new second.KvBackendError({
        operation: "get",
        reason: "Unavailable",
        key: "k",
        message: "get(\"k\"): connection refused"
      })
      assert.isFalse(input instanceof KvInputError, "instanceof fails across copies")
      assert.isFalse(backend instanceof KvBackendError, "instanceof fails across copies")
      assert.isTrue(isKvStoreError(input))
      assert.isTrue(isKvInputError(input))
      assert.isFalse(isKvBackendError(input))
      assert.isTrue(isKvStoreError(backend))
      assert.isTrue(isKvBackendError(backend))
      assert.isFalse(isKvInputError(backend))
      // And the other way round: the second copy's guards know this copy's errors.
      assert.isTrue(second.isKvBackendError(new KvBackendError({ ...backend })))
    }))

  it("go by the type id, not by the class or the tag alone", () => {
    // Another class, as a copy of another version might declare it, carrying the type id.
    class ForeignInputError extends Error {
      readonly _tag = "KvInputError"
      readonly "~effect-kv/KvStoreError" = "~effect-kv/KvStoreError"
    }
    assert.isTrue(isKvInputError(new ForeignInputError("refused")))
    assert.isTrue(isKvStoreError(new ForeignInputError("refused")))
    assert.isFalse(isKvBackendError(new ForeignInputError("refused")))
    // A tag alone is not enough: any library may tag an error "KvInputError".
    assert.isFalse(isKvInputError({ _tag: "KvInputError", message: "look-alike" }))
    assert.isFalse(isKvStoreError(new Error("plain")))
    for (const value of [null, undefined, "KvInputError", 42]) assert.isFalse(isKvStoreError(value))
  })

  it.effect("recognise a KvSchemaError of a second copy of the package", () =>
    Effect.gen(function*() {
      const secondCopy = "../src/SchemaStore.ts?second-copy"
      const second: typeof import("../src/SchemaStore.ts") = yield* Effect.promise(() =>
        import(/* @vite-ignore */ secondCopy)
      )
      const { issue } = yield* Effect.flip(Schema.decodeUnknownEffect(Schema.Number)("not a number"))
      const error = new second.KvSchemaError({
        operation: "get",
        key: "k",
        direction: "decode",
        issue,
        message: "get(\"k\"): not a record"
      })
      assert.isFalse(error instanceof KvSchemaError, "instanceof fails across copies")
      assert.isTrue(isKvSchemaError(error))
      assert.isFalse(isKvStoreError(error), "a schema error is not a store error")
      assert.isFalse(isKvSchemaError({ _tag: "KvSchemaError" }))
    }))
})
