/**
 * Tests of the conformance suite itself: a suite that a broken backend passes proves nothing. Each backend here
 * breaks one rule the way real stores have broken it; the suite must catch each, in the check for that rule.
 */
import { assert, describe, it } from "@effect/vitest"
import {
  BaseKvStoreService,
  type KvStoreError,
  make,
  makeMemoryBaseKvStore,
  makeMemoryPrimitives,
  type MakeOptions,
  type WatchEvent
} from "effect-kv"
import { checks } from "effect-kv/testing"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"

/** A correct memory store with some primitives replaced. The replacements get the same input checks as any backend. */
const broken = (override: (memory: MakeOptions) => Partial<MakeOptions>): Layer.Layer<BaseKvStoreService> =>
  Layer.sync(BaseKvStoreService)(() => {
    const memory = makeMemoryPrimitives()
    return make({ ...memory, ...override(memory) })
  })

/**
 * Runs every check on a fresh build of `layer` and returns the ids of those that failed. The checks run at once: most
 * of their time is spent waiting for keys to expire, and each has a store of its own.
 */
const failingChecks = (layer: Layer.Layer<BaseKvStoreService>) =>
  Effect.map(
    Effect.forEach(
      checks({ numRuns: 200 }),
      (check) => Effect.map(Effect.exit(Effect.provide(check.run, Layer.fresh(layer))), (exit) => ({ check, exit })),
      { concurrency: "unbounded" }
    ),
    (results) => results.filter(({ exit }) => Exit.isFailure(exit)).map(({ check }) => check.id)
  )

const expectCaught = (layer: Layer.Layer<BaseKvStoreService>, rules: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const failed = yield* failingChecks(layer)
    for (const rule of rules) assert.include(failed, rule, `the "${rule}" check catches it (failed: ${failed})`)
    assert.notInclude(failed, "missing-key", "a backend that breaks one rule still passes unrelated checks")
  })

/** Sorted in code point order, which differs from the contract's UTF-16 order for astral characters. */
const byCodePoint = (a: string, b: string) => {
  const x = [...a].map((c) => c.codePointAt(0)!)
  const y = [...b].map((c) => c.codePointAt(0)!)
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i]
  return x.length - y.length
}

const globToRegExp = (glob: string) =>
  new RegExp(`^${glob.replace(/[.+^${}()|\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}`, "s")

describe.concurrent("the conformance suite catches broken backends", () => {
  it.live("the correct memory backend passes every check", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* failingChecks(Layer.sync(BaseKvStoreService)(makeMemoryBaseKvStore)), [])
    }))

  it.live("list returning full keys instead of stripping the prefix", () =>
    expectCaught(
      broken((memory) => ({
        list: (prefix) => Effect.map(memory.list(prefix), (keys) => keys.map((key) => prefix + key))
      })),
      ["list-prefix", "prefix-is-key", "strip-once", "model"]
    ))

  it.live("stripping every occurrence of the prefix (replaceAll)", () =>
    expectCaught(
      broken((memory) => ({
        list: (prefix) =>
          Effect.map(memory.list(prefix), (keys) => keys.map((key) => (prefix + key).replaceAll(prefix, "")))
      })),
      ["strip-once"]
    ))

  it.live("list in insertion order instead of sorted", () =>
    expectCaught(
      broken(() => {
        const keys: Array<string> = []
        const values = new Map<string, string>()
        return {
          set: (key, value) =>
            Effect.sync(() => {
              if (!values.has(key)) keys.push(key)
              values.set(key, value)
            }),
          get: (key) => Effect.sync(() => values.get(key) ?? null),
          delete: (key) =>
            Effect.sync(() => {
              if (values.delete(key)) keys.splice(keys.indexOf(key), 1)
            }),
          list: (prefix) =>
            Effect.sync(() => keys.filter((key) => key.startsWith(prefix)).map((key) => key.slice(prefix.length))),
          // Its own storage, which tells no watcher: watch fails at once instead of waiting for events.
          subscribe: undefined
        }
      }),
      ["list-prefix", "list-all", "model"]
    ))

  it.live("sorting by code point instead of UTF-16 code units", () =>
    expectCaught(
      broken((memory) => ({
        list: (prefix) => Effect.map(memory.list(prefix), (keys) => [...keys].sort(byCodePoint))
      })),
      ["list-prefix", "unicode"]
    ))

  it.live("a listing with duplicates (an unfiltered SCAN)", () =>
    expectCaught(
      broken((memory) => ({ list: (prefix) => Effect.map(memory.list(prefix), (keys) => [...keys, ...keys].sort()) })),
      ["list-prefix", "list-once", "model"]
    ))

  it.live("treating the prefix as a glob pattern (unescaped SCAN MATCH)", () =>
    expectCaught(
      broken((memory) => ({
        list: (prefix) =>
          Effect.map(memory.list(""), (keys) => {
            const pattern = globToRegExp(prefix)
            return keys.filter((key) => pattern.test(key)).map((key) => key.slice(prefix.length)).sort()
          })
      })),
      ["literal-characters", "model"]
    ))

  it.live("writing when the effect is built instead of when it runs", () =>
    expectCaught(
      broken((memory) => ({
        set: (key, value, expiry) => {
          Effect.runSync(memory.set(key, value, expiry))
          return Effect.void
        }
      })),
      ["lazy"]
    ))

  it.live("reading when the effect is built instead of when it runs", () =>
    expectCaught(
      broken((memory) => ({
        get: (key) => {
          const value = Effect.runSync(memory.get(key))
          return Effect.succeed(value)
        }
      })),
      ["lazy"]
    ))

  it.live("treating an empty value as a missing key", () =>
    expectCaught(
      broken((memory) => ({ get: (key) => Effect.map(memory.get(key), (value) => value === "" ? null : value) })),
      ["set-get", "overwrite"]
    ))

  it.live("losing writes when fibers interleave (read, yield, write back a copy)", () =>
    expectCaught(
      Layer.sync(BaseKvStoreService)(() => {
        let values = new Map<string, string>()
        const memory = makeMemoryPrimitives()
        const update = (f: (copy: Map<string, string>) => void) =>
          Effect.gen(function*() {
            const copy = new Map(values)
            yield* Effect.yieldNow
            f(copy)
            values = copy
          })
        return make({
          ...memory,
          get: (key) => Effect.sync(() => values.get(key) ?? null),
          set: (key, value) => update((copy) => copy.set(key, value)),
          delete: (key) => update((copy) => copy.delete(key)),
          list: (prefix) =>
            Effect.sync(() =>
              [...values.keys()].filter((key) => key.startsWith(prefix)).map((key) => key.slice(prefix.length)).sort()
            ),
          subscribe: undefined
        })
      }),
      ["concurrent"]
    ))

  it.live("accepting anything as a key or value (no input checks)", () =>
    expectCaught(
      Layer.sync(BaseKvStoreService)(() => {
        const memory = makeMemoryBaseKvStore()
        return {
          ...memory,
          get: (key) => memory.get(String(key) || "empty"),
          set: (key, value) => memory.set(String(key) || "empty", String(value).slice(0, 1000)),
          delete: (key) => memory.delete(String(key) || "empty"),
          list: (prefix) => memory.list(String(prefix ?? ""))
        }
      }),
      ["bad-key", "bad-value", "bad-prefix", "tagged-errors", "model"]
    ))
})

describe.concurrent("the conformance suite catches broken atomic updates, expiry, batches and paging", () => {
  it.live("modify as get-then-set (Effect KeyValueStore.modify, @uploadista's offset update)", () =>
    expectCaught(
      broken((memory) => ({
        modify: (key, f, expiry) =>
          Effect.gen(function*() {
            const current = yield* memory.get(key)
            yield* Effect.yieldNow
            const next = f(current)
            if (next._tag === "Failure") return yield* next.failure
            if (next.success === null) yield* memory.delete(key)
            else yield* memory.set(key, next.success, expiry)
            return next.success
          })
      })),
      ["modify", "atomic-contention"]
    ))

  it.live("setIfAbsent as get-then-set", () =>
    expectCaught(
      broken((memory) => ({
        setIfAbsent: (key, value, expiry) =>
          Effect.gen(function*() {
            if ((yield* memory.get(key)) !== null) return false
            yield* Effect.yieldNow
            yield* memory.set(key, value, expiry)
            return true
          })
      })),
      ["set-if-absent", "atomic-contention"]
    ))

  it.live("expiry checked only on get, so listings still show expired keys (Keyv's memory store)", () =>
    expectCaught(
      broken((memory) => {
        const everWritten = new Set<string>()
        const listed = (prefix: string) =>
          [...everWritten].filter((key) => key.startsWith(prefix)).map((key) => key.slice(prefix.length)).sort()
        const track = <A, E>(key: string, write: Effect.Effect<A, E>) =>
          Effect.tap(write, () => Effect.sync(() => everWritten.add(key)))
        return {
          set: (key, value, expiry) => track(key, memory.set(key, value, expiry)),
          setIfAbsent: (key, value, expiry) => track(key, memory.setIfAbsent(key, value, expiry)),
          compareAndSet: (key, expected, next, expiry) => track(key, memory.compareAndSet(key, expected, next, expiry)),
          modify: (key, f, expiry) => track(key, memory.modify!(key, f, expiry)),
          setMany: (entries, expiry) =>
            Effect.tap(memory.setMany!(entries, expiry), () =>
              Effect.sync(() => entries.forEach(([key]) => everWritten.add(key)))),
          delete: (key) =>
            Effect.tap(memory.delete(key), () => Effect.sync(() => everWritten.delete(key))),
          list: (prefix) => Effect.sync(() => listed(prefix)),
          count: (prefix) => Effect.sync(() => listed(prefix).length),
          listAfter: (prefix, after, limit) =>
            Effect.sync(() => listed(prefix).filter((key) => after === null || key > after).slice(0, limit + 1))
        }
      }),
      ["ttl-expires"]
    ))

  it.live("keepTtl ignored (the write drops the expiry)", () =>
    expectCaught(
      broken((memory) => ({
        set: (key, value, expiry) => memory.set(key, value, expiry === "keep" ? null : expiry)
      })),
      ["ttl-overwrite"]
    ))

  it.live("a batch that writes the valid entries before the bad one", () =>
    expectCaught(
      Layer.sync(BaseKvStoreService)(() => {
        const memory = makeMemoryBaseKvStore()
        return {
          ...memory,
          setMany: (entries) => Effect.forEach(entries, ([key, value]) => memory.set(key, value), { discard: true })
        }
      }),
      ["bad-batch"]
    ))

  it.live("listPage with an offset cursor, which repeats a key when one is written behind it", () =>
    expectCaught(
      Layer.sync(BaseKvStoreService)(() => {
        const memory = makeMemoryBaseKvStore()
        return {
          ...memory,
          listPage: (prefix, { cursor, limit }) =>
            Effect.map(memory.list(prefix), (keys) => {
              const offset = Number(cursor ?? 0)
              const next = offset + limit
              return { keys: keys.slice(offset, next), cursor: next < keys.length ? String(next) : null }
            })
        }
      }),
      ["list-page-changes"]
    ))
})

describe.concurrent("the conformance suite catches broken watches", () => {
  it.live("a watch that drops events silently when its consumer falls behind", () =>
    expectCaught(
      Layer.sync(BaseKvStoreService)(() => {
        const memory = makeMemoryPrimitives()
        const store = make(memory)
        return {
          ...store,
          // A bounded buffer that refuses what does not fit, and says nothing about it.
          watch: (prefix, options) =>
            Stream.callback<WatchEvent, KvStoreError>((queue) =>
              memory.subscribe!(prefix, {
                emit: (event) => {
                  if (event._tag !== "Resync" && !event.key.startsWith(prefix)) return
                  Queue.offerUnsafe(
                    queue,
                    event._tag === "Resync" ? event : { ...event, key: event.key.slice(prefix.length) }
                  )
                },
                fail: () => {}
              }), { bufferSize: options?.bufferSize ?? 4096, strategy: "dropping" })
        }
      }),
      ["watch-buffer"]
    ))

  it.live("a subscription that reports itself live before it is (the initial replay misses changes)", () =>
    expectCaught(
      broken((memory) => ({
        // Not waiting for the subscription to be acknowledged, as a client that fires SUBSCRIBE and moves on.
        subscribe: (prefix, sink) =>
          Effect.asVoid(Effect.forkScoped(Effect.andThen(Effect.sleep("30 millis"), memory.subscribe!(prefix, sink))))
      })),
      ["watch-initial-gap"]
    ))
})
