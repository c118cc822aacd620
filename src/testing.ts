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
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { identity } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/testing/TestClock"
import * as fc from "fast-check"
import { inspect, isDeepStrictEqual } from "node:util"
import {
  type Argument,
  type BaseKvStore,
  BaseKvStoreService,
  type InputReason,
  KvInputError,
  type ListPage,
  type ListPageOptions,
  MAX_BATCH_SIZE,
  MAX_KEY_LENGTH,
  MAX_PAGE_LIMIT,
  MAX_VALUE_LENGTH,
  type Operation,
  type WriteOptions
} from "./BaseKvStore.ts"
import { watchChecks } from "./internal/testing/watch.ts"

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
  /**
   * Sequences the model-based property test runs. Default 1000, the least the contract asks for (or
   * `EFFECT_KV_CONFORMANCE_RUNS` when set).
   */
  readonly numRuns?: number
  /** fast-check seed, to replay a failure the suite reported. */
  readonly seed?: number
  /**
   * Whose time expiry follows. `"test"`: the backend reads Effect's `Clock` (as the memory store does), so expiry
   * checks run on a `TestClock` and advance it, fast and exact. `"live"` (default): the backend keeps real time (Redis
   * does), so the checks use short real ttls and wait for the backend to expire them.
   */
  readonly clock?: "test" | "live" | undefined
  /**
   * Whether the `watch` checks run. Default `true`: a backend keeps the whole contract. `false` only for a backend
   * that does not deliver changes yet, so that the rest of the suite still guards it; its `watch` is not done.
   */
  readonly watch?: boolean | undefined
  /**
   * The order the `watch` checks expect one writer's events in. `"writer"` (default): the writer's order, across keys.
   * `"key"`: the writer's order key by key, for a backend whose keys live on servers that each deliver their own
   * changes (a Redis Cluster with keys on several masters: each master notifies on a connection of its own). The
   * checks then compare events key by key, and after a marker wait for the stream to be quiet for a moment.
   */
  readonly watchOrder?: "writer" | "key" | undefined
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

// --- time: expiry checks run on TestClock for backends that read Effect's Clock, on real time otherwise ---

interface Timing {
  /** A ttl that cannot run out between a write and the reads right after it. */
  readonly ttl: number
  /** Lets `ttl` (plus a margin) pass; on real time, waits until `key` is gone, within a bound. */
  readonly elapse: (store: BaseKvStore, key: string) => Effect.Effect<void, unknown>
  /** Wraps a check so that its time is the suite's: a `TestClock` on "test". */
  readonly run: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

const timing = (options: ConformanceOptions): Timing =>
  options.clock === "test"
    ? {
      ttl: 1000,
      elapse: () => TestClock.adjust(1001),
      run: (effect) => Effect.provide(effect, TestClock.layer())
    }
    : {
      // Long enough for a loaded machine to do the reads that follow a write; short enough to keep checks quick.
      ttl: 1500,
      elapse: (store, key) =>
        Effect.gen(function*() {
          yield* Effect.sleep("1500 millis")
          // The backend's own expiry decides; polling absorbs a server whose clock reading lags a little.
          for (let i = 0; i < 200 && (yield* store.get(key)) !== null; i++) yield* Effect.sleep("25 millis")
          assert.strictEqual(yield* store.get(key), null, `${key} expired within 5 s after its ttl`)
        }),
      run: identity
    }

const millisOf = (duration: Duration.Duration | null): number | null =>
  duration === null ? null : Duration.toMillis(duration)

/** Values an untyped caller can pass as a ttl, none a finite duration of at least 1 ms. */
const badTtls: ReadonlyArray<readonly [string, unknown]> = [
  ["-1", -1],
  ["0", 0],
  ["0.5 (under a millisecond)", 0.5],
  ["NaN", NaN],
  ["Infinity", Infinity],
  ["\"Infinity\"", "Infinity"],
  ["an unparsable string", "soon"],
  ["\"-5 seconds\"", "-5 seconds"],
  ["an empty object", {}],
  ["an object that is no duration", { ms: 100 }],
  ["null", null],
  ["true", true],
  ["a function", () => 100]
]

const expectRefused = (
  label: string,
  effect: Effect.Effect<unknown, unknown>,
  expected: { readonly operation: Operation; readonly argument: Argument; readonly reason?: InputReason }
) =>
  Effect.gen(function*() {
    const result = yield* Effect.result(effect)
    const where = `${expected.operation} with ${label}`
    if (Result.isSuccess(result)) return assert.fail(`${where}: succeeded instead of failing with KvInputError`)
    assert.instanceOf(result.failure, KvInputError, where)
    const error = result.failure as KvInputError
    assert.strictEqual(error.operation, expected.operation, `${where}: operation`)
    assert.strictEqual(error.argument, expected.argument, `${where}: argument`)
    if (expected.reason !== undefined) assert.strictEqual(error.reason, expected.reason, `${where}: reason`)
    assert.include(error.message, expected.operation, `${where}: the message names the operation`)
  })

const increment = (current: string | null) => String(Number(current ?? "0") + 1)

/** Every page of a listing, following the cursors. */
const allPages = (store: BaseKvStore, prefix: string, limit: number) =>
  Effect.gen(function*() {
    const pages: Array<ReadonlyArray<string>> = []
    let cursor: string | null = null
    do {
      const page: ListPage = yield* store.listPage(prefix, { limit, cursor })
      assert.isAtMost(page.keys.length, limit, "a page holds at most limit keys")
      pages.push(page.keys)
      cursor = page.cursor
      assert.isBelow(pages.length, 100_000, "the cursors end")
    } while (cursor !== null)
    return pages
  })

const expiryChecks = (options: ConformanceOptions): ReadonlyArray<Check> => {
  const time = timing(options)
  const check = (id: string, name: string, run: Effect.Effect<void, unknown, BaseKvStoreService>): Check => ({
    id,
    name,
    timeout: 60_000,
    run: time.run(run)
  })
  return [
    check(
      "ttl-expires",
      "a key written with a ttl is absent to every operation once it expires",
      Effect.gen(function*() {
        const store = yield* BaseKvStoreService
        const ttl = time.ttl
        yield* store.set("ttl:set", "v", { ttl })
        yield* store.set("ttl:string", "v", { ttl: `${ttl} millis` })
        yield* store.setMany([["ttl:many:1", "a"], ["ttl:many:2", "b"]], { ttl: Duration.millis(ttl) })
        assert.isTrue(yield* store.setIfAbsent("ttl:nx", "v", { ttl }))
        assert.isTrue(yield* store.compareAndSet("ttl:cas", null, "v", { ttl }))
        assert.strictEqual(yield* store.modify("ttl:modify", increment, { ttl }), "1")
        yield* store.set("ttl:kept", "forever")
        const keys = ["cas", "many:1", "many:2", "modify", "nx", "set", "string"]
        assert.deepStrictEqual(yield* store.list("ttl:"), sorted([...keys, "kept"]), "present before expiry")
        assert.strictEqual(yield* store.get("ttl:set"), "v")
        const left = millisOf(yield* store.ttl("ttl:set"))
        assert.isNotNull(left)
        assert.isTrue(left! > 0 && left! <= ttl, `ttl() reports the time left (${left} of ${ttl} ms)`)
        assert.strictEqual(millisOf(yield* store.ttl("ttl:kept")), Infinity, "ttl() of a key without expiry")
        assert.strictEqual(yield* store.ttl("ttl:missing"), null, "ttl() of a missing key")

        yield* time.elapse(store, "ttl:set")
        for (const key of keys) {
          assert.strictEqual(yield* store.get(`ttl:${key}`), null, `get of expired ttl:${key}`)
          assert.isFalse(yield* store.has(`ttl:${key}`), `has of expired ttl:${key}`)
          assert.strictEqual(yield* store.ttl(`ttl:${key}`), null, `ttl() of expired ttl:${key}`)
        }
        assert.deepStrictEqual(yield* store.list("ttl:"), ["kept"], "list leaves expired keys out")
        assert.strictEqual(yield* store.count("ttl:"), 1, "count leaves expired keys out")
        assert.deepStrictEqual((yield* store.listPage("ttl:", { limit: 10 })).keys, ["kept"], "listPage too")
        assert.deepStrictEqual(yield* store.getMany(["ttl:set", "ttl:kept"]), [null, "forever"])
        assert.isTrue(yield* store.setIfAbsent("ttl:nx", "again"), "setIfAbsent treats an expired key as missing")
        assert.isTrue(yield* store.compareAndSet("ttl:cas", null, "again"), "so does compareAndSet(key, null, ...)")
        assert.isFalse(yield* store.compareAndSet("ttl:set", "v", "stale"), "an expired value is no longer current")
        assert.strictEqual(yield* store.modify("ttl:modify", increment), "1", "modify sees an expired key as null")
        assert.strictEqual(yield* store.clear("ttl:"), 4, "clear counts only live keys")
      })
    ),
    check(
      "ttl-overwrite",
      "a write without ttl removes the expiry, keepTtl keeps it, a new ttl replaces it",
      Effect.gen(function*() {
        const store = yield* BaseKvStoreService
        const ttl = time.ttl
        yield* store.set("ow:plain", "1", { ttl })
        yield* store.set("ow:plain", "2")
        assert.strictEqual(millisOf(yield* store.ttl("ow:plain")), Infinity, "set without ttl removes the expiry")
        yield* store.set("ow:keep", "1", { ttl })
        yield* store.set("ow:keep", "2", { keepTtl: true })
        assert.isBelow(millisOf(yield* store.ttl("ow:keep"))!, Infinity, "keepTtl keeps the expiry")
        assert.isTrue(yield* store.compareAndSet("ow:keep", "2", "3", { keepTtl: true }))
        assert.strictEqual(yield* store.modify("ow:keep", (v) => v + "!", { keepTtl: true }), "3!")
        yield* store.set("ow:keep-none", "1")
        yield* store.set("ow:keep-none", "2", { keepTtl: true })
        assert.strictEqual(millisOf(yield* store.ttl("ow:keep-none")), Infinity, "keepTtl on a key without expiry")
        yield* store.set("ow:keep-new", "1", { keepTtl: true })
        assert.strictEqual(millisOf(yield* store.ttl("ow:keep-new")), Infinity, "keepTtl on a new key: no expiry")
        yield* store.set("ow:longer", "1", { ttl })
        yield* store.set("ow:longer", "2", { ttl: ttl * 1000 })
        assert.isAbove(millisOf(yield* store.ttl("ow:longer"))!, ttl, "a new ttl replaces the old one")
        yield* store.set("ow:cas", "1", { ttl })
        assert.isTrue(yield* store.compareAndSet("ow:cas", "1", "2"))
        assert.strictEqual(millisOf(yield* store.ttl("ow:cas")), Infinity, "compareAndSet without ttl: no expiry")
        yield* store.set("ow:undefined", "1", { ttl: undefined, keepTtl: undefined })
        assert.strictEqual(millisOf(yield* store.ttl("ow:undefined")), Infinity, "undefined options mean none")

        yield* time.elapse(store, "ow:keep")
        assert.strictEqual(yield* store.get("ow:keep"), null, "the kept expiry still applies")
        assert.strictEqual(yield* store.get("ow:plain"), "2")
        assert.strictEqual(yield* store.get("ow:keep-none"), "2")
        assert.strictEqual(yield* store.get("ow:longer"), "2")
        assert.strictEqual(yield* store.get("ow:cas"), "2")
      })
    )
  ]
}

const atomicChecks: ReadonlyArray<Check> = [
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
      assert.instanceOf(thrown, KvInputError)
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

const batchChecks: ReadonlyArray<Check> = [
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

const listingChecks: ReadonlyArray<Check> = [
  {
    id: "list-page",
    name: "listPage pages through list(prefix) in order, each key once, with an opaque cursor",
    timeout: 60_000,
    run: Effect.gen(function*() {
      const store = yield* BaseKvStoreService
      const ids = [...unicodeKeys, ...specialKeys, ...Array.from({ length: 40 }, (_, i) => `n${i}`)]
      yield* store.setMany(shuffled(ids).map((id) => [`p:${id}`, "v"]))
      yield* store.setMany([["p", "not under p:"], ["p:", "the prefix itself, listed as \"\""], ["q:1", "v"]])
      const listed = yield* store.list("p:")
      for (const limit of [1, 2, 7, listed.length - 1, listed.length, listed.length + 1, 1000]) {
        const pages = yield* allPages(store, "p:", limit)
        assert.deepStrictEqual(pages.flat(), listed, `pages of ${limit} concatenate to list`)
        for (const page of pages.slice(0, -1)) assert.strictEqual(page.length, limit, "only the last page is short")
      }
      const first = yield* store.listPage("p:", { limit: 3 })
      assert.deepStrictEqual(first.keys, listed.slice(0, 3))
      assert.isString(first.cursor)
      assert.deepStrictEqual(yield* store.listPage("none:", { limit: 3 }), { keys: [], cursor: null })
      assert.deepStrictEqual(yield* store.listPage("p:", { limit: 3, cursor: null }), first)
      const all = yield* store.listPage("", { limit: 1000 })
      assert.deepStrictEqual(all.keys, yield* store.list(""))
      assert.isNull(all.cursor)
      for (const limit of [0, -1, 1.5, NaN, MAX_PAGE_LIMIT + 1, "10", undefined]) {
        yield* expectRefused(`limit ${String(limit)}`, store.listPage("p:", { limit: limit as number }), {
          operation: "listPage",
          argument: "limit",
          reason: "InvalidOption"
        })
      }
      for (const cursor of ["", "garbage", "kv1.!!", "kv1.a", 42, {}]) {
        yield* expectRefused(
          `cursor ${inspect(cursor)}`,
          store.listPage("p:", { limit: 3, cursor: cursor as string }),
          {
            operation: "listPage",
            argument: "cursor",
            reason: "InvalidOption"
          }
        )
      }
      for (const options of [undefined, null, 5]) {
        yield* expectRefused(
          `options ${String(options)}`,
          store.listPage("p:", options as unknown as ListPageOptions),
          {
            operation: "listPage",
            argument: "options"
          }
        )
      }
      for (const [label, prefix, reason] of badPrefixes) {
        yield* expectRefused(label, store.listPage(prefix as string, { limit: 3 }), {
          operation: "listPage",
          argument: "prefix",
          reason
        })
      }
    })
  },
  {
    id: "list-page-changes",
    name: "keys written or deleted between pages: no key twice, every key present throughout exactly once",
    run: Effect.gen(function*() {
      const store = yield* BaseKvStoreService
      const stable = Array.from({ length: 30 }, (_, i) => `k${String(i * 2).padStart(3, "0")}`)
      yield* store.setMany(stable.map((key) => [`c:${key}`, "v"]))
      const seen: Array<string> = []
      let cursor: string | null = null
      let round = 0
      do {
        const page: ListPage = yield* store.listPage("c:", { limit: 4, cursor })
        seen.push(...page.keys)
        cursor = page.cursor
        const last = page.keys[page.keys.length - 1] ?? "k000"
        // Behind the cursor, ahead of it, and right at it: none may make a key appear twice or vanish.
        yield* store.setMany([
          [`c:${last}a`, "ahead"],
          [`c:a${round}`, "behind"],
          [`c:${last.slice(0, -1)}`, "behind"],
          [`c:${last}`, "overwritten"]
        ])
        yield* store.delete(`c:${last}a`)
        yield* store.set(`c:z${round++}`, "ahead")
      } while (cursor !== null)
      assert.strictEqual(new Set(seen).size, seen.length, `no key twice: ${seen}`)
      for (const key of stable) assert.include(seen, key, "every key present throughout appears")
      assert.deepStrictEqual(seen, sorted(seen), "in list order")
    })
  },
  {
    id: "list-stream",
    name: "listStream streams the same keys as list, across many pages",
    timeout: 60_000,
    run: Effect.gen(function*() {
      const store = yield* BaseKvStoreService
      const keys = Array.from({ length: 2500 }, (_, i) => `s:${i}`)
      for (let i = 0; i < keys.length; i += 1000) {
        yield* store.setMany(keys.slice(i, i + 1000).map((key) => [key, "v"]))
      }
      yield* store.setMany([["s", "not under s:"], ["t:1", "v"]])
      assert.deepStrictEqual(yield* Stream.runCollect(store.listStream("s:")), yield* store.list("s:"))
      assert.deepStrictEqual(yield* Stream.runCollect(store.listStream("none:")), [])
      assert.deepStrictEqual(
        yield* Stream.runCollect(Stream.take(store.listStream("s:"), 3)),
        (yield* store.list("s:")).slice(0, 3)
      )
      const error = yield* Effect.flip(Stream.runCollect(store.listStream(42 as unknown as string)))
      assert.instanceOf(error, KvInputError)
    })
  },
  {
    id: "lazy-new",
    name: "the atomic, batch and listing operations are lazy too",
    run: Effect.gen(function*() {
      const store = yield* BaseKvStoreService
      yield* store.set("ln:kept", "v")
      const setIfAbsent = store.setIfAbsent("ln:a", "v")
      const clear = store.clear("ln:")
      const unrun = [
        store.compareAndSet("ln:kept", "v", null),
        store.modify("ln:kept", () => null),
        store.setMany([["ln:b", "v"]]),
        store.deleteMany(["ln:kept"]),
        store.set("ln:c", "v", { ttl: 60_000 })
      ]
      const stream = store.listStream("ln:")
      assert.deepStrictEqual(yield* store.list("ln:"), ["kept"], "building wrote nothing")
      assert.lengthOf(unrun, 5)
      yield* store.set("ln:later", "v")
      assert.deepStrictEqual(yield* Stream.runCollect(stream), ["kept", "later"], "a stream reads when it runs")
      assert.strictEqual(yield* clear, 2, "a clear built earlier clears what is there when it runs")
      assert.isTrue(yield* setIfAbsent)
      assert.isFalse(yield* setIfAbsent, "running it again tries again")
      yield* store.delete("ln:a")
      assert.isTrue(yield* setIfAbsent)
    })
  }
]

// --- the model-based property test ---

type Write = { readonly ttl?: number; readonly keepTtl?: boolean } | undefined

type Command =
  | { readonly op: "get"; readonly key: string }
  | { readonly op: "set"; readonly key: string; readonly value: string; readonly write: Write }
  | { readonly op: "delete"; readonly key: string }
  | { readonly op: "list"; readonly prefix: string }
  | { readonly op: "has"; readonly key: string }
  | { readonly op: "getMany"; readonly keys: ReadonlyArray<string> }
  | {
    readonly op: "setMany"
    readonly entries: ReadonlyArray<readonly [string, string]>
    readonly write: Write
  }
  | { readonly op: "deleteMany"; readonly keys: ReadonlyArray<string> }
  | { readonly op: "count"; readonly prefix: string }
  | { readonly op: "clear"; readonly prefix: string }
  | { readonly op: "listPage"; readonly prefix: string; readonly limit: number }
  | { readonly op: "setIfAbsent"; readonly key: string; readonly value: string; readonly write: Write }
  | {
    readonly op: "compareAndSet"
    readonly key: string
    readonly expected: string | null
    readonly next: string | null
    readonly write: Write
  }
  | { readonly op: "modify"; readonly key: string; readonly append: string | null; readonly write: Write }
  | { readonly op: "ttl"; readonly key: string }
  | { readonly op: "advance"; readonly millis: number }
  | { readonly op: "badKey"; readonly call: "get" | "set" | "delete"; readonly key: unknown }
  | { readonly op: "badValue"; readonly key: string; readonly value: unknown }
  | { readonly op: "badPrefix"; readonly prefix: unknown }
  | { readonly op: "badBatch"; readonly keys: ReadonlyArray<string>; readonly bad: unknown }

// A small alphabet makes keys collide and prefix one another often; it includes glob and multi-unit characters.
const unit = fc.constantFrom("a", "b", ":", "/", "*", "?", "[", "]", "\\", "é", "😀", "\uFF5E")
const keyArb = fc.string({ unit, minLength: 1, maxLength: 4 })
const prefixArb = fc.string({ unit, minLength: 0, maxLength: 3 })
const valueArb = fc.oneof(fc.string({ maxLength: 8 }), fc.string({ unit: "grapheme", maxLength: 8 }))
const badArb = (reasons: ReadonlyArray<readonly [string, unknown, InputReason]>) =>
  fc.constantFrom(...reasons.map(([, input]) => input))

const commandArb = (clock: "test" | "live"): fc.Arbitrary<Command> => {
  // On real time the ttl is long enough never to run out within a run: the rules for "keep" and "none" are checked;
  // on TestClock, short ttls and explicit advances check expiry itself.
  const writeArb: fc.Arbitrary<Write> = fc.oneof(
    { arbitrary: fc.constant(undefined), weight: 4 },
    {
      arbitrary: (clock === "test" ? fc.integer({ min: 1, max: 60 }) : fc.constant(3_600_000)).map((ttl) => ({ ttl })),
      weight: 2
    },
    { arbitrary: fc.constant({ keepTtl: true }), weight: 1 }
  )
  const keysArb = fc.array(keyArb, { maxLength: 5 })
  const commands: Array<fc.WeightedArbitrary<Command>> = [
    { arbitrary: keyArb.map((key) => ({ op: "get", key }) as const), weight: 6 },
    {
      arbitrary: fc.record({ key: keyArb, value: valueArb, write: writeArb }).map((c) =>
        ({ op: "set", ...c }) as const
      ),
      weight: 8
    },
    { arbitrary: keyArb.map((key) => ({ op: "delete", key }) as const), weight: 3 },
    { arbitrary: prefixArb.map((prefix) => ({ op: "list", prefix }) as const), weight: 4 },
    { arbitrary: keyArb.map((key) => ({ op: "has", key }) as const), weight: 1 },
    { arbitrary: keysArb.map((keys) => ({ op: "getMany", keys }) as const), weight: 2 },
    {
      arbitrary: fc.record({ entries: fc.array(fc.tuple(keyArb, valueArb), { maxLength: 4 }), write: writeArb }).map((
        c
      ) => ({ op: "setMany", ...c }) as const),
      weight: 2
    },
    { arbitrary: keysArb.map((keys) => ({ op: "deleteMany", keys }) as const), weight: 1 },
    { arbitrary: prefixArb.map((prefix) => ({ op: "count", prefix }) as const), weight: 1 },
    { arbitrary: prefixArb.map((prefix) => ({ op: "clear", prefix }) as const), weight: 1 },
    {
      arbitrary: fc.record({ prefix: prefixArb, limit: fc.integer({ min: 1, max: 4 }) }).map((c) =>
        ({ op: "listPage", ...c }) as const
      ),
      weight: 2
    },
    {
      arbitrary: fc.record({ key: keyArb, value: valueArb, write: writeArb }).map((c) =>
        ({ op: "setIfAbsent", ...c }) as const
      ),
      weight: 3
    },
    {
      arbitrary: fc.record({
        key: keyArb,
        expected: fc.option(valueArb, { nil: null }),
        next: fc.option(valueArb, { nil: null }),
        write: writeArb
      }).map((c) => ({ op: "compareAndSet", ...c }) as const),
      weight: 3
    },
    {
      arbitrary: fc.record({
        key: keyArb,
        append: fc.option(fc.string({ maxLength: 2 }), { nil: null }),
        write: writeArb
      })
        .map((c) => ({ op: "modify", ...c }) as const),
      weight: 3
    },
    { arbitrary: keyArb.map((key) => ({ op: "ttl", key }) as const), weight: 2 },
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
    { arbitrary: badArb(badPrefixes).map((prefix) => ({ op: "badPrefix", prefix }) as const), weight: 1 },
    {
      arbitrary: fc.record({ keys: keysArb, bad: badArb(badKeys) }).map((c) => ({ op: "badBatch", ...c }) as const),
      weight: 1
    }
  ]
  if (clock === "test") {
    commands.push({
      arbitrary: fc.integer({ min: 1, max: 50 }).map((millis) => ({ op: "advance", millis }) as const),
      weight: 4
    })
  }
  return fc.oneof(...commands)
}

interface ModelEntry {
  readonly value: string
  readonly expiresAt: number | null
}

/** The contract as a plain `Map` with a clock: what every store must agree with. */
class Model {
  readonly entries = new Map<string, ModelEntry>()
  now = 0
  get(key: string): string | null {
    const entry = this.entries.get(key)
    if (entry === undefined) return null
    if (entry.expiresAt !== null && entry.expiresAt <= this.now) {
      this.entries.delete(key)
      return null
    }
    return entry.value
  }
  set(key: string, value: string, write: Write) {
    const previous = this.get(key) === null ? undefined : this.entries.get(key)
    const expiresAt = write?.ttl !== undefined
      ? this.now + write.ttl
      : write?.keepTtl === true
      ? previous?.expiresAt ?? null
      : null
    this.entries.set(key, { value, expiresAt })
  }
  keys(prefix: string): Array<string> {
    return sorted([...this.entries.keys()].filter((key) => key.startsWith(prefix) && this.get(key) !== null)).map((
      key
    ) => key.slice(prefix.length))
  }
  ttl(key: string): number | null {
    if (this.get(key) === null) return null
    const { expiresAt } = this.entries.get(key)!
    return expiresAt === null ? Infinity : expiresAt - this.now
  }
}

/** `ttl()` agrees when it is missing or infinite alike, or finite and no more than the model's time left. */
const ttlAgrees = (actual: number | null, expected: number | null) =>
  actual === expected ||
  (expected !== null && actual !== null && isFinite(expected) && actual > 0 && actual <= expected)

/**
 * Runs one command on the store, under `namespace`, and on the model; returns the store's effect and what the model
 * expects it to succeed with. Bad inputs are passed bare, as an untyped caller would, and must fail with KvInputError.
 */
const step = (
  store: BaseKvStore,
  ns: string,
  model: Model,
  command: Command
): { readonly actual: Effect.Effect<unknown, unknown>; readonly expected: unknown } => {
  switch (command.op) {
    case "get":
      return { actual: store.get(ns + command.key), expected: model.get(command.key) }
    case "set":
      model.set(command.key, command.value, command.write)
      return { actual: store.set(ns + command.key, command.value, command.write), expected: undefined }
    case "delete":
      model.entries.delete(command.key)
      return { actual: store.delete(ns + command.key), expected: undefined }
    case "list":
      return { actual: store.list(ns + command.prefix), expected: model.keys(command.prefix) }
    case "has":
      return { actual: store.has(ns + command.key), expected: model.get(command.key) !== null }
    case "getMany":
      return {
        actual: store.getMany(command.keys.map((key) => ns + key)),
        expected: command.keys.map((key) => model.get(key))
      }
    case "setMany":
      for (const [key, value] of command.entries) model.set(key, value, command.write)
      return {
        actual: store.setMany(command.entries.map(([key, value]) => [ns + key, value]), command.write),
        expected: undefined
      }
    case "deleteMany":
      for (const key of command.keys) model.entries.delete(key)
      return { actual: store.deleteMany(command.keys.map((key) => ns + key)), expected: undefined }
    case "count":
      return { actual: store.count(ns + command.prefix), expected: model.keys(command.prefix).length }
    case "clear": {
      const keys = model.keys(command.prefix)
      for (const key of keys) model.entries.delete(command.prefix + key)
      return { actual: store.clear(ns + command.prefix), expected: keys.length }
    }
    case "listPage":
      return {
        actual: Effect.map(allPages(store, ns + command.prefix, command.limit), (pages) => pages.flat()),
        expected: model.keys(command.prefix)
      }
    case "setIfAbsent": {
      const absent = model.get(command.key) === null
      if (absent) model.set(command.key, command.value, command.write)
      return { actual: store.setIfAbsent(ns + command.key, command.value, command.write), expected: absent }
    }
    case "compareAndSet": {
      const matches = model.get(command.key) === command.expected
      if (matches && command.next === null) model.entries.delete(command.key)
      else if (matches) model.set(command.key, command.next!, command.write)
      return {
        actual: store.compareAndSet(ns + command.key, command.expected, command.next, command.write),
        expected: matches
      }
    }
    case "modify": {
      const { append } = command
      const f = (current: string | null) => append === null ? null : (current ?? "") + append
      const next = f(model.get(command.key))
      if (next === null) model.entries.delete(command.key)
      else model.set(command.key, next, command.write)
      return { actual: store.modify(ns + command.key, f, command.write), expected: next }
    }
    case "ttl": {
      const expected = model.ttl(command.key)
      return {
        actual: Effect.map(store.ttl(ns + command.key), (duration) => {
          const actual = duration === null ? null : Duration.toMillis(duration)
          return ttlAgrees(actual, expected) ? expected : actual
        }),
        expected
      }
    }
    case "advance":
      model.now += command.millis
      return { actual: TestClock.adjust(command.millis), expected: undefined }
    case "badKey": {
      const key = command.key as string
      const actual = command.call === "set" ? store.set(key, "v") : store[command.call](key)
      return { actual: Effect.flip(actual), expected: KvInputError }
    }
    case "badValue":
      return { actual: Effect.flip(store.set(ns + command.key, command.value as string)), expected: KvInputError }
    case "badPrefix":
      return { actual: Effect.flip(store.list(command.prefix as string)), expected: KvInputError }
    case "badBatch": {
      const keys = [...command.keys.map((key) => ns + key), command.bad as string]
      return {
        actual: Effect.flip(store.setMany(keys.map((key) => [key, "bad batch"]))),
        expected: KvInputError
      }
    }
  }
}

const describeCommand = (index: number, command: Command) =>
  `command ${index} ${inspect(command, { breakLength: Infinity })}`

/** One sequence against the store and the model; dies, naming the command, at the first disagreement. */
const agrees = (store: BaseKvStore, namespace: string, commands: ReadonlyArray<Command>) =>
  Effect.gen(function*() {
    const model = new Model()
    for (const [index, command] of commands.entries()) {
      const { actual, expected } = step(store, namespace, model, command)
      const value = yield* Effect.catchCause(
        actual,
        (cause) => Effect.die(new Error(`${describeCommand(index, command)} failed: ${Cause.pretty(cause)}`))
      )
      const ok = expected === KvInputError ? value instanceof KvInputError : isDeepStrictEqual(value, expected)
      if (!ok) assert.deepStrictEqual(value, expected, describeCommand(index, command))
    }
    assert.deepStrictEqual(yield* store.list(namespace), model.keys(""), "final listing")
    for (const key of model.keys("")) {
      assert.strictEqual(yield* store.get(namespace + key), model.get(key), `final value of ${JSON.stringify(key)}`)
    }
  })

/**
 * Sequences per run when the caller names none: 1000, or `EFFECT_KV_CONFORMANCE_RUNS` (a positive integer), so a CI
 * that runs the suite once more on other Node versions can spend less time there without editing the test files.
 */
const defaultRuns = (): number => {
  const fromEnv = Number(globalThis.process?.env?.EFFECT_KV_CONFORMANCE_RUNS)
  return Number.isSafeInteger(fromEnv) && fromEnv > 0 ? fromEnv : 1000
}

const modelBased = (options: ConformanceOptions): Check => ({
  id: "model",
  name: "agrees with a reference model on random sequences of every operation (model-based property test)",
  timeout: 300_000,
  run: Effect.gen(function*() {
    const store = yield* BaseKvStoreService
    const clock = options.clock ?? "live"
    let sequence = 0
    // Each sequence runs in its own part of the keyspace, so sequences need no reset between them; on "test", each
    // on a TestClock of its own starting at 0, like the model's.
    const property = fc.asyncProperty(
      fc.array(commandArb(clock), { maxLength: 30 }),
      (commands) => {
        const run = agrees(store, `seq${sequence++}|`, commands)
        return Effect.runPromise(clock === "test" ? Effect.provide(run, TestClock.layer()) : run)
      }
    )
    yield* Effect.promise(() =>
      fc.assert(property, {
        numRuns: options.numRuns ?? defaultRuns(),
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
  },
  ...expiryChecks(options),
  ...atomicChecks,
  ...batchChecks,
  ...listingChecks,
  ...(options.watch === false ? [] : watchChecks(options.clock ?? "live", options.watchOrder)),
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

/**
 * @since 0.2.0
 */
export {
  type Adapters,
  type EffectAdapterCheck,
  effectAdapterChecks,
  effectAdapters,
  type EffectAdaptersOptions
} from "./internal/testing/effectAdapters.ts"
