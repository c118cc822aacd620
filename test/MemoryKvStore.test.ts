import { assert, describe, it } from "@effect/vitest"
import { BaseKvStoreService, makeMemoryBaseKvStore, memoryKvStore } from "effect-kv"
import { conformance } from "effect-kv/testing"
import * as Effect from "effect/Effect"

conformance("memory backend (memoryKvStore)", memoryKvStore)

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
