/**
 * Tests of the effectAdapters suite itself: each broken adapter here does what Effect's own backings or a naive
 * adapter do; the suite must catch each, in the check for that rule.
 */
import { assert, describe, it } from "@effect/vitest"
import { type BaseKvStore, makeBackingPersistence, makeMemoryBaseKvStore, toKeyValueStore } from "effect-kv"
import { type Adapters, effectAdapterChecks } from "effect-kv/testing"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as KeyValueStore from "effect/persistence/KeyValueStore"
import * as Persistence from "effect/persistence/Persistence"
import * as TestClock from "effect/testing/TestClock"

/** Runs every check on a fresh memory store (on a TestClock, which the memory store reads) and returns the failures. */
const failingChecks = (adapters: Partial<Adapters> = {}, slowGets = false) =>
  Effect.gen(function*() {
    const failed: Array<string> = []
    for (const check of effectAdapterChecks({ clock: "test", adapters })) {
      const memory = makeMemoryBaseKvStore()
      // An async backend: the answer to a read arrives later, as over a network, so other writers can run meanwhile.
      const store: BaseKvStore = slowGets
        ? { ...memory, get: (key) => Effect.tap(memory.get(key), () => Effect.yieldNow) }
        : memory
      const exit = yield* Effect.exit(Effect.provide(check.run(store), TestClock.layer()))
      if (Exit.isFailure(exit)) failed.push(check.id)
    }
    return failed
  })

const expectCaught = (adapters: Partial<Adapters>, rule: string, slowGets = false) =>
  Effect.gen(function*() {
    const failed = yield* failingChecks(adapters, slowGets)
    assert.include(failed, rule, `the "${rule}" check catches it (failed: ${failed})`)
    assert.notInclude(failed, "kv-listing", "an adapter that breaks one rule still passes unrelated checks")
  })

/** Effect's own `KeyValueStore.make` over the adapter's primitives: its derived, get-then-set `modify`. */
const getThenSetModify = (store: BaseKvStore) => {
  const { get, getUint8Array, keys, remove, set, size, clear } = toKeyValueStore(store)
  return KeyValueStore.make({ get, getUint8Array, set, remove, clear, size, keys })
}

/** Effect's `makeStringOnly`: binary stored as a bare base64 string, with no marker. */
const stringOnly = (store: BaseKvStore) => {
  const { get, keys, remove, size, clear } = toKeyValueStore(store)
  return KeyValueStore.makeStringOnly({
    get,
    set: (key, value) => toKeyValueStore(store).set(key, value),
    remove,
    clear,
    size,
    keys
  })
}

/** Effect's `layerBackingKvs`: expiry as a timestamp inside the value, over the adapter. */
const backingKvs = (store: BaseKvStore) =>
  Effect.runSync(Effect.scoped(Effect.map(
    Layer.build(
      Persistence.layerBackingKvs.pipe(
        Layer.provide(Layer.succeed(KeyValueStore.KeyValueStore, toKeyValueStore(store)))
      )
    ),
    (context) => Context.get(context, Persistence.BackingPersistence)
  )))

/** The store id used as a namespace as it is, unescaped. */
const unescapedIds = (store: BaseKvStore): Persistence.BackingPersistence["Service"] => {
  const backing = makeBackingPersistence(store)
  return { make: (storeId) => backing.make(storeId.replace(/%3A/g, ":")) }
}

/** Batches as one request per key. */
const unbatched = (store: BaseKvStore): Persistence.BackingPersistence["Service"] => ({
  make: (storeId) =>
    Effect.map(makeBackingPersistence(store).make(storeId), (backing) => ({
      ...backing,
      getMany: (keys) => Effect.forEach(keys, backing.get) as never,
      setMany: (entries) =>
        Effect.forEach(entries, ([key, value, ttl]) => backing.set(key, value, ttl), { discard: true })
    }))
})

describe("the effectAdapters suite catches broken adapters", () => {
  it.live("effect-kv's adapters pass every check", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* failingChecks(), [])
      assert.deepStrictEqual(yield* failingChecks({}, true), [], "also when reads are async")
    }))

  it.live("binary stored as bare base64 (Effect's makeStringOnly)", () =>
    expectCaught({ toKeyValueStore: stringOnly }, "kv-values"))

  it.live("modify as get-then-set (Effect's KeyValueStore.make) on a backend whose reads are async", () =>
    expectCaught({ toKeyValueStore: getThenSetModify }, "kv-modify", true))

  it.live("expiry inside the value, reclaimed only when read (Effect's layerBackingKvs)", () =>
    expectCaught({ makeBackingPersistence: backingKvs }, "cache-ttl"))

  it.live("store ids used unescaped as namespaces", () =>
    expectCaught({ makeBackingPersistence: unescapedIds }, "store-isolation"))

  it.live("getMany and setMany as one request per key", () =>
    expectCaught({ makeBackingPersistence: unbatched }, "batches"))
})
