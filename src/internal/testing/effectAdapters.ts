/**
 * The suite for Effect's `KeyValueStore` and `Persistence` over an effect-kv backend: what `toKeyValueStore` and
 * `layerPersistence` promise, run on a backend's layer.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as KeyValueStore from "effect/persistence/KeyValueStore"
import * as Persistable from "effect/persistence/Persistable"
import * as PersistedCache from "effect/persistence/PersistedCache"
import * as Persistence from "effect/persistence/Persistence"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/testing/TestClock"
import { type BaseKvStore, BaseKvStoreService, isKvInputError, MAX_KEY_LENGTH } from "../../BaseKvStore.ts"
import { toKeyValueStore } from "../../EffectKeyValueStore.ts"
import { makeBackingPersistence } from "../../EffectPersistence.ts"

/**
 * Options of `effectAdapters`.
 *
 * @since 0.1.0
 * @category models
 */
export interface EffectAdaptersOptions {
  /** Whose time expiry follows, as in `conformance`: `"test"` for a backend that reads Effect's `Clock`. */
  readonly clock?: "test" | "live" | undefined
  /**
   * The adapters under test; effect-kv's own by default. The suite's own tests pass broken ones, to prove it catches
   * them.
   */
  readonly adapters?: Partial<Adapters> | undefined
}

/**
 * The two adapters the suite checks.
 *
 * @since 0.1.0
 * @category models
 */
export interface Adapters {
  readonly toKeyValueStore: (store: BaseKvStore) => KeyValueStore.KeyValueStore
  readonly makeBackingPersistence: (store: BaseKvStore) => Persistence.BackingPersistence["Service"]
}

/**
 * One check of the suite: runs on a fresh, empty store.
 *
 * @since 0.1.0
 * @category models
 */
export interface EffectAdapterCheck {
  readonly id: string
  readonly name: string
  readonly run: (store: BaseKvStore) => Effect.Effect<void, unknown>
  readonly timeout?: number
}

type Check = EffectAdapterCheck

const expectKeyValueStoreError = (label: string, effect: Effect.Effect<unknown, unknown>, method: string) =>
  Effect.gen(function*() {
    const result = yield* Effect.result(effect)
    if (Result.isSuccess(result)) return assert.fail(`${label}: succeeded instead of failing`)
    const error = result.failure as KeyValueStore.KeyValueStoreError
    assert.strictEqual(error._tag, "KeyValueStoreError", `${label}: the error is a KeyValueStoreError`)
    assert.strictEqual(error.method, method, `${label}: method`)
    assert.isTrue(isKvInputError(error.cause), `${label}: the cause is effect-kv's KvInputError`)
  })

const bytes = (...values: Array<number>) => new Uint8Array(values)

const keyValueStoreChecks = ({ toKeyValueStore }: Adapters): ReadonlyArray<Check> => [
  {
    id: "kv-values",
    name: "KeyValueStore: strings are stored verbatim, binary round-trips as bytes, neither is mistaken for the other",
    run: (store) =>
      Effect.gen(function*() {
        const kv = toKeyValueStore(store)
        const strings = ["plain", "", "SGVsbG8=", "\uFFFFb SGVsbG8=", "\uFFFFs", "\uFFFF", "日本語 🎉", "b"]
        for (const [i, value] of strings.entries()) {
          yield* kv.set(`s:${i}`, value)
          assert.strictEqual(yield* kv.get(`s:${i}`), value, `string ${JSON.stringify(value)} round-trips`)
          assert.deepStrictEqual(
            yield* kv.getUint8Array(`s:${i}`),
            new TextEncoder().encode(value),
            `getUint8Array of ${JSON.stringify(value)} is its UTF-8`
          )
        }
        yield* kv.set("s:plain", "SGVsbG8=")
        assert.strictEqual(yield* store.get("s:plain"), "SGVsbG8=", "an ordinary string is stored as it is")

        const binaries = [bytes(), bytes(0), bytes(72, 101, 108, 108, 111), bytes(0xff, 0xfe, 0, 1, 2, 250)]
        for (const [i, value] of binaries.entries()) {
          yield* kv.set(`b:${i}`, value)
          assert.deepStrictEqual(yield* kv.getUint8Array(`b:${i}`), value, `bytes ${value} round-trip`)
          const text = yield* kv.get(`b:${i}`)
          assert.strictEqual(text, Buffer.from(value).toString("base64"), "get of binary is its base64")
        }
        assert.strictEqual(yield* kv.get("missing"), undefined)
        assert.strictEqual(yield* kv.getUint8Array("missing"), undefined)
      })
  },
  {
    id: "kv-listing",
    name: "KeyValueStore: has, isEmpty, size, keys, remove, clearPrefix and clear follow the store",
    run: (store) =>
      Effect.gen(function*() {
        const kv = toKeyValueStore(store)
        assert.isTrue(yield* kv.isEmpty)
        assert.strictEqual(yield* kv.size, 0)
        yield* kv.set("user:1", "a")
        yield* kv.set("user:2", bytes(1))
        yield* kv.set("team:1", "c")
        assert.isFalse(yield* kv.isEmpty)
        assert.isTrue(yield* kv.has("user:2"))
        assert.isFalse(yield* kv.has("user:3"))
        assert.strictEqual(yield* kv.size, 3)
        assert.deepStrictEqual([...(yield* kv.keys)].sort(), ["team:1", "user:1", "user:2"])
        yield* kv.remove("user:1")
        yield* kv.remove("user:1")
        assert.strictEqual(yield* kv.get("user:1"), undefined)
        yield* kv.set("user:1", "a")
        yield* kv.clearPrefix("user:")
        assert.deepStrictEqual(yield* kv.keys, ["team:1"])
        yield* kv.clear
        assert.isTrue(yield* kv.isEmpty)
        assert.strictEqual(yield* store.count(""), 0)
      })
  },
  {
    id: "kv-modify",
    name: "KeyValueStore: modify and modifyUint8Array change existing keys only, and concurrent updates lose nothing",
    run: (store) =>
      Effect.gen(function*() {
        const kv = toKeyValueStore(store)
        assert.strictEqual(yield* kv.modify("missing", (v) => v + "!"), undefined)
        assert.strictEqual(yield* kv.modifyUint8Array("missing", (v) => v), undefined)
        assert.isFalse(yield* kv.has("missing"), "modify of a missing key writes nothing")

        yield* kv.set("n", "0")
        yield* Effect.forEach(
          Array.from({ length: 40 }),
          () => kv.modify("n", (v) => String(Number(v) + 1)),
          { concurrency: "unbounded", discard: true }
        )
        assert.strictEqual(yield* kv.get("n"), "40", "40 concurrent increments make 40")

        yield* kv.set("bytes", bytes(0))
        yield* Effect.forEach(
          Array.from({ length: 40 }),
          () => kv.modifyUint8Array("bytes", (v) => bytes(...v, v.length)),
          { concurrency: "unbounded", discard: true }
        )
        const grown = yield* kv.getUint8Array("bytes")
        assert.deepStrictEqual(grown, bytes(...Array.from({ length: 41 }, (_, i) => i)), "40 appends make 41 bytes")

        yield* kv.set("text", "ab")
        assert.deepStrictEqual(yield* kv.modifyUint8Array("text", (v) => bytes(...v, 33)), bytes(97, 98, 33))
        assert.strictEqual(yield* kv.modify("text", (v) => v + "?"), "YWIh?", "modify sees binary as its base64")
      })
  },
  {
    id: "kv-bad-keys",
    name: "KeyValueStore: keys effect-kv refuses fail with KeyValueStoreError caused by KvInputError, nothing written",
    run: (store) =>
      Effect.gen(function*() {
        const kv = toKeyValueStore(store)
        for (
          const [label, key] of [["\"\"", ""], ["a long key", "k".repeat(MAX_KEY_LENGTH + 1)], [
            "a lone surrogate",
            "k\uD800"
          ]]
        ) {
          yield* expectKeyValueStoreError(`set ${label}`, kv.set(key, "v"), "set")
          yield* expectKeyValueStoreError(`set bytes ${label}`, kv.set(key, bytes(1)), "set")
          yield* expectKeyValueStoreError(`get ${label}`, kv.get(key), "get")
          yield* expectKeyValueStoreError(`getUint8Array ${label}`, kv.getUint8Array(key), "getUint8Array")
          yield* expectKeyValueStoreError(`modify ${label}`, kv.modify(key, (v) => v), "modify")
          yield* expectKeyValueStoreError(`remove ${label}`, kv.remove(key), "remove")
          yield* expectKeyValueStoreError(`has ${label}`, kv.has(key), "has")
        }
        yield* expectKeyValueStoreError("clearPrefix of a lone surrogate", kv.clearPrefix("\uD800"), "clearPrefix")
        yield* expectKeyValueStoreError("a string value with a lone surrogate", kv.set("k", "\uDC00"), "set")
        assert.strictEqual(yield* store.count(""), 0, "nothing was written")
      })
  }
]

class Lookup extends Persistable.Class<{ payload: { readonly id: number } }>()("Lookup", {
  primaryKey: ({ id }) => `lookup:${id}`,
  success: Schema.Struct({ id: Schema.Number, name: Schema.String }),
  error: Schema.String
}) {}

/** A `PersistedCache` over the store (with a fresh in-memory cache), and how many lookups it ran. */
const cacheOver = (
  adapters: Adapters,
  store: BaseKvStore,
  counter: { lookups: number },
  timeToLive: Duration.Input
) =>
  PersistedCache.make(
    (request: Lookup) =>
      Effect.suspend(() => {
        counter.lookups++
        return request.id < 0
          ? Effect.fail(`no user ${request.id}`)
          : Effect.succeed({ id: request.id, name: `u${request.id}` })
      }),
    { storeId: "users", timeToLive: () => timeToLive, inMemoryCapacity: 0 }
  ).pipe(Effect.provide(persistenceLayer(adapters, store)))

const persistenceLayer = (adapters: Adapters, store: BaseKvStore) =>
  Persistence.layer.pipe(
    Layer.provide(Layer.succeed(Persistence.BackingPersistence, adapters.makeBackingPersistence(store)))
  )

/** Counts the batch calls a backing makes on the store. */
const counting = (store: BaseKvStore) => {
  const calls = { get: 0, getMany: 0, set: 0, setMany: 0 }
  const counted: BaseKvStore = {
    ...store,
    get: (key) => Effect.suspend(() => (calls.get++, store.get(key))),
    getMany: (keys) => Effect.suspend(() => (calls.getMany++, store.getMany(keys))),
    set: (key, value, options) => Effect.suspend(() => (calls.set++, store.set(key, value, options))),
    setMany: (entries, options) => Effect.suspend(() => (calls.setMany++, store.setMany(entries, options)))
  }
  return { calls, store: counted }
}

const persistenceChecks = (clock: "test" | "live", adapters: Adapters): ReadonlyArray<Check> => {
  const { makeBackingPersistence } = adapters
  const ttl = clock === "test" ? 1000 : 1500
  const elapse = (store: BaseKvStore) =>
    clock === "test" ? TestClock.adjust(ttl + 1) : Effect.gen(function*() {
      yield* Effect.sleep(Duration.millis(ttl))
      // The backend's own expiry decides; a count, not a read, so the entry must be reclaimed unread.
      for (let i = 0; i < 200 && (yield* store.count("")) !== 0; i++) yield* Effect.sleep("25 millis")
    })
  const run = <A, E>(effect: Effect.Effect<A, E>) =>
    clock === "test" ? Effect.provide(effect, TestClock.layer()) : effect
  return [
    {
      id: "cache-hits",
      name: "PersistedCache: a lookup runs once; a second cache over the same store reads the persisted exit",
      run: (store) =>
        Effect.scoped(Effect.gen(function*() {
          const counter = { lookups: 0 }
          const first = yield* cacheOver(adapters, store, counter, "1 hour")
          assert.deepStrictEqual(yield* first.get(new Lookup({ id: 1 })), { id: 1, name: "u1" })
          assert.deepStrictEqual(yield* first.get(new Lookup({ id: 1 })), { id: 1, name: "u1" })
          assert.strictEqual(yield* Effect.flip(first.get(new Lookup({ id: -1 }))), "no user -1")
          assert.strictEqual(counter.lookups, 2, "one lookup per request")

          const second = yield* cacheOver(adapters, store, counter, "1 hour")
          assert.deepStrictEqual(yield* second.get(new Lookup({ id: 1 })), { id: 1, name: "u1" })
          assert.strictEqual(yield* Effect.flip(second.get(new Lookup({ id: -1 }))), "no user -1")
          assert.strictEqual(counter.lookups, 2, "the second cache found both exits persisted")

          yield* second.invalidate(new Lookup({ id: 1 }))
          assert.deepStrictEqual(yield* second.get(new Lookup({ id: 1 })), { id: 1, name: "u1" })
          assert.strictEqual(counter.lookups, 3, "invalidate removed the persisted exit")
        }))
    },
    {
      id: "cache-ttl",
      name: "PersistedCache: the time-to-live is the backend's own: expired entries are reclaimed unread",
      timeout: 20_000,
      run: (store) =>
        run(Effect.scoped(Effect.gen(function*() {
          const counter = { lookups: 0 }
          const cache = yield* cacheOver(adapters, store, counter, Duration.millis(ttl))
          yield* cache.get(new Lookup({ id: 1 }))
          assert.strictEqual(yield* store.count(""), 1, "the exit is persisted")
          const left = yield* store.ttl((yield* store.list(""))[0])
          assert.isNotNull(left)
          assert.isAtMost(Duration.toMillis(left!), ttl, "the backend holds the time-to-live")
          yield* elapse(store)
          assert.strictEqual(yield* store.count(""), 0, "the backend reclaimed the entry without a read")
          const again = yield* cacheOver(adapters, store, counter, Duration.millis(ttl))
          yield* again.get(new Lookup({ id: 1 }))
          assert.strictEqual(counter.lookups, 2, "after expiry the lookup runs again")
        })))
    },
    {
      id: "store-isolation",
      name: "BackingPersistence: store ids are namespaces no other id reaches, and clear empties one store only",
      run: (store) =>
        Effect.scoped(Effect.gen(function*() {
          const backing = makeBackingPersistence(store)
          const pairs: ReadonlyArray<readonly [string, string]> = [
            ["a", "bc"],
            ["ab", "c"],
            ["a", "b:c"],
            ["a:b", "c"],
            ["a%3Ab", "c"],
            ["", "a:bc"]
          ]
          const stores = new Map<string, Persistence.BackingPersistenceStore>()
          for (const [storeId] of pairs) {
            if (!stores.has(storeId)) stores.set(storeId, yield* backing.make(storeId))
          }
          for (const [storeId, key] of pairs) yield* stores.get(storeId)!.set(key, { storeId, key }, undefined)
          for (const [storeId, key] of pairs) {
            assert.deepStrictEqual(yield* stores.get(storeId)!.get(key), { storeId, key }, `${storeId} / ${key}`)
          }
          assert.strictEqual(yield* store.count(""), pairs.length, "every pair has an entry of its own")
          yield* stores.get("a")!.clear
          assert.strictEqual(yield* stores.get("a")!.get("bc"), undefined)
          assert.strictEqual(yield* stores.get("a")!.get("b:c"), undefined)
          for (const [storeId, key] of pairs.filter(([id]) => id !== "a")) {
            assert.deepStrictEqual(yield* stores.get(storeId)!.get(key), { storeId, key }, `${storeId} survives`)
          }
          yield* stores.get("ab")!.remove("c")
          assert.strictEqual(yield* store.count(""), pairs.length - 3)
        }))
    },
    {
      id: "batches",
      name: "BackingPersistence: getMany and setMany are one batch, in order, with missing keys undefined",
      run: (store) =>
        Effect.scoped(Effect.gen(function*() {
          const { calls, store: counted } = counting(store)
          const backing = yield* makeBackingPersistence(counted).make("batch")
          yield* backing.setMany([["1", { n: 1 }, undefined], ["2", { n: 2 }, undefined], ["3", { n: 3 }, undefined]])
          assert.strictEqual(calls.setMany, 1, "one setMany for three entries")
          assert.strictEqual(calls.set, 0)
          assert.deepStrictEqual(yield* backing.getMany(["3", "missing", "1", "2"]), [{ n: 3 }, undefined, { n: 1 }, {
            n: 2
          }])
          assert.strictEqual(calls.getMany, 1, "one getMany for four keys")
          assert.strictEqual(calls.get, 0)

          yield* backing.setMany([
            ["4", { n: 4 }, Duration.hours(1)],
            ["5", { n: 5 }, undefined],
            ["6", { n: 6 }, Duration.hours(1)]
          ])
          assert.strictEqual(calls.setMany, 3, "one batch per distinct time-to-live")
          assert.isNotNull(yield* store.ttl("effect-persistence:batch:4"))
          assert.isTrue(Duration.isFinite((yield* store.ttl("effect-persistence:batch:6"))!), "4 and 6 expire")
          assert.isFalse(Duration.isFinite((yield* store.ttl("effect-persistence:batch:5"))!), "5 never expires")

          // Through Persistence, as PersistedCache's batched lookups use it.
          const persistence = yield* Persistence.Persistence.pipe(
            Effect.provide(persistenceLayer(adapters, counted))
          )
          const users = yield* persistence.make({ storeId: "users" })
          yield* users.setMany([
            [new Lookup({ id: 1 }), Exit.succeed({ id: 1, name: "a" })],
            [new Lookup({ id: 2 }), Exit.fail("gone")]
          ])
          const found = yield* users.getMany([new Lookup({ id: 2 }), new Lookup({ id: 3 }), new Lookup({ id: 1 })])
          assert.deepStrictEqual(found, [Exit.fail("gone"), undefined, Exit.succeed({ id: 1, name: "a" })])
          assert.strictEqual(calls.setMany, 4)
          assert.strictEqual(calls.getMany, 2)
        }))
    },
    {
      id: "persistence-bad-keys",
      name: "BackingPersistence: a key effect-kv refuses fails with PersistenceError caused by KvInputError",
      run: (store) =>
        Effect.scoped(Effect.gen(function*() {
          const backing = yield* makeBackingPersistence(store).make("bad")
          for (const key of ["k".repeat(MAX_KEY_LENGTH), "k\uD800"]) {
            for (const effect of [backing.get(key), backing.set(key, { a: 1 }, undefined), backing.remove(key)]) {
              const error = yield* Effect.flip(effect)
              assert.strictEqual(error._tag, "PersistenceError")
              assert.isTrue(isKvInputError(error.cause), "the cause is effect-kv's KvInputError")
            }
          }
          assert.strictEqual(yield* store.count(""), 0, "nothing was written")
        }))
    }
  ]
}

/**
 * The checks of `effectAdapters`, to run one by one.
 *
 * @since 0.1.0
 * @category suites
 */
export const effectAdapterChecks = (options: EffectAdaptersOptions = {}): ReadonlyArray<EffectAdapterCheck> => {
  const adapters: Adapters = {
    toKeyValueStore: options.adapters?.toKeyValueStore ?? toKeyValueStore,
    makeBackingPersistence: options.adapters?.makeBackingPersistence ?? ((store) => makeBackingPersistence(store))
  }
  return [...keyValueStoreChecks(adapters), ...persistenceChecks(options.clock ?? "live", adapters)]
}

/**
 * Runs the suite for Effect's `KeyValueStore` (`toKeyValueStore`) and `Persistence` (`layerPersistence`,
 * `PersistedCache`) on a backend's layer. Each check builds the layer afresh and expects an empty store.
 *
 * @since 0.1.0
 * @category suites
 */
export const effectAdapters = <E>(
  name: string,
  layer: Layer.Layer<BaseKvStoreService, E>,
  options: EffectAdaptersOptions = {}
): void => {
  describe(name, () => {
    for (const check of effectAdapterChecks(options)) {
      it.live(
        check.name,
        () => BaseKvStoreService.use(check.run).pipe(Effect.provide(Layer.fresh(layer))),
        check.timeout
      )
    }
  })
}
