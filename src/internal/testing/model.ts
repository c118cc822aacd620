/**
 * The model-based property test: random sequences of every operation, bad inputs and clock advances included, run
 * against the store and against the contract written as a plain `Map` with a clock; the first disagreement fails the
 * check, naming the command.
 *
 * @internal
 */
import { assert } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as TestClock from "effect/testing/TestClock"
import * as fc from "fast-check"
import { inspect, isDeepStrictEqual } from "node:util"
import {
  type BaseKvStore,
  BaseKvStoreService,
  type InputReason,
  isKvInputError,
  KvInputError
} from "../../BaseKvStore.ts"
import type { Check, ConformanceOptions } from "./check.ts"
import { allPages, sorted } from "./helpers.ts"
import { badKeys, badPrefixes, badValues } from "./inputs.ts"

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
      const ok = expected === KvInputError ? isKvInputError(value) : isDeepStrictEqual(value, expected)
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

export const modelBased = (options: ConformanceOptions): Check => ({
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
