/**
 * The conformance checks of the four operations and the input rules: `get`, `set`, `delete` and `list` with their
 * semantics, keys and prefixes taken literally, laziness, concurrent writers, the length limits, and the
 * `KvInputError` for each bad key, value and prefix.
 *
 * @internal
 */
import { assert } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { BaseKvStoreService, MAX_KEY_LENGTH, MAX_VALUE_LENGTH } from "../../BaseKvStore.ts"
import type { Check } from "./check.ts"
import { assertStoreHolds, expectInputError, setAll, shuffled, sorted } from "./helpers.ts"
import { badKeys, badPrefixes, badValues, specialKeys, unicodeKeys } from "./inputs.ts"

export const basicChecks: ReadonlyArray<Check> = [
  {
    id: "missing-key",
    name: "get of a missing key is null",
    run: Effect.gen(function*() {
      const store = yield* BaseKvStoreService
      assert.strictEqual(yield* store.get("upload:missing"), null)
      assert.deepStrictEqual(yield* store.list(""), [])
    })
  },
  {
    id: "set-get",
    name: "set stores a value that get returns exactly",
    run: Effect.gen(function*() {
      const store = yield* BaseKvStoreService
      const values = ["", " ", "{\"size\":1024}", "line1\nline2\r\n", "日本語 😀 e\u0301", "x".repeat(100_000)]
      for (const [index, value] of values.entries()) yield* store.set(`value:${index}`, value)
      for (const [index, value] of values.entries()) assert.strictEqual(yield* store.get(`value:${index}`), value)
    })
  },
  {
    id: "overwrite",
    name: "set overwrites the previous value and keeps one key",
    run: Effect.gen(function*() {
      const store = yield* BaseKvStoreService
      yield* store.set("upload:1", "first")
      yield* store.set("upload:1", "second")
      assert.strictEqual(yield* store.get("upload:1"), "second")
      yield* store.set("upload:1", "")
      assert.strictEqual(yield* store.get("upload:1"), "", "an empty value is a value, not a missing key")
      assert.deepStrictEqual(yield* store.list("upload:"), ["1"])
    })
  },
  {
    id: "delete",
    name: "delete removes the key; deleting a missing key succeeds",
    run: Effect.gen(function*() {
      const store = yield* BaseKvStoreService
      yield* setAll(store, [["upload:1", "a"], ["upload:2", "b"]])
      yield* store.delete("upload:1")
      assert.strictEqual(yield* store.get("upload:1"), null)
      assert.strictEqual(yield* store.get("upload:2"), "b", "other keys are untouched")
      yield* store.delete("upload:1")
      yield* store.delete("never-set")
      assert.deepStrictEqual(yield* store.list(""), ["upload:2"])
      yield* store.set("upload:1", "again")
      assert.strictEqual(yield* store.get("upload:1"), "again", "a deleted key can be set again")
    })
  },
  {
    id: "list-prefix",
    name: "list returns the keys under the prefix with the prefix removed, sorted ascending",
    run: Effect.gen(function*() {
      const store = yield* BaseKvStoreService
      // Digits, case, and characters whose UTF-16 order differs from their code point order (😀 vs ～).
      const ids = ["b", "a", "A", "10", "9", "1", "é", "😀", "\uFF5E", "a:part:1", "a:part:0", "Z"]
      yield* setAll(store, shuffled(ids).map((id) => [`upload:${id}`, id]))
      yield* setAll(store, [["uploads", "not under upload:"], ["upload", "not under upload:"], ["other:a", "x"]])
      const listed = yield* store.list("upload:")
      assert.deepStrictEqual(listed, sorted(ids))
      for (const id of listed) assert.strictEqual(yield* store.get(`upload:${id}`), id)
      assert.deepStrictEqual(yield* store.list("upload:a"), ["", ":part:0", ":part:1"])
      assert.deepStrictEqual(yield* store.list("nothing:"), [])
    })
  },
  {
    id: "list-once",
    name: "list returns each key exactly once",
    run: Effect.gen(function*() {
      const store = yield* BaseKvStoreService
      for (let round = 0; round < 3; round++) {
        yield* setAll(store, ["a", "b", "c"].map((id) => [`k:${id}`, String(round)]))
      }
      yield* store.delete("k:b")
      yield* store.set("k:b", "back")
      assert.deepStrictEqual(yield* store.list("k:"), ["a", "b", "c"])
    })
  },
  {
    id: "list-all",
    name: "list(\"\") returns every key, sorted",
    run: Effect.gen(function*() {
      const store = yield* BaseKvStoreService
      const keys = ["upload:2", "session:1", "upload:1", "a", "z:z", "😀", "Upload:3"]
      yield* setAll(store, keys.map((key) => [key, "v"]))
      assert.deepStrictEqual(yield* store.list(""), sorted(keys))
    })
  },
  {
    id: "prefix-is-key",
    name: "a prefix that is itself a key lists that key as \"\"",
    run: Effect.gen(function*() {
      const store = yield* BaseKvStoreService
      yield* setAll(store, [["upload", "root"], ["upload:1", "one"], ["uploads", "plural"]])
      const listed = yield* store.list("upload")
      assert.deepStrictEqual(listed, ["", ":1", "s"])
      assert.strictEqual(yield* store.get("upload" + listed[0]), "root")
      assert.deepStrictEqual(yield* store.list("upload:1"), [""])
    })
  },
  {
    id: "strip-once",
    name: "the prefix is removed once, from the start only",
    run: Effect.gen(function*() {
      const store = yield* BaseKvStoreService
      yield* setAll(store, [["p:p:1", "a"], ["p:1:p:", "b"], ["x:p:2", "c"], ["p:", "d"]])
      assert.deepStrictEqual(yield* store.list("p:"), ["", "1:p:", "p:1"])
      assert.deepStrictEqual(yield* store.list("p:p:"), ["1"])
      assert.deepStrictEqual(yield* store.list("x:"), ["p:2"])
    })
  },
  {
    id: "literal-characters",
    name: "glob, regex and separator characters in keys and prefixes are literal",
    run: Effect.gen(function*() {
      const store = yield* BaseKvStoreService
      yield* setAll(store, specialKeys.map((key) => [key, `value of ${key}`]))
      yield* assertStoreHolds(store, specialKeys.map((key) => [key, `value of ${key}`]))
      for (const prefix of ["a*", "a?", "a[", "a[b]", "[ab]", "a\\", "a\\*", "a%", "a_", "a.", "a\n", "a^"]) {
        const expected = sorted(
          specialKeys.filter((key) => key.startsWith(prefix)).map((key) => key.slice(prefix.length))
        )
        assert.deepStrictEqual(yield* store.list(prefix), expected, `list(${JSON.stringify(prefix)})`)
      }
      assert.deepStrictEqual(yield* store.list("*"), [], "a glob star matches nothing but itself")
      assert.deepStrictEqual(yield* store.list("?"), [])
    })
  },
  {
    id: "unicode",
    name: "unicode keys and prefixes (CJK, emoji, combining marks) are stored and listed as they are",
    run: Effect.gen(function*() {
      const store = yield* BaseKvStoreService
      const entries = unicodeKeys.map((key) => [key, `值 ${key}`] as const)
      yield* setAll(store, entries)
      yield* assertStoreHolds(store, entries)
      assert.deepStrictEqual(yield* store.list("日本:"), ["大阪", "東京"].sort())
      assert.deepStrictEqual(yield* store.list("😀"), sorted([":1", ":2", "😀", "z"]))
      assert.deepStrictEqual(yield* store.list("e"), ["\u0301"], "é precomposed is a different key from e + accent")
      assert.strictEqual(yield* store.get("e\u0301"), "值 e\u0301")
    })
  },
  {
    id: "lazy",
    name: "effects are lazy: building does nothing, running does the work, every time",
    run: Effect.gen(function*() {
      const store = yield* BaseKvStoreService
      const set = store.set("lazy:1", "v")
      const remove = store.delete("lazy:1")
      const get = store.get("lazy:1")
      const list = store.list("lazy:")
      assert.strictEqual(yield* store.get("lazy:1"), null, "building set wrote nothing")
      assert.strictEqual(yield* get, null)
      yield* set
      assert.strictEqual(yield* get, "v", "a get built earlier reads the value when it runs")
      assert.deepStrictEqual(yield* list, ["1"], "a list built earlier lists when it runs")
      yield* remove
      assert.strictEqual(yield* get, null)
      yield* set
      assert.strictEqual(yield* get, "v", "running the same set again writes again")
      yield* remove
      assert.deepStrictEqual(yield* list, [], "running the same delete again deletes again")
      yield* store.set("lazy:2", "kept")
      const unrun = store.delete("lazy:2")
      assert.strictEqual(yield* store.get("lazy:2"), "kept", "building delete removed nothing")
      yield* unrun
    })
  },
  {
    id: "concurrent",
    name: "many fibers writing concurrently lose nothing",
    run: Effect.gen(function*() {
      const store = yield* BaseKvStoreService
      const writers = Array.from({ length: 200 }, (_, i) => i)
      yield* Effect.forEach(
        writers,
        (i) =>
          Effect.gen(function*() {
            yield* store.set(`fiber:${i}`, `value ${i}`)
            yield* store.set("fiber:shared", `value ${i}`)
            if (i % 2 === 0) yield* store.delete(`fiber:${i}`)
          }),
        { concurrency: "unbounded", discard: true }
      )
      const odd = writers.filter((i) => i % 2 === 1).map((i) => `${i}`)
      assert.deepStrictEqual(yield* store.list("fiber:"), sorted([...odd, "shared"]))
      for (const i of odd) assert.strictEqual(yield* store.get(`fiber:${i}`), `value ${i}`)
      assert.include(writers.map((i) => `value ${i}`), yield* store.get("fiber:shared"))
      const reads = yield* Effect.forEach(odd, (i) => store.get(`fiber:${i}`), { concurrency: "unbounded" })
      assert.deepStrictEqual(reads, odd.map((i) => `value ${i}`))
    })
  },
  {
    id: "limits",
    name: "keys of exactly MAX_KEY_LENGTH and values of exactly MAX_VALUE_LENGTH are accepted",
    timeout: 60_000,
    run: Effect.gen(function*() {
      const store = yield* BaseKvStoreService
      const atLimit = "k".repeat(MAX_KEY_LENGTH)
      const emojiAtLimit = "😀".repeat(MAX_KEY_LENGTH / 2)
      assert.strictEqual(emojiAtLimit.length, MAX_KEY_LENGTH, "length counts UTF-16 code units: an emoji is two")
      const longValue = "v".repeat(MAX_VALUE_LENGTH)
      // Incompressible, and 3 bytes a character in UTF-8: a backend whose index limits bytes finds out here.
      const cjkAtLimit = Array.from(
        { length: MAX_KEY_LENGTH },
        (_, i) => String.fromCharCode(0x4E00 + (i * 7919) % 20_000)
      )
        .join("")
      yield* store.set(atLimit, longValue)
      yield* store.set(emojiAtLimit, "emoji")
      yield* store.set(cjkAtLimit, "cjk")
      assert.strictEqual(yield* store.get(cjkAtLimit), "cjk")
      assert.strictEqual((yield* store.get(atLimit))?.length, MAX_VALUE_LENGTH)
      assert.strictEqual(yield* store.get(emojiAtLimit), "emoji")
      assert.deepStrictEqual(yield* store.list("k".repeat(MAX_KEY_LENGTH)), [""])
    })
  },
  {
    id: "bad-key",
    name: "a bad key fails every operation with KvInputError and changes nothing",
    run: Effect.gen(function*() {
      const store = yield* BaseKvStoreService
      const before = [["upload:1", "kept"]] as const
      yield* setAll(store, before)
      for (const [label, key, reason] of badKeys) {
        const asKey = key as string
        const named = typeof key === "string" ? key : undefined
        for (const operation of ["get", "delete"] as const) {
          yield* expectInputError(label, store[operation](asKey), { operation, argument: "key", reason, key: named })
        }
        yield* expectInputError(label, store.set(asKey, "v"), { operation: "set", argument: "key", reason, key: named })
      }
      yield* assertStoreHolds(store, before)
    })
  },
  {
    id: "bad-value",
    name: "a bad value fails set with KvInputError naming the key, and stores nothing",
    timeout: 60_000,
    run: Effect.gen(function*() {
      const store = yield* BaseKvStoreService
      yield* store.set("upload:1", "kept")
      for (const [label, value, reason] of badValues) {
        yield* expectInputError(label, store.set("upload:1", value as string), {
          operation: "set",
          argument: "value",
          reason,
          key: "upload:1"
        })
        yield* expectInputError(label, store.set("upload:2", value as string), {
          operation: "set",
          argument: "value",
          reason,
          key: "upload:2"
        })
      }
      yield* assertStoreHolds(store, [["upload:1", "kept"]])
      const error = yield* Effect.flip(store.set("upload:1", 42 as unknown as string))
      assert.include(error.message, "upload:1", "the message names the key")
    })
  },
  {
    id: "bad-prefix",
    name: "a bad prefix fails list with KvInputError",
    run: Effect.gen(function*() {
      const store = yield* BaseKvStoreService
      yield* store.set("upload:1", "kept")
      for (const [label, prefix, reason] of badPrefixes) {
        yield* expectInputError(label, store.list(prefix as string), {
          operation: "list",
          argument: "prefix",
          reason,
          key: typeof prefix === "string" ? prefix : undefined
        })
      }
      yield* assertStoreHolds(store, [["upload:1", "kept"]])
    })
  },
  {
    id: "tagged-errors",
    name: "input errors are tagged and can be handled with catchTag",
    run: Effect.gen(function*() {
      const store = yield* BaseKvStoreService
      const recovered = yield* store.get(undefined as unknown as string).pipe(
        Effect.catchTag("KvInputError", (error) => Effect.succeed(`${error.operation}/${error.reason}`))
      )
      assert.strictEqual(recovered, "get/NotAString")
    })
  }
]
