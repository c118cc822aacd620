import { assert, describe, it } from "@effect/vitest"
import {
  BaseKvStoreService,
  type Expiry,
  KvInputError,
  layerMemory,
  make,
  makeMemoryBaseKvStore,
  makeMemoryPrimitives,
  memoryKvStore
} from "effect-kv"
import { conformance } from "effect-kv/testing"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/testing/TestClock"
import * as V8 from "node:v8"
import * as Vm from "node:vm"

// A real collection before each heap reading: without it the reading is mostly garbage not yet collected.
V8.setFlagsFromString("--expose-gc")
const gc: () => void = Vm.runInNewContext("gc")

conformance("memory backend (memoryKvStore)", memoryKvStore, { clock: "test" })
conformance("memory backend with maxEntries (layerMemory)", layerMemory({ maxEntries: 1_000_000 }), { clock: "test" })

describe("memory backend", () => {
  it.effect("makeMemoryBaseKvStore returns a ready, isolated store", () =>
    Effect.gen(function*() {
      const a = makeMemoryBaseKvStore()
      const b = makeMemoryBaseKvStore()
      yield* a.set("upload:1", "a")
      assert.strictEqual(yield* a.get("upload:1"), "a")
      assert.strictEqual(yield* b.get("upload:1"), null)
    }))

  it("two programs that each provide memoryKvStore never share data", async () => {
    const write = Effect.gen(function*() {
      const store = yield* BaseKvStoreService
      const before = yield* store.get("upload:1")
      yield* store.set("upload:1", "written")
      return before
    }).pipe(Effect.provide(memoryKvStore))
    assert.strictEqual(await Effect.runPromise(write), null)
    assert.strictEqual(await Effect.runPromise(write), null, "the second program starts with an empty store")
    assert.strictEqual(Effect.runSync(write), null)
  })

  it.effect("the same layer provided to two sibling effects in one program builds two stores", () =>
    Effect.gen(function*() {
      const read = BaseKvStoreService.use((store) => store.get("k"))
      yield* BaseKvStoreService.use((store) => store.set("k", "v")).pipe(Effect.provide(memoryKvStore))
      assert.strictEqual(yield* Effect.provide(read, memoryKvStore), null)
    }))

  it("the store is usable from Effect.runSync, one operation at a time", () => {
    const store = makeMemoryBaseKvStore()
    Effect.runSync(store.set("k", "v"))
    assert.strictEqual(Effect.runSync(store.get("k")), "v")
    assert.deepStrictEqual(Effect.runSync(store.list("")), ["k"])
  })

  it("list reads only the keys under the prefix, however many keys there are", () => {
    const store = makeMemoryBaseKvStore()
    Effect.runSync(
      Effect.forEach(
        Array.from({ length: 50_000 }, (_, i) => i),
        (i) => store.set(`upload:${String(i).padStart(6, "0")}`, "v"),
        { discard: true }
      )
    )
    Effect.runSync(store.set("upload:000100:x", "v"))
    assert.deepStrictEqual(
      Effect.runSync(store.list("upload:00010")),
      ["0", "0:x", "1", "2", "3", "4", "5", "6", "7", "8", "9"]
    )
    assert.strictEqual(Effect.runSync(store.list("upload:")).length, 50_001)
  })
})

describe("memory backend: expiry and bounded memory", () => {
  it.effect("expiry follows Effect's Clock: TestClock moves a key past its ttl", () =>
    Effect.gen(function*() {
      const store = makeMemoryBaseKvStore()
      yield* store.set("session:1", "alice", { ttl: "10 minutes" })
      yield* TestClock.adjust("9 minutes")
      assert.strictEqual(yield* store.get("session:1"), "alice")
      assert.strictEqual(Duration.toMillis((yield* store.ttl("session:1"))!), 60_000)
      yield* TestClock.adjust("1 minute")
      assert.strictEqual(yield* store.get("session:1"), null, "gone exactly at its expiry")
    }))

  it("a workload of short-lived keys nobody reads keeps the heap bounded by the live keys", () => {
    const store = makeMemoryBaseKvStore()
    let now = 0
    const clock: Clock.Clock = { ...Clock.Clock.defaultValue(), currentTimeMillisUnsafe: () => now }
    const run = <A>(effect: Effect.Effect<A, unknown>) =>
      Effect.runSync(Effect.provideService(effect, Clock.Clock, clock))
    const heapAfter = (rounds: number) => {
      for (let round = 0; round < rounds; round++) {
        // A distinct 1 KB value per key, so that every entry really costs memory.
        run(
          store.setMany(Array.from({ length: 1000 }, (_, i) => [`tmp:${round}:${i}`, `${round}:${i}:`.padEnd(1024)]), {
            ttl: 5
          })
        )
        now += 10
      }
      run(store.set("trigger", "write"))
      gc()
      return process.memoryUsage().heapUsed
    }
    const before = heapAfter(20)
    // 200 rounds of 1,000 keys of 1 KB would hold over 200 MB if nothing were reclaimed.
    const after = heapAfter(200)
    assert.isBelow(after - before, 50 * 1024 * 1024, `heap grew by ${((after - before) / 1024 / 1024).toFixed(1)} MB`)
    assert.strictEqual(run(store.count("")), 1)
  })

  it.effect("maxEntries evicts the least recently used key; a get or a write counts as use", () =>
    Effect.gen(function*() {
      const store = makeMemoryBaseKvStore({ maxEntries: 3 })
      yield* store.setMany([["a", "1"], ["b", "2"], ["c", "3"]])
      yield* store.get("a")
      yield* store.set("d", "4")
      assert.deepStrictEqual(yield* store.list(""), ["a", "c", "d"], "b was the least recently used")
      yield* store.set("c", "3!")
      yield* store.set("e", "5")
      assert.deepStrictEqual(yield* store.list(""), ["c", "d", "e"], "a was used before c and d were written")
      assert.isTrue(yield* store.setIfAbsent("f", "6"))
      assert.deepStrictEqual(yield* store.list(""), ["c", "e", "f"])
      assert.strictEqual(yield* store.count(""), 3)
      yield* store.delete("e")
      yield* store.set("g", "7")
      assert.deepStrictEqual(yield* store.list(""), ["c", "f", "g"], "a delete frees a place without evicting")
    }))

  it.effect("maxEntries must be a positive integer: KvInputError, thrown by the constructor, failed by the layer", () =>
    Effect.gen(function*() {
      for (const bad of [0, -1, 1.5, NaN, Infinity, "10", null]) {
        const thrown = (() => {
          try {
            makeMemoryBaseKvStore({ maxEntries: bad as number })
          } catch (error) {
            return error
          }
        })()
        assert.instanceOf(thrown, KvInputError, String(bad))
        assert.deepInclude(thrown, { operation: "options", argument: "maxEntries", reason: "InvalidOption" })
        assert.match((thrown as KvInputError).message, /^effect-kv memory: maxEntries must be a positive integer/)
        const failed = yield* Effect.flip(Effect.scoped(Layer.build(layerMemory({ maxEntries: bad as number }))))
        assert.instanceOf(failed, KvInputError)
        assert.deepInclude(failed, { argument: "maxEntries", message: (thrown as KvInputError).message })
      }
      assert.doesNotThrow(() => makeMemoryBaseKvStore({ maxEntries: 1 }))
    }))
})

describe("memory backend: two stores over one keyspace", () => {
  it.live(
    "500 + 500 concurrent increments from two stores racing on one key, as two processes would: 1,000",
    () =>
      Effect.gen(function*() {
        // Two stores with their own local turns and retries over the same data, with the derived modify (get, then
        // compareAndSet) and a pause between the two, so that they really race.
        const { modify: _atomicInOneStep, ...shared } = makeMemoryPrimitives()
        let lost = 0
        const racing = {
          ...shared,
          get: (key: string) => Effect.tap(shared.get(key), () => Effect.yieldNow),
          compareAndSet: (key: string, expected: string | null, next: string | null, expiry: Expiry) =>
            Effect.tap(shared.compareAndSet(key, expected, next, expiry), (won) => Effect.sync(() => won || lost++))
        }
        const a = make(racing)
        const b = make(racing)
        const increment = (current: string | null) => String(Number(current ?? "0") + 1)
        yield* Effect.forEach(
          Array.from({ length: 1000 }, (_, i) => i % 2 === 0 ? a : b),
          (store) => store.modify("counter", increment),
          { concurrency: "unbounded", discard: true }
        )
        assert.strictEqual(yield* a.get("counter"), "1000")
        assert.isAbove(lost, 0, "the two stores did race, and the losers retried")
      }),
    60_000
  )
})

describe("memory backend: the expiry heap", () => {
  it("a key re-written with a long ttl again and again keeps memory bounded (a renewed lease)", () => {
    const store = makeMemoryBaseKvStore()
    const heapAfter = (writes: number) => {
      // In rounds of 10,000, so that the test's own arrays are not what the heap reading sees.
      for (let round = 0; round < writes; round += 10_000) {
        Effect.runSync(Effect.forEach(
          Array.from({ length: 10_000 }, (_, i) => i),
          (i) => store.set(`lease:${i % 10}`, "owner", { ttl: "1 day" }),
          { discard: true }
        ))
      }
      gc()
      return process.memoryUsage().heapUsed
    }
    const before = heapAfter(100_000)
    // Without compaction each write would leave a heap entry behind for a day: 2,000,000 of them, over 30 MB.
    const after = heapAfter(2_000_000)
    assert.isBelow(after - before, 10 * 1024 * 1024, `heap grew by ${((after - before) / 1024 / 1024).toFixed(1)} MB`)
    assert.strictEqual(Effect.runSync(store.count("lease:")), 10)
  }, 60_000)
})

describe("memory backend: watch", () => {
  it.effect("events are in the watcher's buffer when the write returns, and evictions are Deletes", () =>
    Effect.scoped(Effect.gen(function*() {
      const store = makeMemoryBaseKvStore({ maxEntries: 2 })
      const pull = yield* Stream.toPull(store.watch(""))
      const first = yield* Effect.forkChild(pull)
      yield* Effect.yieldNow
      yield* store.set("a", "1")
      assert.deepStrictEqual(yield* Fiber.join(first), [{ _tag: "Set", key: "a", value: "1" }])
      yield* store.set("b", "2")
      yield* store.set("c", "3") // evicts "a", the least recently used, to make room first
      // No yield between the writes and the pull: the events were delivered synchronously, in order.
      assert.deepStrictEqual(yield* pull, [
        { _tag: "Set", key: "b", value: "2" },
        { _tag: "Delete", key: "a" },
        { _tag: "Set", key: "c", value: "3" }
      ])
    })))

  it.effect("a watched store expires keys on the Clock, without reads, at their expiry", () =>
    Effect.scoped(Effect.gen(function*() {
      const store = makeMemoryBaseKvStore()
      const pull = yield* Stream.toPull(store.watch(""))
      const first = yield* Effect.forkChild(pull)
      yield* Effect.yieldNow
      yield* store.set("k", "v", { ttl: 1000 })
      yield* Fiber.join(first)
      const expired = yield* Effect.forkChild(pull)
      yield* TestClock.adjust(999)
      assert.isUndefined(expired.pollUnsafe(), "nothing before the ttl")
      yield* TestClock.adjust(1)
      assert.deepStrictEqual(yield* Fiber.join(expired), [{ _tag: "Expire", key: "k" }])
    })))
})
