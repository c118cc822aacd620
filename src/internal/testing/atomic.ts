/**
 * The conformance checks of the atomic operations: `setIfAbsent`, `compareAndSet` and `modify`, alone and under
 * contention, and the input rules they add (`expected`, `next`, the update function, write options).
 *
 * @internal
 */
import { assert } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { BaseKvStoreService, isKvInputError, type KvInputError, type WriteOptions } from "../../BaseKvStore.ts"
import type { Check } from "./check.ts"
import { assertStoreHolds, expectRefused, increment, millisOf } from "./helpers.ts"
import { badKeys, badTtls, badValues } from "./inputs.ts"

export const atomicChecks: ReadonlyArray<Check> = [
  {
    id: "set-if-absent",
    name: "setIfAbsent writes only a missing key, and of concurrent callers exactly one wins",
    run: Effect.gen(function*() {
      const store = yield* BaseKvStoreService
      assert.isTrue(yield* store.setIfAbsent("lock:a", "owner-1"))
      assert.isFalse(yield* store.setIfAbsent("lock:a", "owner-2"))
      assert.strictEqual(yield* store.get("lock:a"), "owner-1")
      yield* store.set("lock:empty", "")
      assert.isFalse(yield* store.setIfAbsent("lock:empty", "x"), "an empty value is present")
      assert.strictEqual(yield* store.get("lock:empty"), "")
      yield* store.delete("lock:a")
      assert.isTrue(yield* store.setIfAbsent("lock:a", "owner-3"), "a deleted key is missing again")
      const results = yield* Effect.forEach(
        Array.from({ length: 50 }, (_, i) => i),
        (i) => Effect.map(store.setIfAbsent("lock:race", `fiber ${i}`), (won) => won ? i : -1),
        { concurrency: "unbounded" }
      )
      const winners = results.filter((i) => i >= 0)
      assert.strictEqual(winners.length, 1, "exactly one of 50 concurrent callers wins")
      assert.strictEqual(yield* store.get("lock:race"), `fiber ${winners[0]}`, "and its value is stored")
    })
  },
  {
    id: "compare-and-set",
    name: "compareAndSet replaces only the expected value; null means missing, and deletes",
    run: Effect.gen(function*() {
      const store = yield* BaseKvStoreService
      assert.isTrue(yield* store.compareAndSet("cas:1", null, "a"), "null expects a missing key")
      assert.strictEqual(yield* store.get("cas:1"), "a")
      assert.isFalse(yield* store.compareAndSet("cas:1", null, "b"), "the key is no longer missing")
      assert.isFalse(yield* store.compareAndSet("cas:1", "x", "b"), "a different value")
      assert.isFalse(yield* store.compareAndSet("cas:1", "", "b"), "the empty string is not the value")
      assert.strictEqual(yield* store.get("cas:1"), "a", "a failed compareAndSet changes nothing")
      assert.isTrue(yield* store.compareAndSet("cas:1", "a", ""))
      assert.strictEqual(yield* store.get("cas:1"), "", "the empty string is a value")
      assert.isFalse(yield* store.compareAndSet("cas:1", null, "b"), "an empty value is not missing")
      assert.isTrue(yield* store.compareAndSet("cas:1", "", null), "next null deletes")
      assert.strictEqual(yield* store.get("cas:1"), null)
      assert.deepStrictEqual(yield* store.list("cas:"), [])
      assert.isFalse(yield* store.compareAndSet("cas:2", "a", null), "a missing key is not the expected value")
      assert.isTrue(yield* store.compareAndSet("cas:2", null, null), "missing stays missing")
      assert.deepStrictEqual(yield* store.list("cas:"), [])
      const long = "日本 😀 ".repeat(10_000)
      yield* store.set("cas:3", long)
      assert.isFalse(yield* store.compareAndSet("cas:3", long.slice(0, -1), "x"), "the whole value is compared")
      assert.isTrue(yield* store.compareAndSet("cas:3", long, "x"))
      assert.strictEqual(yield* store.get("cas:3"), "x")
      const results = yield* Effect.forEach(
        Array.from({ length: 50 }, (_, i) => i),
        (i) => store.compareAndSet("cas:3", "x", `fiber ${i}`),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(results.filter(Boolean).length, 1, "of 50 concurrent swaps from one value, one wins")
    })
  },
  {
    id: "modify",
    name: "modify applies the function atomically and returns the new value; null deletes",
    timeout: 60_000,
    run: Effect.gen(function*() {
      const store = yield* BaseKvStoreService
      const seen: Array<string | null> = []
      assert.strictEqual(yield* store.modify("m:1", (v) => (seen.push(v), "a")), "a")
      assert.deepStrictEqual(seen, [null], "f sees null for a missing key")
      assert.strictEqual(yield* store.modify("m:1", (v) => v + "b"), "ab")
      assert.strictEqual(yield* store.get("m:1"), "ab")
      assert.strictEqual(yield* store.modify("m:1", () => ""), "")
      assert.strictEqual(yield* store.modify("m:1", (v) => v === "" ? "was empty" : "was missing"), "was empty")
      assert.strictEqual(yield* store.modify("m:1", () => null), null, "null deletes")
      assert.deepStrictEqual(yield* store.list("m:"), [])
      assert.strictEqual(yield* store.modify("m:2", () => null), null, "null on a missing key")
      assert.deepStrictEqual(yield* store.list("m:"), [])
      yield* Effect.forEach(
        Array.from({ length: 1000 }, (_, i) => i),
        () => store.modify("m:counter", increment),
        { concurrency: "unbounded", discard: true }
      )
      assert.strictEqual(yield* store.get("m:counter"), "1000", "1,000 concurrent increments lose none")
    })
  },
  {
    id: "modify-bad-function",
    name: "a modify function that throws or returns a non-string fails with KvInputError and writes nothing",
    run: Effect.gen(function*() {
      const store = yield* BaseKvStoreService
      yield* store.set("m:kept", "v")
      const thrown = yield* Effect.flip(store.modify("m:kept", () => {
        throw new Error("boom")
      }))
      assert.isTrue(isKvInputError(thrown), "fails with KvInputError")
      assert.strictEqual((thrown as KvInputError).reason, "FunctionThrew")
      assert.include(thrown.message, "boom", "the message carries the exception's")
      assert.strictEqual(yield* store.get("m:kept"), "v", "nothing written when f throws")
      for (
        const [label, result] of [["a number", 1], ["undefined", undefined], ["an object", {}], [
          "a lone surrogate",
          "\uD800"
        ]] as const
      ) {
        yield* expectRefused(label + " from f", store.modify("m:kept", () => result as unknown as string), {
          operation: "modify",
          argument: "next"
        })
        yield* expectRefused(
          label + " from f on a missing key",
          store.modify("m:new", () => result as unknown as string),
          {
            operation: "modify",
            argument: "next"
          }
        )
      }
      yield* expectRefused("f that is no function", store.modify("m:kept", "x" as unknown as () => string), {
        operation: "modify",
        argument: "f",
        reason: "InvalidOption"
      })
      assert.strictEqual(yield* store.get("m:kept"), "v")
      assert.deepStrictEqual(yield* store.list("m:"), ["kept"])
    })
  },
  {
    id: "atomic-contention",
    name: "many fibers racing modify, setIfAbsent and compareAndSet on few keys: the final state adds up",
    timeout: 120_000,
    run: Effect.gen(function*() {
      const store = yield* BaseKvStoreService
      const keys = ["race:a", "race:b", "race:c"]
      let wins = 0
      let swaps = 0
      yield* Effect.forEach(
        Array.from({ length: 300 }, (_, i) => i),
        (i) =>
          Effect.gen(function*() {
            const key = keys[i % keys.length]
            yield* store.modify(`${key}:count`, increment)
            if (yield* store.setIfAbsent(`${key}:first`, `${i}`)) wins++
            const current = yield* store.get(`${key}:token`)
            if (yield* store.compareAndSet(`${key}:token`, current, `${i}`)) swaps++
          }),
        { concurrency: "unbounded", discard: true }
      )
      for (const key of keys) assert.strictEqual(yield* store.get(`${key}:count`), "100", `${key}: no lost increment`)
      assert.strictEqual(wins, keys.length, "one setIfAbsent winner per key")
      assert.isAtLeast(swaps, keys.length, "at least one swap per key")
      assert.isAtMost(swaps, 300)
    })
  },
  {
    id: "bad-atomic-input",
    name: "bad keys, values, expected/next values and write options fail with KvInputError and write nothing",
    run: Effect.gen(function*() {
      const store = yield* BaseKvStoreService
      yield* store.set("a:kept", "v")
      for (const [label, key, reason] of badKeys) {
        const asKey = key as string
        yield* expectRefused(label, store.setIfAbsent(asKey, "v"), {
          operation: "setIfAbsent",
          argument: "key",
          reason
        })
        yield* expectRefused(label, store.compareAndSet(asKey, null, "v"), {
          operation: "compareAndSet",
          argument: "key",
          reason
        })
        yield* expectRefused(label, store.modify(asKey, () => "v"), { operation: "modify", argument: "key", reason })
        yield* expectRefused(label, store.ttl(asKey), { operation: "ttl", argument: "key", reason })
        yield* expectRefused(label, store.has(asKey), { operation: "has", argument: "key", reason })
      }
      for (const [label, value, reason] of badValues) {
        if (value === null) continue
        const asValue = value as string
        yield* expectRefused(label, store.setIfAbsent("a:new", asValue), {
          operation: "setIfAbsent",
          argument: "value",
          reason
        })
        yield* expectRefused(label, store.compareAndSet("a:kept", "v", asValue), {
          operation: "compareAndSet",
          argument: "next",
          reason
        })
        yield* expectRefused(label, store.compareAndSet("a:kept", asValue, "x"), {
          operation: "compareAndSet",
          argument: "expected",
          reason
        })
      }
      const writes = (options: unknown) => {
        const o = options as WriteOptions
        return [
          ["set", store.set("a:kept", "w", o)],
          ["set", store.set("a:new", "w", o)],
          ["setIfAbsent", store.setIfAbsent("a:new", "w", o)],
          ["compareAndSet", store.compareAndSet("a:kept", "v", "w", o)],
          ["modify", store.modify("a:kept", () => "w", o)],
          ["setMany", store.setMany([["a:kept", "w"], ["a:new", "w"]], o)]
        ] as const
      }
      for (const [label, ttl] of badTtls) {
        for (const [operation, effect] of writes({ ttl })) {
          yield* expectRefused(`ttl ${label}`, effect, { operation, argument: "ttl", reason: "InvalidOption" })
        }
      }
      for (const [operation, effect] of writes({ ttl: 1000, keepTtl: true })) {
        yield* expectRefused("both ttl and keepTtl", effect, { operation, argument: "ttl", reason: "InvalidOption" })
      }
      for (const [operation, effect] of writes({ keepTtl: "yes" })) {
        yield* expectRefused("keepTtl \"yes\"", effect, { operation, argument: "keepTtl", reason: "InvalidOption" })
      }
      for (const options of [42, "1 second", null]) {
        for (const [operation, effect] of writes(options)) {
          yield* expectRefused(`options ${String(options)}`, effect, { operation, argument: "options" })
        }
      }
      yield* assertStoreHolds(store, [["a:kept", "v"]])
      assert.strictEqual(millisOf(yield* store.ttl("a:kept")), Infinity, "the expiry is untouched too")
    })
  }
]
