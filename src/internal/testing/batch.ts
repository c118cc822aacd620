/**
 * The conformance checks of batches and whole prefixes: `getMany`, `setMany` and `deleteMany` (all checked before
 * anything is written), `count` and `clear`.
 *
 * @internal
 */
import { assert } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { inspect } from "node:util"
import { BaseKvStoreService, MAX_BATCH_SIZE } from "../../BaseKvStore.ts"
import type { Check } from "./check.ts"
import { assertStoreHolds, expectRefused, sorted } from "./helpers.ts"
import { badKeys, badPrefixes, badValues, specialKeys } from "./inputs.ts"

export const batchChecks: ReadonlyArray<Check> = [
  {
    id: "batches",
    name: "has, getMany, setMany and deleteMany read and write many keys, in order",
    run: Effect.gen(function*() {
      const store = yield* BaseKvStoreService
      assert.isFalse(yield* store.has("b:1"))
      yield* store.setMany([["b:1", "one"], ["b:2", ""], ["b:3", "three"], ["b:1", "uno"]])
      assert.isTrue(yield* store.has("b:1"))
      assert.isTrue(yield* store.has("b:2"), "an empty value is present")
      assert.strictEqual(yield* store.get("b:1"), "uno", "a later entry wins over an earlier one")
      assert.deepStrictEqual(
        yield* store.getMany(["b:3", "b:missing", "b:1", "b:2", "b:3"]),
        ["three", null, "uno", "", "three"],
        "values in the order of the keys, null for missing, duplicates allowed"
      )
      assert.deepStrictEqual(yield* store.getMany([]), [])
      yield* store.setMany([])
      yield* store.deleteMany([])
      yield* store.deleteMany(["b:1", "b:missing", "b:1", "b:3"])
      assert.deepStrictEqual(yield* store.list("b:"), ["2"])
      const many = Array.from({ length: 2500 }, (_, i) => [`b:many:${i}`, `v${i}`] as const)
      yield* store.setMany(many)
      assert.deepStrictEqual(yield* store.getMany(many.map(([key]) => key)), many.map(([, value]) => value))
      assert.strictEqual(yield* store.count("b:many:"), 2500)
      yield* store.deleteMany(many.map(([key]) => key))
      assert.strictEqual(yield* store.count("b:many:"), 0)
      // Keys that land on different Redis Cluster slots, and glob characters, in one batch.
      const spread = specialKeys.map((key, i) => [`{${i}}${key}`, key] as const)
      yield* store.setMany(spread)
      assert.deepStrictEqual(yield* store.getMany(spread.map(([key]) => key)), spread.map(([, value]) => value))
    })
  },
  {
    id: "bad-batch",
    name: "one bad key or entry fails the whole batch with KvInputError, and nothing is written",
    timeout: 60_000,
    run: Effect.gen(function*() {
      const store = yield* BaseKvStoreService
      yield* store.set("bb:kept", "v")
      for (const [label, key, reason] of badKeys) {
        const keys = ["bb:kept", key as string, "bb:other"]
        yield* expectRefused(label, store.getMany(keys), { operation: "getMany", argument: "key", reason })
        yield* expectRefused(label, store.deleteMany(keys), { operation: "deleteMany", argument: "key", reason })
        yield* expectRefused(label, store.setMany([["bb:a", "1"], [key as string, "v"]]), {
          operation: "setMany",
          argument: "key",
          reason
        })
      }
      for (const [label, value, reason] of badValues) {
        yield* expectRefused(label, store.setMany([["bb:a", "1"], ["bb:kept", "w"], ["bb:b", value as string]]), {
          operation: "setMany",
          argument: "value",
          reason
        })
      }
      const notBatches: ReadonlyArray<readonly [string, unknown]> = [
        ["undefined", undefined],
        ["a string", "bb:kept"],
        ["an object", { 0: "bb:kept", length: 1 }],
        ["a Set", new Set(["bb:kept"])]
      ]
      for (const [label, batch] of notBatches) {
        yield* expectRefused(label, store.getMany(batch as Array<string>), { operation: "getMany", argument: "keys" })
        yield* expectRefused(label, store.deleteMany(batch as Array<string>), {
          operation: "deleteMany",
          argument: "keys"
        })
        yield* expectRefused(label, store.setMany(batch as Array<[string, string]>), {
          operation: "setMany",
          argument: "entries"
        })
      }
      for (const entry of [["bb:a"], ["bb:a", "1", "2"], "bb:a", null]) {
        yield* expectRefused(`the entry ${inspect(entry)}`, store.setMany([["bb:b", "1"], entry as [string, string]]), {
          operation: "setMany",
          argument: "entries"
        })
      }
      const tooMany = Array.from({ length: MAX_BATCH_SIZE + 1 }, (_, i) => `bb:${i}`)
      yield* expectRefused("MAX_BATCH_SIZE + 1 keys", store.deleteMany(tooMany), {
        operation: "deleteMany",
        argument: "keys",
        reason: "TooLong"
      })
      yield* expectRefused("MAX_BATCH_SIZE + 1 entries", store.setMany(tooMany.map((key) => [key, "v"])), {
        operation: "setMany",
        argument: "entries",
        reason: "TooLong"
      })
      yield* assertStoreHolds(store, [["bb:kept", "v"]])
      yield* store.setMany(tooMany.slice(1).map((key) => [key, "v"]))
      assert.strictEqual(yield* store.count("bb:"), MAX_BATCH_SIZE + 1, "a batch of exactly MAX_BATCH_SIZE is taken")
    })
  },
  {
    id: "count-clear",
    name: "count and clear work on the keys under a literal prefix; clear(\"\") empties the store",
    run: Effect.gen(function*() {
      const store = yield* BaseKvStoreService
      yield* store.setMany(specialKeys.map((key) => [key, "v"]))
      yield* store.setMany([["session:1:a", "1"], ["session:1:b", "2"], ["session:10:a", "3"], ["session:1", "4"]])
      assert.strictEqual(yield* store.count(""), specialKeys.length + 4)
      assert.strictEqual(yield* store.count("session:1:"), 2)
      assert.strictEqual(yield* store.count("a*"), 2, "the prefix is literal")
      assert.strictEqual(yield* store.count("nothing"), 0)
      assert.strictEqual(yield* store.clear("session:1:"), 2)
      assert.deepStrictEqual(yield* store.list("session:"), ["1", "10:a"])
      assert.strictEqual(yield* store.clear("a["), 1, "a glob prefix clears only the keys it literally prefixes")
      assert.deepStrictEqual(
        yield* store.list("a"),
        sorted(specialKeys.filter((key) => key.startsWith("a") && !key.startsWith("a[")).map((key) => key.slice(1)))
      )
      assert.strictEqual(yield* store.clear("*"), 0, "a star clears nothing but keys starting with it")
      assert.strictEqual(yield* store.clear("nothing"), 0)
      const left = (yield* store.list("")).length
      assert.strictEqual(yield* store.clear(""), left)
      assert.deepStrictEqual(yield* store.list(""), [])
      assert.strictEqual(yield* store.count(""), 0)
      for (const [label, prefix, reason] of badPrefixes) {
        yield* expectRefused(label, store.count(prefix as string), { operation: "count", argument: "prefix", reason })
        yield* expectRefused(label, store.clear(prefix as string), { operation: "clear", argument: "prefix", reason })
      }
    })
  }
]
