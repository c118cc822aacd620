/**
 * The ordered index beyond the conformance suite, on real servers: a model-based churn test comparing its listings
 * with a SCAN listing under every kind of write and expiry, expired keys leaving the index without being read, a
 * namespace written without the index being indexed on first use, what writers that bypass the index do (and how a
 * rebuild repairs it), and the options it refuses.
 */
import { assert, describe, it } from "@effect/vitest"
import { type BaseKvStore, KvInputError } from "effect-kv"
import { layerRedis, layerRedisConfig, type LayerRedisOptions, makeRedisBaseKvStore } from "effect-kv/redis"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import * as fc from "fast-check"
import { createClient, createCluster } from "redis"
import { buildStore, rootNodes, uniqueNamespace, useRedisCluster, useRedisServer } from "./support/fixtures.ts"

const server = useRedisServer()
const cluster = useRedisCluster()

interface Target {
  readonly name: string
  readonly options: () => LayerRedisOptions
  /** A namespace the target accepts for the index: one hash slot on a cluster. */
  readonly namespace: () => string
}

const targets: ReadonlyArray<Target> = [
  { name: "standalone", options: () => ({ url: server().url }), namespace: uniqueNamespace },
  {
    name: "cluster",
    options: () => ({ cluster: { rootNodes: rootNodes(cluster()) } }),
    namespace: () => `{${uniqueNamespace()}}`
  }
]

const clients = ["node-redis", "ioredis"] as const

/** A node-redis client beside the store: to look at the index's keys and to write as an outside writer would. */
interface Raw {
  readonly command: (route: string, args: ReadonlyArray<string | Buffer>) => Promise<unknown>
  /** The Redis name of one of the index's keys. */
  readonly indexKey: (ns: string, suffix: "index" | "expiry" | "ready") => Buffer
  /** A plain store (no index) on the same client and namespace: its `list` is a SCAN of the namespace. */
  readonly plain: (ns: string) => BaseKvStore
}

const rawClient = (options: LayerRedisOptions): Effect.Effect<Raw, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = options.cluster !== undefined
        ? createCluster({ rootNodes: options.cluster.rootNodes.map((url) => ({ url })) })
        : createClient({ url: options.url! })
      client.on("error", () => undefined)
      await client.connect()
      return client
    }),
    (client) => Effect.promise(() => client.close())
  ).pipe(Effect.map((client): Raw => ({
    command: (route, args) =>
      options.cluster !== undefined
        ? (client as any).sendCommand(route, false, args)
        : (client as any).sendCommand(args),
    indexKey: (ns, suffix) => Buffer.concat([Buffer.from(ns), Buffer.from([0xff]), Buffer.from(suffix)]),
    plain: (ns) => makeRedisBaseKvStore({ redis: client as any, keyPrefix: ns })
  })))

/** The number of entries in the index. */
const indexSize = (raw: Raw, ns: string) =>
  Effect.promise(() => raw.command(ns, ["ZCARD", raw.indexKey(ns, "index")]).then((reply) => Number(reply)))

/** Waits until Redis's own clock has passed `ms` (Unix milliseconds): a ttl has run out on the server. */
const untilServerTime = (raw: Raw, ns: string, ms: number) =>
  Effect.gen(function*() {
    while (true) {
      const [seconds, micros] = (yield* Effect.promise(() => raw.command(ns, ["TIME"]))) as [string, string]
      if (Number(seconds) * 1000 + Number(micros) / 1000 > ms) return
      yield* Effect.sleep("2 millis")
    }
  })

const serverTime = (raw: Raw, ns: string) =>
  Effect.map(
    Effect.promise(() => raw.command(ns, ["TIME"])),
    (reply) => Number((reply as Array<string>)[0]) * 1000 + Number((reply as Array<string>)[1]) / 1000
  )

// --- churn: random writes of every kind, then the index's listings against SCAN's ---

const unit = fc.constantFrom("a", "b", ":", "é", "\uE000", "\uFF5E", "\uFFFF", "😀", "\u{10FFFF}")
const keyArb = fc.string({ unit, minLength: 1, maxLength: 3 })
const prefixes = ["", "a", "b", "a:", "\uFF5E", "😀", "\uE000", "é"]
const valueArb = fc.string({ maxLength: 4 })
/** Short ttls run out during a sequence; long ones never do. */
const ttlArb = fc.option(fc.oneof(fc.integer({ min: 1, max: 30 }), fc.constant(600_000)), { nil: undefined })

type Step =
  | { readonly _tag: "set"; readonly key: string; readonly value: string; readonly ttl: number | undefined }
  | { readonly _tag: "setKeepTtl"; readonly key: string; readonly value: string }
  | { readonly _tag: "setIfAbsent"; readonly key: string; readonly value: string; readonly ttl: number | undefined }
  | {
    readonly _tag: "compareAndSet"
    readonly key: string
    readonly expected: string | null
    readonly next: string | null
    readonly ttl: number | undefined
  }
  | { readonly _tag: "modify"; readonly key: string; readonly ttl: number | undefined }
  | { readonly _tag: "delete"; readonly key: string }
  | {
    readonly _tag: "setMany"
    readonly entries: ReadonlyArray<readonly [string, string]>
    readonly ttl: number | undefined
  }
  | { readonly _tag: "deleteMany"; readonly keys: ReadonlyArray<string> }
  | { readonly _tag: "clear"; readonly prefix: string }
  | { readonly _tag: "check" }

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { arbitrary: fc.record({ _tag: fc.constant("set"), key: keyArb, value: valueArb, ttl: ttlArb }), weight: 5 },
  fc.record({ _tag: fc.constant("setKeepTtl"), key: keyArb, value: valueArb }),
  fc.record({ _tag: fc.constant("setIfAbsent"), key: keyArb, value: valueArb, ttl: ttlArb }),
  fc.record({
    _tag: fc.constant("compareAndSet"),
    key: keyArb,
    expected: fc.option(valueArb, { nil: null }),
    next: fc.option(valueArb, { nil: null }),
    ttl: ttlArb
  }),
  fc.record({ _tag: fc.constant("modify"), key: keyArb, ttl: ttlArb }),
  { arbitrary: fc.record({ _tag: fc.constant("delete"), key: keyArb }), weight: 2 },
  fc.record({
    _tag: fc.constant("setMany"),
    entries: fc.uniqueArray(fc.tuple(keyArb, valueArb), { selector: ([key]) => key, maxLength: 4 }),
    ttl: ttlArb
  }),
  fc.record({ _tag: fc.constant("deleteMany"), keys: fc.uniqueArray(keyArb, { maxLength: 4 }) }),
  fc.record({ _tag: fc.constant("clear"), prefix: fc.constantFrom(...prefixes) }),
  { arbitrary: fc.constant({ _tag: "check" as const }), weight: 2 }
)

const withTtl = (ttl: number | undefined) => ttl === undefined ? undefined : { ttl }

const apply = (store: BaseKvStore, step: Step): Effect.Effect<unknown, unknown> => {
  switch (step._tag) {
    case "set":
      return store.set(step.key, step.value, withTtl(step.ttl))
    case "setKeepTtl":
      return store.set(step.key, step.value, { keepTtl: true })
    case "setIfAbsent":
      return store.setIfAbsent(step.key, step.value, withTtl(step.ttl))
    case "compareAndSet":
      return store.compareAndSet(step.key, step.expected, step.next, withTtl(step.ttl))
    case "modify":
      return store.modify(step.key, (current) => current === null ? "1" : `${current}+`, withTtl(step.ttl))
    case "delete":
      return store.delete(step.key)
    case "setMany":
      return store.setMany(step.entries, withTtl(step.ttl))
    case "deleteMany":
      return store.deleteMany(step.keys)
    case "clear":
      return store.clear(step.prefix)
    case "check":
      return Effect.void
  }
}

/** Every listing of the index against the plain store's SCAN listing of the same namespace, at one moment. */
const compare = (indexed: BaseKvStore, plain: BaseKvStore, label: string) =>
  Effect.gen(function*() {
    for (const prefix of prefixes) {
      const expected = yield* plain.list(prefix)
      const what = `${label}, prefix ${JSON.stringify(prefix)}`
      // count first: a listing drops the entries of keys it finds gone, which would hide a count that does not.
      assert.strictEqual(yield* indexed.count(prefix), expected.length, `count: ${what}`)
      assert.deepStrictEqual(yield* indexed.list(prefix), expected, `list: ${what}`)
      const paged: Array<string> = []
      let cursor: string | null = null
      do {
        const page: { keys: ReadonlyArray<string>; cursor: string | null } = yield* indexed.listPage(prefix, {
          limit: 2,
          cursor
        })
        paged.push(...page.keys)
        cursor = page.cursor
      } while (cursor !== null)
      assert.deepStrictEqual(paged, expected, `listPage: ${what}`)
    }
  })

describe("redis ordered index: churn against SCAN", () => {
  for (const target of targets) {
    for (const client of clients) {
      it.live(
        `${target.name}, ${client}: listings, counts and pages equal SCAN's after every kind of write`,
        () =>
          Effect.gen(function*() {
            const raw = yield* rawClient(target.options())
            let run = 0
            yield* Effect.promise(() =>
              fc.assert(
                fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 25 }), (steps) =>
                  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
                    const ns = target.namespace()
                    const indexed = yield* buildStore(
                      layerRedis({ ...target.options(), client, keyPrefix: ns, orderedIndex: true })
                    )
                    const plain = raw.plain(ns)
                    // The latest moment a short ttl written so far runs out, on the server's clock.
                    let expiresBy = 0
                    for (const [i, step] of steps.entries()) {
                      const result = yield* Effect.result(apply(indexed, step))
                      if (Result.isFailure(result)) {
                        assert.fail(`step ${i} ${JSON.stringify(step)}: ${result.failure}`)
                      }
                      const ttl = "ttl" in step ? step.ttl : undefined
                      if (ttl !== undefined && ttl < 1000) {
                        expiresBy = Math.max(expiresBy, (yield* serverTime(raw, ns)) + ttl + 1)
                      }
                      if (step._tag === "check") {
                        // Some short ttls may be running out right now; compare once they all have.
                        yield* untilServerTime(raw, ns, expiresBy)
                        yield* compare(indexed, plain, `run ${run}, after step ${i}`)
                      }
                    }
                    yield* untilServerTime(raw, ns, expiresBy)
                    yield* compare(indexed, plain, `run ${run}, at the end`)
                    // The listings swept every expired key out of the index: it holds exactly the live keys.
                    assert.strictEqual(yield* indexSize(raw, ns), (yield* plain.list("")).length, "entries = live keys")
                    run++
                  })))),
                { numRuns: 40 }
              )
            )
          }),
        120_000
      )
    }
  }
})

describe("redis ordered index: the churn's comparison can fail", () => {
  it.live("it catches an index that missed a write and one that missed a delete", () =>
    Effect.gen(function*() {
      const ns = uniqueNamespace()
      const raw = yield* rawClient({ url: server().url })
      const indexed = yield* buildStore(layerRedis({ url: server().url, keyPrefix: ns, orderedIndex: true }))
      const plain = raw.plain(ns)
      yield* indexed.set("a", "1")
      yield* compare(indexed, plain, "in step")
      // Writes that bypass the index, as a broken write script would leave it.
      yield* plain.set("b", "1")
      assert.isTrue(Exit.isFailure(yield* Effect.exit(compare(indexed, plain, "missed write"))))
      yield* plain.delete("b")
      yield* plain.delete("a")
      assert.isTrue(Exit.isFailure(yield* Effect.exit(compare(indexed, plain, "missed delete"))))
    }))
})

describe("redis ordered index: expiry", () => {
  it.live("keys that expire leave the index on later writes, without anyone reading them", () =>
    Effect.gen(function*() {
      const ns = uniqueNamespace()
      const raw = yield* rawClient({ url: server().url })
      const store = yield* buildStore(layerRedis({ url: server().url, keyPrefix: ns, orderedIndex: true }))
      yield* store.setMany([["short:1", "a"], ["short:2", "b"]], { ttl: 20 })
      yield* store.set("long", "c")
      assert.strictEqual(yield* indexSize(raw, ns), 3)
      yield* untilServerTime(raw, ns, (yield* serverTime(raw, ns)) + 25)
      // A write of another key sweeps them; nothing read short:1 or short:2.
      yield* store.set("other", "d")
      assert.strictEqual(yield* indexSize(raw, ns), 2, "the two expired keys left the index")
      const expiries = yield* Effect.promise(() => raw.command(ns, ["ZCARD", raw.indexKey(ns, "expiry")]))
      assert.strictEqual(Number(expiries), 0, "and the expiry set")
      assert.deepStrictEqual(yield* store.list(""), ["long", "other"])
    }))
})

describe("redis ordered index: a namespace written without it", () => {
  for (const target of targets) {
    it.live(
      `${target.name}: indexed on first use, stale and foreign entries dropped, rebuilt when the marker goes`,
      () =>
        Effect.gen(function*() {
          const ns = target.namespace()
          const raw = yield* rawClient(target.options())
          const plain = raw.plain(ns)
          const keys = Array.from({ length: 2500 }, (_, i) => `k:${String(i).padStart(5, "0")}`)
          for (let i = 0; i < keys.length; i += 500) {
            yield* plain.setMany(keys.slice(i, i + 500).map((key) => [key, "v"]))
          }
          yield* plain.set("ttl", "v", { ttl: 600_000 })
          const store = yield* buildStore(layerRedis({ ...target.options(), keyPrefix: ns, orderedIndex: true }))
          assert.strictEqual(yield* store.count(""), keys.length + 1, "every key written without the index is counted")
          assert.deepStrictEqual(yield* store.list("k:"), keys.map((key) => key.slice(2)))
          const expiries = yield* Effect.promise(() => raw.command(ns, ["ZCARD", raw.indexKey(ns, "expiry")]))
          assert.strictEqual(Number(expiries), 1, "the rebuild recorded the key's expiry")

          // A writer that bypasses the index (here a store without it): the index does not see what it does...
          yield* plain.set("outside", "v")
          yield* plain.delete("k:00000")
          assert.notInclude(yield* store.list(""), "outside", "a key written outside the index is not listed")
          assert.include(yield* store.list(""), "k:00000", "a key deleted outside the index is still listed")

          // ...until the marker is deleted: the next indexed operation rebuilds the index from a SCAN.
          yield* Effect.promise(() => raw.command(ns, ["DEL", raw.indexKey(ns, "ready")]))
          assert.include(yield* store.list(""), "outside")
          assert.notInclude(yield* store.list(""), "k:00000")
          assert.strictEqual(yield* store.count(""), keys.length + 1)

          // The plain SCAN listing does not mistake the index's own keys for store keys.
          assert.strictEqual((yield* plain.list("")).length, keys.length + 1)
        }),
      60_000
    )
  }
})

describe("redis ordered index: options", () => {
  for (const client of clients) {
    it.live(`${client}: on a cluster, a namespace without a hash tag is refused before connecting`, () =>
      Effect.gen(function*() {
        const result = yield* Effect.result(
          buildStore(
            layerRedis({
              cluster: { rootNodes: ["redis://127.0.0.1:1"] },
              client,
              keyPrefix: "app:",
              orderedIndex: true
            })
          )
        )
        assert.isTrue(Result.isFailure(result))
        const error = (result as Result.Failure<unknown, unknown>).failure
        assert.instanceOf(error, KvInputError)
        assert.deepInclude(error, { operation: "options", argument: "keyPrefix", reason: "InvalidOption" })
        assert.match((error as KvInputError).message, /keyPrefix must be a namespace with a hash tag/)
      }))
  }
  it.live("layerRedisConfig turns the index on with REDIS_ORDERED_INDEX=true", () =>
    Effect.gen(function*() {
      const ns = uniqueNamespace()
      const raw = yield* rawClient({ url: server().url })
      const env = { REDIS_URL: server().url, REDIS_KEY_PREFIX: ns, REDIS_ORDERED_INDEX: "true" }
      const store = yield* buildStore(
        Layer.provide(layerRedisConfig(), ConfigProvider.layer(ConfigProvider.fromEnv({ env })))
      )
      yield* store.set("a", "1")
      assert.strictEqual(yield* indexSize(raw, ns), 1, "the write went into the index")
    }))
  it("makeRedisBaseKvStore refuses orderedIndex that is not a boolean", () => {
    assert.throws(
      () => makeRedisBaseKvStore({ redis: createClient() as any, orderedIndex: "yes" as any }),
      /orderedIndex must be true or false/
    )
  })
})
