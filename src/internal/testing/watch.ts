/**
 * The conformance checks of `watch`: every rule of "Watching" in the contract, as checks any backend runs unchanged.
 *
 * Remote backends deliver events asynchronously, so the checks wait for events (on real time, whatever clock the
 * backend keeps) rather than expecting them at once, and end each sequence with a marker write: events of one writer
 * arrive in its order, so once the marker's event is in, every event before it must be too.
 *
 * @since 0.1.0
 */
import { assert } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/testing/TestClock"
import { inspect } from "node:util"
import {
  type BaseKvStore,
  BaseKvStoreService,
  isKvInputError,
  type KvInputError,
  type WatchEvent,
  type WatchOptions
} from "../../BaseKvStore.ts"
import type { Check } from "./check.ts"

/** How long a check waits for an event it expects before it fails. */
const EVENT_WAIT = 10_000

/** The contract's bound on an `Expire` after the ttl ran out. */
const EXPIRE_WAIT = 5_000

/**
 * Fails with `what` unless `effect` finishes within `ms` of real time. Real time on purpose: a check on `TestClock`
 * must still end when an event never comes.
 */
const within = <A, E, R>(ms: number, what: string, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | Error, R> =>
  Effect.raceFirst(
    effect,
    Effect.callback<never, Error>((resume) => {
      const timer = setTimeout(() => resume(Effect.fail(new Error(`${what}: nothing within ${ms} ms`))), ms)
      return Effect.sync(() => clearTimeout(timer))
    })
  )

const show = (events: ReadonlyArray<WatchEvent>) => inspect(events, { depth: 3, breakLength: 200 })

/** A running watch whose events the check takes one chunk at a time. */
interface Watcher {
  /** Events received and not yet taken. */
  readonly received: Array<WatchEvent>
  /** Waits for the next chunk of events. */
  readonly pull: (what: string, ms?: number) => Effect.Effect<void, unknown>
  /**
   * Takes every event up to and including the first that `stop` accepts. Ordered per key, it then waits for the
   * stream to be quiet and takes everything (unless `quiet` is false: a single key's event, nothing else expected).
   */
  readonly until: (what: string, stop: (event: WatchEvent) => boolean, ms?: number, quiet?: boolean) => Effect.Effect<
    Array<WatchEvent>,
    unknown
  >
}

/**
 * The suffix of the key a watcher writes until it sees it: the proof that its subscription is live. A stream starts
 * when first pulled and has no "subscribed" event, so a check cannot know otherwise. Events of probe keys are hidden.
 */
const PROBE = "\uFFFFprobe"

/** Real time, whatever clock the check runs on. */
const realSleep = (ms: number) =>
  Effect.callback<void>((resume) => {
    const timer = setTimeout(() => resume(Effect.void), ms)
    return Effect.sync(() => clearTimeout(timer))
  })

/**
 * How long a watcher of a backend that orders events per key waits, after the marker, for events of other keys still
 * on their way (a Redis Cluster master's notifications may trail another's).
 */
const SETTLE = 500

/**
 * The order the checks expect one writer's events in: `"writer"`, the writer's order across keys; `"key"`, the
 * writer's order key by key (see `ConformanceOptions.watchOrder`).
 */
type Order = "writer" | "key"

const watching = (
  store: BaseKvStore,
  prefix: string,
  options?: WatchOptions,
  order: Order = "writer"
): Effect.Effect<Watcher, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const pullChunk = yield* Stream.toPull(store.watch(prefix, options))
    const scope = yield* Effect.scope
    const received: Array<WatchEvent> = []
    const keep = (chunk: ReadonlyArray<WatchEvent>) => {
      for (const event of chunk) if (event._tag === "Resync" || !event.key.endsWith(PROBE)) received.push(event)
    }
    // A pull that outlived its wait stays pending for the next one: a chunk is never lost to a timeout.
    let pending: Fiber.Fiber<ReadonlyArray<WatchEvent>, unknown> | undefined
    const pullFor = (what: string, ms: number) =>
      Effect.gen(function*() {
        const fiber = pending ?? (yield* Effect.forkIn(pullChunk, scope))
        pending = fiber
        const chunk = yield* within(ms, `watch(${JSON.stringify(prefix)}): ${what}`, Fiber.join(fiber))
        pending = undefined
        return chunk
      })
    const pull = (what: string, ms = EVENT_WAIT) =>
      (order === "key" ? pullFor(what, ms) : within(ms, `watch(${JSON.stringify(prefix)}): ${what}`, pullChunk)).pipe(
        Effect.flatMap((chunk) => Effect.sync(() => keep(chunk))),
        Effect.catchCause((cause) =>
          Cause.hasFails(cause) && Cause.isDone(Cause.squash(cause))
            ? Effect.fail(new Error(`watch(${JSON.stringify(prefix)}) ended while waiting for ${what}`))
            : Effect.failCause(cause)
        )
      )
    /** Pulls until nothing arrives for `SETTLE` ms. */
    const settle = Effect.gen(function*() {
      for (;;) {
        const fiber = pending ?? (yield* Effect.forkIn(pullChunk, scope))
        pending = fiber
        const chunk = yield* Effect.raceFirst(Fiber.join(fiber), Effect.as(realSleep(SETTLE), undefined))
        if (chunk === undefined) return
        pending = undefined
        keep(chunk)
      }
    })
    const until = (what: string, stop: (event: WatchEvent) => boolean, ms = EVENT_WAIT, quiet = true) =>
      Effect.gen(function*() {
        const deadline = Date.now() + ms
        for (;;) {
          const at = received.findIndex(stop)
          if (at !== -1 && order === "key" && quiet) {
            // Events of other keys may trail the marker: take what arrives until the stream is quiet.
            yield* settle
            return received.splice(0)
          }
          if (at !== -1) return received.splice(0, at + 1)
          const left = deadline - Date.now()
          yield* pull(`${what} (received so far: ${show(received)})`, Math.max(left, 1))
        }
      })
    // Start the stream, and write the probe until an event of it arrives: from then on the watch is live.
    const probe = prefix + PROBE
    const first = yield* Effect.forkScoped(pullChunk)
    const deadline = Date.now() + EVENT_WAIT
    let chunk: ReadonlyArray<WatchEvent> | undefined
    for (let i = 0; chunk === undefined; i++) {
      if (Date.now() > deadline) assert.fail(`watch(${JSON.stringify(prefix)}) delivered nothing for ${EVENT_WAIT} ms`)
      yield* store.set(probe, String(i))
      chunk = yield* Effect.raceFirst(Fiber.join(first), Effect.as(realSleep(20), undefined))
    }
    keep(chunk)
    yield* store.delete(probe)
    return { received, pull, until }
  })

const isSet = (key: string, value?: string) => (event: WatchEvent) =>
  event._tag === "Set" && event.key === key && (value === undefined || event.value === value)

const set = (key: string, value: string): WatchEvent => ({ _tag: "Set", key, value })
const del = (key: string): WatchEvent => ({ _tag: "Delete", key })

/** One write of a check, as the events it must cause. Deletes of one batch (`deleteMany`, `clear`) share a group. */
type Op =
  | { readonly kind: "set"; readonly key: string; readonly value: string }
  | { readonly kind: "del"; readonly key: string; readonly group?: number }

/**
 * Asserts that `events` are what one writer's `ops` may cause, in its order. Deletes are exact: each once, in order
 * (within a batch, in any order). A `Set` carries the value written or a later one of the same key, and a `Set` may be
 * left out only when a later write of its key follows (a backend reads the value after the notification, as Redis
 * does, and may find a later one, or none). The last op (a marker) must arrive.
 */
const assertWriterOrder = (ops: ReadonlyArray<Op>, events: ReadonlyArray<WatchEvent>, order: Order) => {
  if (order === "key") {
    const keys = new Set(ops.map((op) => op.key))
    const stray = events.filter((event) => event._tag === "Resync" || !keys.has(event.key))
    if (stray.length > 0) assert.fail(`unexpected events ${show(stray)}\nevents: ${show(events)}`)
    for (const key of keys) {
      assertWriterOrder(
        ops.filter((op) => op.key === key),
        events.filter((event) => event._tag !== "Resync" && event.key === key),
        "writer"
      )
    }
    return
  }
  const context = `\nevents: ${show(events)}\nwrites: ${inspect(ops, { depth: 3, breakLength: 200 })}`
  // Within a batch of deletes any order: take the order the events show.
  const position = new Map<string, number>()
  events.forEach((event, i) => event._tag === "Delete" && !position.has(event.key) && position.set(event.key, i))
  const ordered = [...ops]
  for (let i = 0; i < ordered.length;) {
    const op = ordered[i]
    let end = i + 1
    if (op.kind === "del" && op.group !== undefined) {
      while (end < ordered.length && ordered[end].kind === "del" && (ordered[end] as any).group === op.group) end++
      const batch = ordered.slice(i, end).sort((a, b) =>
        (position.get(a.key) ?? Infinity) - (position.get(b.key) ?? Infinity)
      )
      ordered.splice(i, end - i, ...batch)
    }
    i = end
  }
  let next = 0
  for (const event of events) {
    if (event._tag === "Resync" || event._tag === "Expire") assert.fail(`unexpected ${event._tag}${context}`)
    let j = next
    for (; j < ordered.length; j++) {
      const op = ordered[j]
      if (op.key === event.key) {
        if (event._tag === "Delete" && op.kind === "del") break
        if (
          event._tag === "Set" && op.kind === "set" &&
          ordered.slice(j).some((later) => later.kind === "set" && later.key === op.key && later.value === event.value)
        ) break
      }
      const superseded = op.kind === "set" && ordered.slice(j + 1).some((later) => later.key === op.key)
      if (!superseded) {
        assert.fail(`${show([event])} arrived where the change of ${inspect(op)} was due${context}`)
      }
    }
    if (j === ordered.length) assert.fail(`${show([event])} matches no write that followed${context}`)
    next = j + 1
  }
  assert.strictEqual(next, ordered.length, `every write up to the last arrived${context}`)
}

/** Applies events to a model of the watched keys; `Resync` cannot be applied. */
const apply = (model: Map<string, string>, events: ReadonlyArray<WatchEvent>) => {
  for (const event of events) {
    if (event._tag === "Resync") assert.fail(`unexpected Resync with room in the buffer: ${show(events)}`)
    else if (event._tag === "Set") model.set(event.key, event.value)
    else model.delete(event.key)
  }
}

/** The events of each key, in arrival order, keys sorted; a `Resync` under the empty key. */
const byKey = (events: ReadonlyArray<WatchEvent>) => {
  const keys = new Map<string, Array<WatchEvent>>()
  for (const event of events) {
    const key = event._tag === "Resync" ? "" : event.key
    keys.set(key, [...(keys.get(key) ?? []), event])
  }
  return [...keys].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
}

/** `actual` is `expected`: in one order (`"writer"`), or key by key (`"key"`). */
const assertEvents = (
  order: Order,
  actual: ReadonlyArray<WatchEvent>,
  expected: ReadonlyArray<WatchEvent>,
  message: string
) =>
  order === "key"
    ? assert.deepStrictEqual(byKey(actual), byKey(expected), message)
    : assert.deepStrictEqual(actual, expected, message)

/** The `watch` checks, for the suite's `clock` and `watchOrder` options (see `ConformanceOptions`). */
export const watchChecks = (clock: "test" | "live", order: Order = "writer"): ReadonlyArray<Check> => {
  const check = (id: string, name: string, run: Effect.Effect<void, unknown, BaseKvStoreService | Scope.Scope>) => ({
    id,
    name,
    timeout: 60_000,
    run: Effect.scoped(clock === "test" ? Effect.provide(run, TestClock.layer()) : run)
  })
  return [
    check(
      "watch-order",
      "watch delivers every write under the prefix with its value, in the writer's order, and nothing else",
      Effect.gen(function*() {
        const store = yield* BaseKvStoreService
        const watcher = yield* watching(store, "w:", undefined, order)
        const ops: Array<Op> = []
        for (let i = 0; i < 60; i++) {
          const key = `k${i % 3}`
          if (i % 5 === 4) {
            yield* store.delete(`w:${key}`)
            ops.push({ kind: "del", key })
          } else {
            yield* store.set(`w:${key}`, `v${i}`)
            ops.push({ kind: "set", key, value: `v${i}` })
          }
          yield* store.set(`x:${key}`, "outside")
          yield* store.set(`w${key}`, "outside too: the prefix is w: with its colon")
        }
        yield* store.set("w:end", "")
        ops.push({ kind: "set", key: "end", value: "" })
        assertWriterOrder(ops, yield* watcher.until("the Set of w:end", isSet("end")), order)
      })
    ),
    check(
      "watch-writes",
      "every kind of write is a Set, every kind of delete a Delete, and deleting a missing key is no event",
      Effect.gen(function*() {
        const store = yield* BaseKvStoreService
        const watcher = yield* watching(store, "w:", undefined, order)
        yield* store.setMany([["w:a", "1"], ["w:b", "2"], ["w:c", "3"], ["w:d", "4"], ["w:e", "5"]])
        assert.isTrue(yield* store.setIfAbsent("w:f", "6"))
        assert.isFalse(yield* store.setIfAbsent("w:f", "lost"), "a setIfAbsent that loses writes nothing")
        assert.isTrue(yield* store.compareAndSet("w:a", "1", "1b"))
        assert.isFalse(yield* store.compareAndSet("w:a", "1", "lost"), "a compareAndSet that loses writes nothing")
        assert.strictEqual(yield* store.modify("w:b", (v) => `${v}b`), "2b")
        yield* store.set("w:g", "7", { ttl: 3_600_000 })
        // Deletes of every kind.
        yield* store.delete("w:a")
        yield* store.deleteMany(["w:b", "w:missing-in-batch", "w:c"])
        assert.isTrue(yield* store.compareAndSet("w:d", "4", null))
        assert.strictEqual(yield* store.modify("w:e", () => null), null)
        // No change, so no event.
        yield* store.delete("w:missing")
        yield* store.deleteMany(["w:missing", "w:a"])
        assert.strictEqual(yield* store.modify("w:missing", () => null), null)
        assert.isTrue(yield* store.compareAndSet("w:missing", null, null))
        yield* store.set("w:sub:1", "x")
        yield* store.set("w:sub:2", "y")
        assert.strictEqual(yield* store.clear("w:sub:"), 2)
        yield* store.set("w:end", "")
        const events = yield* watcher.until("the Set of w:end", isSet("end"))
        const sets = (...entries: ReadonlyArray<readonly [string, string]>): Array<Op> =>
          entries.map(([key, value]) => ({ kind: "set", key, value }))
        const dels = (group: number | undefined, ...keys: ReadonlyArray<string>): Array<Op> =>
          keys.map((key) => group === undefined ? { kind: "del", key } : { kind: "del", key, group })
        assertWriterOrder(
          [
            ...sets(["a", "1"], ["b", "2"], ["c", "3"], ["d", "4"], ["e", "5"], ["f", "6"], ["a", "1b"], ["b", "2b"]),
            ...sets(["g", "7"]),
            ...dels(undefined, "a"),
            ...dels(1, "b", "c"),
            ...dels(undefined, "d", "e"),
            ...sets(["sub:1", "x"], ["sub:2", "y"]),
            ...dels(2, "sub:1", "sub:2"),
            ...sets(["end", ""])
          ],
          events,
          order
        )
      })
    ),
    check(
      "watch-expire",
      "a key whose ttl runs out is an Expire event within 5 s, without anyone reading it",
      Effect.gen(function*() {
        const store = yield* BaseKvStoreService
        const watcher = yield* watching(store, "w:", undefined, order)
        const ttl = clock === "test" ? 1000 : 1500
        yield* store.set("w:short", "v", { ttl })
        yield* store.set("w:long", "v", { ttl: 3_600_000 })
        yield* watcher.until("the Set of w:long", isSet("long"))
        if (clock === "test") yield* TestClock.adjust(ttl + 1)
        // Nothing reads the key: the backend must notice the expiry by itself.
        const events = yield* watcher.until(
          "the Expire of w:short",
          (event) => event._tag === "Expire",
          ttl + EXPIRE_WAIT
        )
        assert.deepStrictEqual(events, [{ _tag: "Expire", key: "short" }])
        assert.strictEqual(yield* store.get("w:short"), null)
        assert.strictEqual(yield* store.get("w:long"), "v", "only the expired key")
      })
    ),
    check(
      "watch-initial",
      "initial: true replays the entries in key order, then the live changes",
      Effect.gen(function*() {
        const store = yield* BaseKvStoreService
        const keys = ["b", "a", "c:1", "c", "é", "😀", "\uFF5E", "a:b"]
        for (const key of keys) yield* store.set(`w:${key}`, `v-${key}`)
        yield* store.set("x:a", "outside")
        yield* store.set("w", "the prefix without its colon")
        const watcher = yield* watching(store, "w:", { initial: true }, order)
        const replayed = yield* watcher.until("the replay", isSet("\uFF5E"))
        assert.deepStrictEqual(replayed, [...keys].sort().map((key) => set(key, `v-${key}`)))
        yield* store.set("w:b", "live")
        yield* store.delete("w:a")
        assertEvents(
          order,
          yield* watcher.until("the live Delete", (event) => event._tag === "Delete"),
          [set("b", "live"), del("a")],
          "the live changes after the replay"
        )
        const empty = yield* watching(store, "none:", { initial: true }, order)
        yield* store.set("none:1", "first")
        assert.deepStrictEqual(yield* empty.until("the first write", isSet("1")), [set("1", "first")])
      })
    ),
    check(
      "watch-initial-gap",
      "initial: true misses nothing written while the watch starts",
      Effect.gen(function*() {
        const store = yield* BaseKvStoreService
        for (let i = 0; i < 20; i++) yield* store.set(`w:before:${i}`, `${i}`)
        let started = false
        // A writer that keeps writing until the watch is live, and a little after. Each write is to a new key (or
        // deletes one), so a change the watch misses is never covered by a later one. Paced on real time, so the
        // writes span the watch's start without overflowing its buffer.
        const writer = yield* Effect.forkChild(Effect.gen(function*() {
          let after = 0
          for (let i = 0; after < 40 && i < 2000; i++) {
            if (started) after++
            if (i % 7 === 6) yield* store.delete(i < 20 ? `w:before:${i}` : `w:during:${i - 20}`)
            else yield* store.set(`w:during:${i}`, `${i}`)
            yield* realSleep(1)
          }
          yield* store.set("w:end", "")
        }))
        const watcher = yield* watching(store, "w:", { initial: true }, order)
        yield* watcher.pull("the first event")
        started = true
        yield* Fiber.join(writer)
        const events = yield* watcher.until("the Set of w:end", isSet("end"))
        const model = new Map<string, string>()
        apply(model, events)
        const keys = yield* store.list("w:")
        const values = yield* store.getMany(keys.map((key) => `w:${key}`))
        assert.deepStrictEqual(
          [...model].sort(),
          keys.map((key, i) => [key, values[i]]),
          `the replay and the live events add up to the store's contents: ${show(events)}`
        )
      })
    ),
    check(
      "watch-literal-prefix",
      "the prefix is literal: glob, LIKE and regex characters match only themselves",
      Effect.gen(function*() {
        const store = yield* BaseKvStoreService
        const keys = ["a*", "a*b", "ab", "a?", "ax", "a[b]", "ab]", "a\\", "a\\*", "a%", "a%b", "a_", "aXb", "a.b"]
        const prefixes = ["a*", "a?", "a[b", "a\\", "a%", "a_", "a."]
        const watchers = yield* Effect.forEach(prefixes, (prefix) => watching(store, prefix, undefined, order))
        const markers = prefixes.map((prefix) => `${prefix}~end`)
        const written = [...keys, ...markers]
        for (const key of written) yield* store.set(key, key)
        for (const [i, prefix] of prefixes.entries()) {
          const marker = markers[i].slice(prefix.length)
          const events = yield* watchers[i].until(`the Set of ${markers[i]}`, isSet(marker))
          const expected = written.slice(0, keys.length + i + 1).filter((key) => key.startsWith(prefix))
          assertEvents(
            order,
            events,
            expected.map((key) => set(key.slice(prefix.length), key)),
            `watch(${JSON.stringify(prefix)})`
          )
        }
      })
    ),
    check(
      "watch-buffer",
      "a consumer that falls behind its buffer gets Resync instead of a backlog, then the changes after it",
      Effect.gen(function*() {
        const store = yield* BaseKvStoreService
        const bufferSize = 8
        const slow = yield* watching(store, "w:", { bufferSize }, order)
        const fast = yield* watching(store, "w:", undefined, order)
        yield* store.set("w:first", "")
        // Not waiting for quiet: a pull left pending would take the events this consumer must leave in its buffer.
        yield* slow.until("the Set of w:first", isSet("first"), EVENT_WAIT, false)
        // The slow consumer takes nothing while four buffers' worth of writes arrive.
        for (let i = 0; i < 4 * bufferSize; i++) yield* store.set(`w:${i}`, `${i}`)
        yield* store.set("w:marker", "")
        yield* fast.until("the Set of w:marker", isSet("marker"))
        yield* slow.pull("the backlog")
        const held = slow.received.splice(0)
        assert.isAtMost(held.length, bufferSize + 1, `the consumer holds at most bufferSize events: ${show(held)}`)
        assert.isTrue(
          held.some((event) => event._tag === "Resync"),
          `a consumer past its buffer gets Resync; events are never dropped silently: ${show(held)}`
        )
        // After Resync the stream goes on: a later write arrives.
        yield* store.set("w:after", "")
        yield* slow.until("the Set of w:after, after Resync", isSet("after"))
      })
    ),
    check(
      "watch-interrupt",
      "interrupting a watch ends it promptly and leaves the store and other watchers working",
      Effect.gen(function*() {
        const store = yield* BaseKvStoreService
        const survivor = yield* watching(store, "w:", undefined, order)
        for (let i = 0; i < 10; i++) {
          const fiber = yield* Effect.forkChild(Stream.runDrain(store.watch("w:", { initial: i % 2 === 0 })))
          yield* Effect.yieldNow
          yield* within(EVENT_WAIT, "interrupting a watch", Fiber.interrupt(fiber))
        }
        const taken = yield* Effect.forkChild(Stream.runCollect(Stream.take(store.watch("w:"), 1)))
        yield* store.set("w:k", "1")
        // The watch may start after the first write; the writes after it reach it in any case.
        const writer = yield* Effect.forkChild(
          Effect.andThen(realSleep(5), store.set("w:k", "2")).pipe(Effect.forever)
        )
        const one = yield* within(EVENT_WAIT, "Stream.take(1) of a watch", Fiber.join(taken))
        yield* Fiber.interrupt(writer)
        assert.strictEqual(one.length, 1, "take(1) ends the watch after one event")
        yield* store.set("w:last", "")
        const events = yield* survivor.until("the Set of w:last", isSet("last"))
        assert.deepStrictEqual(events.filter((event) => event._tag !== "Set" || event.key !== "k"), [set("last", "")])
      })
    ),
    check(
      "watch-bad-input",
      "watch refuses a bad prefix or bad options with KvInputError",
      Effect.gen(function*() {
        const store = yield* BaseKvStoreService
        const refused = (label: string, stream: Stream.Stream<WatchEvent, unknown>, argument: string) =>
          Effect.gen(function*() {
            const error = yield* Effect.flip(within(EVENT_WAIT, label, Stream.runDrain(stream)))
            assert.isTrue(isKvInputError(error), `${label}: fails with KvInputError`)
            assert.strictEqual((error as KvInputError).operation, "watch", label)
            assert.strictEqual((error as KvInputError).argument, argument, label)
          })
        yield* refused("an undefined prefix", store.watch(undefined as never), "prefix")
        yield* refused("a lone surrogate", store.watch("\uD800"), "prefix")
        for (const bufferSize of [0, -1, 1.5, "10", Infinity, NaN]) {
          yield* refused(
            `bufferSize ${String(bufferSize)}`,
            store.watch("", { bufferSize: bufferSize as never }),
            "bufferSize"
          )
        }
        yield* refused("initial \"yes\"", store.watch("", { initial: "yes" as never }), "options")
        yield* refused("options null", store.watch("", null as never), "options")
      })
    )
  ]
}
