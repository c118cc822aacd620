/**
 * The conformance suite: the executable form of the `BaseKvStore` contract.
 *
 * Every backend's test file calls `conformance(name, layer)` unchanged, effect-kv's own and third parties' alike. A
 * backend is done when the whole suite passes. The suite is also available as data (`checks`), so it can be run
 * outside vitest, and so that the suite itself is tested against deliberately broken backends.
 *
 * Each check runs on a fresh build of the layer and expects the store it gets to be empty. A backend over shared
 * storage (a Redis server) should give each build its own namespace, e.g. a `keyPrefix` made unique per build with
 * `Layer.suspend`.
 *
 * Requires `vitest`, `@effect/vitest` and `fast-check` (dev dependencies of the test project).
 *
 * @since 0.1.0
 */
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as fc from "fast-check"
import { inspect, isDeepStrictEqual } from "node:util"
import {
  type BaseKvStore,
  BaseKvStoreService,
  type InputReason,
  KvInputError,
  MAX_KEY_LENGTH,
  MAX_VALUE_LENGTH,
  type Operation
} from "./BaseKvStore.ts"

/**
 * One rule of the contract, as an effect that fails (or dies on a failed assertion) when the store breaks it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Check {
  /** Stable identifier, e.g. `"list-prefix"`. */
  readonly id: string
  readonly name: string
  readonly run: Effect.Effect<void, unknown, BaseKvStoreService>
  /** Milliseconds; checks that do many operations need more than vitest's default. */
  readonly timeout?: number
}

/**
 * Options for the suite.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConformanceOptions {
  /** Sequences the model-based property test runs. Default 1000, the least the contract asks for. */
  readonly numRuns?: number
  /** fast-check seed, to replay a failure the suite reported. */
  readonly seed?: number
}

const setAll = (store: BaseKvStore, entries: ReadonlyArray<readonly [string, string]>) =>
  Effect.forEach(entries, ([key, value]) => store.set(key, value), { discard: true })

const shuffled = <A>(items: ReadonlyArray<A>): Array<A> => {
  const copy = [...items]
  // Fixed permutation: insertion order must not be mistaken for sort order, and a failure must be reproducible.
  for (let i = copy.length - 1; i > 0; i--) {
    const j = (i * 7919 + 13) % (i + 1)
    ;[copy[i], copy[j]] = [copy[j], copy[i]]
  }
  return copy
}

/** The order the contract promises: UTF-16 code units, as the default `Array.prototype.sort` compares. */
const sorted = (keys: Iterable<string>): Array<string> => [...keys].sort()

const expectInputError = (
  label: string,
  effect: Effect.Effect<unknown, unknown>,
  expected: {
    readonly operation: Operation
    readonly argument: "key" | "value" | "prefix"
    readonly reason: InputReason
    readonly key: string | undefined
  }
) =>
  Effect.gen(function*() {
    const result = yield* Effect.result(effect)
    const where = `${expected.operation} with ${label} as the ${expected.argument}`
    if (Result.isSuccess(result)) return assert.fail(`${where}: succeeded instead of failing with KvInputError`)
    assert.instanceOf(result.failure, KvInputError, where)
    const { argument, key, message, operation, reason } = result.failure as KvInputError
    assert.deepStrictEqual({ operation, argument, reason, key }, expected, where)
    assert.include(message, operation, `${where}: the message names the operation`)
    assert.include(message, expected.argument, `${where}: the message names the argument`)
  })

/** Arguments an untyped JavaScript caller can pass, each with the reason it must be refused for. */
const badKeys: ReadonlyArray<readonly [string, unknown, InputReason]> = [
  ["a number", 42, "NotAString"],
  ["undefined", undefined, "NotAString"],
  ["null", null, "NotAString"],
  ["an object", { toString: () => "k" }, "NotAString"],
  ["a String object", new String("k"), "NotAString"],
  ["an array", ["k"], "NotAString"],
  ["a symbol", Symbol("k"), "NotAString"],
  ["the empty string", "", "Empty"],
  ["a key one longer than MAX_KEY_LENGTH", "k".repeat(MAX_KEY_LENGTH + 1), "TooLong"],
  ["a lone high surrogate", "k\uD800", "MalformedUnicode"],
  ["a lone low surrogate", "\uDC00k", "MalformedUnicode"]
]

const badValues: ReadonlyArray<readonly [string, unknown, InputReason]> = [
  ["a number", 1, "NotAString"],
  ["undefined", undefined, "NotAString"],
  ["null", null, "NotAString"],
  ["an object", { a: 1 }, "NotAString"],
  ["a Uint8Array", new Uint8Array([1, 2]), "NotAString"],
  ["a value one longer than MAX_VALUE_LENGTH", "v".repeat(MAX_VALUE_LENGTH + 1), "TooLong"],
  ["a lone surrogate", "v\uD83D", "MalformedUnicode"]
]

const badPrefixes: ReadonlyArray<readonly [string, unknown, InputReason]> = [
  ["undefined", undefined, "NotAString"],
  ["null", null, "NotAString"],
  ["a number", 7, "NotAString"],
  ["a RegExp", /^a/, "NotAString"],
  ["a prefix one longer than MAX_KEY_LENGTH", "p".repeat(MAX_KEY_LENGTH + 1), "TooLong"],
  ["a lone surrogate", "\uDBFF", "MalformedUnicode"]
]

/** Characters that are special somewhere: globs (Redis SCAN MATCH), LIKE, regexes, paths, URLs, separators. */
const specialKeys = [
  "a*",
  "a*b",
  "ab",
  "a?",
  "ax",
  "a[b]",
  "ab]",
  "[ab]",
  "a\\",
  "a\\*",
  "a%",
  "a_",
  "a.b",
  "a/b",
  "a:b",
  "a b",
  "a\nb",
  "a\tb",
  "a^$|+()"
]

const unicodeKeys = ["日本:東京", "日本:大阪", "日:x", "😀:1", "😀:2", "😀😀", "é", "e\u0301", "\uFF5E", "\u{1F600}z"]

const assertStoreHolds = (store: BaseKvStore, entries: ReadonlyArray<readonly [string, string]>) =>
  Effect.gen(function*() {
    assert.deepStrictEqual(yield* store.list(""), sorted(entries.map(([key]) => key)))
    for (const [key, value] of entries) {
      assert.strictEqual(yield* store.get(key), value, `value of ${JSON.stringify(key)}`)
    }
  })

// --- the model-based property test ---

type Command =
  | { readonly op: "get"; readonly key: string }
  | { readonly op: "set"; readonly key: string; readonly value: string }
  | { readonly op: "delete"; readonly key: string }
  | { readonly op: "list"; readonly prefix: string }
  | { readonly op: "badKey"; readonly call: "get" | "set" | "delete"; readonly key: unknown }
  | { readonly op: "badValue"; readonly key: string; readonly value: unknown }
  | { readonly op: "badPrefix"; readonly prefix: unknown }

// A small alphabet makes keys collide and prefix one another often; it includes glob and multi-unit characters.
const unit = fc.constantFrom("a", "b", ":", "/", "*", "?", "[", "]", "\\", "é", "😀", "\uFF5E")
const keyArb = fc.string({ unit, minLength: 1, maxLength: 4 })
const prefixArb = fc.string({ unit, minLength: 0, maxLength: 3 })
const valueArb = fc.oneof(fc.string({ maxLength: 8 }), fc.string({ unit: "grapheme", maxLength: 8 }))
const badArb = (reasons: ReadonlyArray<readonly [string, unknown, InputReason]>) =>
  fc.constantFrom(...reasons.map(([, input]) => input))

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  { arbitrary: keyArb.map((key) => ({ op: "get", key }) as const), weight: 6 },
  { arbitrary: fc.record({ key: keyArb, value: valueArb }).map((c) => ({ op: "set", ...c }) as const), weight: 8 },
  { arbitrary: keyArb.map((key) => ({ op: "delete", key }) as const), weight: 4 },
  { arbitrary: prefixArb.map((prefix) => ({ op: "list", prefix }) as const), weight: 4 },
  {
    arbitrary: fc.record({ call: fc.constantFrom("get", "set", "delete"), key: badArb(badKeys) }).map((c) =>
      ({ op: "badKey", ...c }) as const
    ),
    weight: 1
  },
  {
    arbitrary: fc.record({ key: keyArb, value: badArb(badValues) }).map((c) => ({ op: "badValue", ...c }) as const),
    weight: 1
  },
  { arbitrary: badArb(badPrefixes).map((prefix) => ({ op: "badPrefix", prefix }) as const), weight: 1 }
)

const modelList = (model: ReadonlyMap<string, string>, prefix: string) =>
  sorted([...model.keys()].filter((key) => key.startsWith(prefix)).map((key) => key.slice(prefix.length)))

/**
 * Runs one command on the store, under `namespace`, and on the model; returns the store's effect and what the model
 * expects it to succeed with. Bad inputs are passed bare, as an untyped caller would, and must fail with KvInputError.
 */
const step = (
  store: BaseKvStore,
  namespace: string,
  model: Map<string, string>,
  command: Command
): { readonly actual: Effect.Effect<unknown, unknown>; readonly expected: unknown } => {
  switch (command.op) {
    case "get":
      return { actual: store.get(namespace + command.key), expected: model.get(command.key) ?? null }
    case "set":
      model.set(command.key, command.value)
      return { actual: store.set(namespace + command.key, command.value), expected: undefined }
    case "delete":
      model.delete(command.key)
      return { actual: store.delete(namespace + command.key), expected: undefined }
    case "list":
      return { actual: store.list(namespace + command.prefix), expected: modelList(model, command.prefix) }
    case "badKey": {
      const key = command.key as string
      const actual = command.call === "set" ? store.set(key, "v") : store[command.call](key)
      return { actual: Effect.flip(actual), expected: KvInputError }
    }
    case "badValue":
      return {
        actual: Effect.flip(store.set(namespace + command.key, command.value as string)),
        expected: KvInputError
      }
    case "badPrefix":
      return { actual: Effect.flip(store.list(command.prefix as string)), expected: KvInputError }
  }
}

const describeCommand = (index: number, command: Command) =>
  `command ${index} ${inspect(command, { breakLength: Infinity })}`

/** One sequence against the store and the model; dies, naming the command, at the first disagreement. */
const agrees = (store: BaseKvStore, namespace: string, commands: ReadonlyArray<Command>) =>
  Effect.gen(function*() {
    const model = new Map<string, string>()
    for (const [index, command] of commands.entries()) {
      const { actual, expected } = step(store, namespace, model, command)
      const value = yield* Effect.catchCause(
        actual,
        (cause) => Effect.die(new Error(`${describeCommand(index, command)} failed: ${Cause.pretty(cause)}`))
      )
      const ok = expected === KvInputError ? value instanceof KvInputError : isDeepStrictEqual(value, expected)
      if (!ok) assert.deepStrictEqual(value, expected, describeCommand(index, command))
    }
    assert.deepStrictEqual(yield* store.list(namespace), modelList(model, ""), "final listing")
    for (const [key, value] of model) {
      assert.strictEqual(yield* store.get(namespace + key), value, `final value of ${JSON.stringify(key)}`)
    }
  })

const modelBased = (options: ConformanceOptions): Check => ({
  id: "model",
  name: "agrees with a reference model on random sequences of get/set/delete/list (model-based property test)",
  timeout: 300_000,
  run: Effect.gen(function*() {
    const store = yield* BaseKvStoreService
    let sequence = 0
    // Each sequence runs in its own part of the keyspace, so sequences need no reset between them.
    const property = fc.asyncProperty(
      fc.array(commandArb, { maxLength: 30 }),
      (commands) => Effect.runPromise(agrees(store, `seq${sequence++}|`, commands))
    )
    yield* Effect.promise(() =>
      fc.assert(property, {
        numRuns: options.numRuns ?? 1000,
        ...(options.seed === undefined ? {} : { seed: options.seed })
      })
    )
  })
})

/**
 * The rules of the contract, each a `Check`.
 *
 * @since 0.1.0
 * @category checks
 */
export const checks = (options: ConformanceOptions = {}): ReadonlyArray<Check> => [
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
      yield* store.set(atLimit, longValue)
      yield* store.set(emojiAtLimit, "emoji")
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
  },
  modelBased(options)
]

/**
 * Registers the conformance suite for a backend: one vitest test per check, each on a fresh build of `layer`.
 *
 * ```ts
 * import { conformance } from "effect-kv/testing"
 * import { memoryKvStore } from "effect-kv"
 *
 * conformance("memory", memoryKvStore)
 * ```
 *
 * @since 0.1.0
 * @category suites
 */
export const conformance = <E>(
  name: string,
  layer: Layer.Layer<BaseKvStoreService, E>,
  options: ConformanceOptions = {}
): void => {
  describe(name, () => {
    for (const check of checks(options)) {
      // Live clock: backends time out on real time. `fresh` so a memoized build is never shared between checks.
      it.live(check.name, () => check.run.pipe(Effect.provide(Layer.fresh(layer))), check.timeout)
    }
  })
}
