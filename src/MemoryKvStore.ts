/**
 * The in-memory backend: a `BaseKvStore` held in process memory.
 *
 * Use it to develop and test programs, and wherever data need not outlive the process. Each store is isolated:
 * `makeMemoryBaseKvStore()` returns a new one, and `memoryKvStore` builds a new one every time the layer is built, so
 * two programs that each provide it never see each other's keys.
 *
 * Values live in a `Map`, so `get` and overwrites cost what an Effect-wrapped `Map` operation costs. Keys are also kept
 * in a B+ tree, so `list(prefix)` and `listPage` seek to the prefix and read only the keys under it: O(log n + k)
 * instead of a scan of the whole keyspace.
 *
 * **Expiry** follows Effect's `Clock`, so tests drive it with `TestClock`. An expired key is missing to every
 * operation at once, and its memory is reclaimed by the next write even if nothing ever reads the key again: keys with
 * a ttl are also kept in a heap ordered by expiry, which writes drain. A store that never uses ttl never reads the
 * clock.
 *
 * **Watching** is exact: a change reaches every watcher synchronously with the write, in the writer's order. An
 * eviction is a `Delete`. While a watcher is subscribed, a fiber sleeps on `Clock` until the next key expires, so
 * `Expire` events arrive without reads (within a second of the expiry, or at once on `TestClock.adjust`).
 *
 * **Bounded memory.** With `maxEntries`, a write that would exceed it evicts the least recently used key (a `get` or a
 * write counts as use), in O(1) besides the index update.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Ref from "effect/Ref"
import * as Result from "effect/Result"
import SortedBTree from "sorted-btree"
import {
  type BaseKvStore,
  BaseKvStoreService,
  type Expiry,
  type KvInputError,
  make,
  type MakeOptions,
  syncPrimitive,
  type Telemetry,
  type WatchEvent,
  type WatchSink
} from "./BaseKvStore.ts"
import { checkOptions, positiveInteger } from "./internal/options.ts"

// sorted-btree is CommonJS with `exports.default = BTree`. Node's ESM loader hands over `module.exports` as the default
// export (the class is its `default`); bundlers' CommonJS interop hands over the class itself.
const BTree = SortedBTree.default ?? (SortedBTree as unknown as typeof SortedBTree.default)

/**
 * The index's key order: JavaScript string order, with one `<` and one `>` on strings. sorted-btree's default
 * comparator also orders numbers, dates and arrays, and its type checks cost about 10% of an insert.
 */
const compare = (a: string, b: string): number => a < b ? -1 : a > b ? 1 : 0

/**
 * Keys per tree node. At a million random keys nearly all of an insert's or delete's time is cache misses on the key
 * strings the search compares with; wider nodes than sorted-btree's default (32) mean fewer of them (BENCHMARKS.md,
 * memory).
 */
const NODE_SIZE = 128

/**
 * Options of the in-memory store.
 *
 * @since 0.1.0
 * @category models
 */
export interface MemoryStoreOptions {
  /** The most keys the store holds; a write beyond it evicts the least recently used key. Default: no limit. */
  readonly maxEntries?: number | undefined
}

interface MemoryState {
  /** In least-recently-used-first order when the store has `maxEntries`: a use moves the key to the end. */
  readonly values: Map<string, string>
  /** The same keys as `values`, ordered. A set: every entry's value is `undefined`, which the tree stores once. */
  readonly index: InstanceType<typeof BTree<string, undefined>>
  /** Expiry time (Clock milliseconds) of each key that has one. */
  readonly expiries: Map<string, number>
  /**
   * A binary min-heap of (expiry, key), so writes reclaim expired keys nobody reads. An overwritten key leaves its old
   * entry behind; it is skipped when it surfaces, since it no longer matches `expiries`.
   */
  readonly heapTimes: Array<number>
  readonly heapKeys: Array<string>
}

const heapPush = (state: MemoryState, time: number, key: string) => {
  const { heapKeys, heapTimes } = state
  let i = heapTimes.length
  heapTimes.push(time)
  heapKeys.push(key)
  while (i > 0) {
    const parent = (i - 1) >> 1
    if (heapTimes[parent] <= time) break
    heapTimes[i] = heapTimes[parent]
    heapKeys[i] = heapKeys[parent]
    i = parent
  }
  heapTimes[i] = time
  heapKeys[i] = key
}

const heapPop = (state: MemoryState) => {
  const { heapKeys, heapTimes } = state
  const lastTime = heapTimes.pop()!
  const lastKey = heapKeys.pop()!
  const size = heapTimes.length
  if (size === 0) return
  let i = 0
  for (;;) {
    let child = 2 * i + 1
    if (child >= size) break
    if (child + 1 < size && heapTimes[child + 1] < heapTimes[child]) child++
    if (heapTimes[child] >= lastTime) break
    heapTimes[i] = heapTimes[child]
    heapKeys[i] = heapKeys[child]
    i = child
  }
  heapTimes[i] = lastTime
  heapKeys[i] = lastKey
}

const rebuildHeap = (state: MemoryState) => {
  state.heapTimes.length = 0
  state.heapKeys.length = 0
  for (const [key, at] of state.expiries) heapPush(state, at, key)
}

/**
 * The longest the expiry fiber of a watched store sleeps. A key written with a ttl shorter than the current sleep is
 * noticed at the next wake-up, so its `Expire` is at most this late.
 */
const MAX_EXPIRY_SLEEP = Duration.seconds(1)

const validMaxEntries = (maxEntries: unknown): number | undefined =>
  maxEntries === undefined ? undefined : positiveInteger("memory", "maxEntries", maxEntries)

const MEMORY_TELEMETRY: Telemetry = { system: "memory" }

/**
 * The primitives of a new in-memory store, for `make`. `makeMemoryBaseKvStore` is `make` over these; a store that
 * adds behaviour to the memory store (a test double with a fault, say) can start from them.
 *
 * **Atomicity comes from each operation being synchronous**, not from the `Ref` that holds the state. Every
 * primitive does all its reading and writing in one synchronous step of the calling fiber (`Effect.withFiber`,
 * `Effect.sync`, `syncPrimitive`), and JavaScript runs that step to its end before any other fiber runs. So no fiber
 * ever sees a half-applied write, and every operation, `modify` and the batches included, is atomic. A primitive that
 * yielded between its read and its write (an `Effect.flatMap` on a read) would lose that, `Ref` or not.
 *
 * The `Ref` is only the holder of the state: it is never set. The `Map`, tree and heap inside are updated in place,
 * because copying a million entries per write (what `Ref.update` over an immutable map would ask for) is not an
 * option, and nothing outside this closure holds them.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemoryPrimitives = (options: MemoryStoreOptions = {}): MakeOptions => {
  const maxEntries = validMaxEntries(options?.maxEntries)
  // Never set: the state is changed in place, inside each operation's synchronous step (see above).
  const state: Ref.Ref<MemoryState> = Ref.makeUnsafe<MemoryState>({
    values: new Map(),
    index: new BTree<string, undefined>(undefined, compare, NODE_SIZE),
    expiries: new Map(),
    heapTimes: [],
    heapKeys: []
  })

  const now = (fiber: Fiber.Fiber<unknown, unknown>) => fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()

  /** The sinks of the store's watchers. Writes check its size first, so an unwatched store builds no events. */
  const sinks = new Set<WatchSink>()
  const emit = (event: WatchEvent) => {
    for (const sink of sinks) sink.emit(event)
  }

  const remove = (s: MemoryState, key: string, reason: "Delete" | "Expire" = "Delete"): boolean => {
    if (!s.values.delete(key)) return false
    s.index.delete(key)
    s.expiries.delete(key)
    if (sinks.size !== 0) emit({ _tag: reason, key })
    return true
  }

  /** The value of a live key; an expired one is removed on the way. Reads the clock only for keys with an expiry. */
  const alive = (s: MemoryState, key: string, fiber: Fiber.Fiber<unknown, unknown>): string | undefined => {
    const value = s.values.get(key)
    if (value === undefined || s.expiries.size === 0) return value
    const at = s.expiries.get(key)
    if (at === undefined || at > now(fiber)) return value
    remove(s, key, "Expire")
    return undefined
  }

  const isExpired = (s: MemoryState, key: string, time: number): boolean => {
    const at = s.expiries.get(key)
    return at !== undefined && at <= time
  }

  const sweep = (s: MemoryState, fiber: Fiber.Fiber<unknown, unknown>) => {
    if (s.heapTimes.length === 0) return
    const time = now(fiber)
    while (s.heapTimes.length > 0 && s.heapTimes[0] <= time) {
      const key = s.heapKeys[0]
      const at = s.heapTimes[0]
      heapPop(s)
      if (s.expiries.get(key) === at) remove(s, key, "Expire")
    }
  }

  const touch = (s: MemoryState, key: string, value: string) => {
    s.values.delete(key)
    s.values.set(key, value)
  }

  /**
   * The common write (no ttl anywhere, no bound): one hash lookup, the map's size telling an insert from an overwrite.
   * With no key holding a ttl, nothing is due to expire, and stale heap entries can wait. Kept apart from the rest, and
   * small, so that V8 can inline it into the operation: this is the path `set` is measured on beside `layerMemory`.
   */
  const write = (s: MemoryState, key: string, value: string, expiry: Expiry, fiber: Fiber.Fiber<unknown, unknown>) => {
    if (expiry !== null || s.expiries.size !== 0 || maxEntries !== undefined) {
      return writeWithExpiry(s, key, value, expiry, fiber)
    }
    const size = s.values.size
    s.values.set(key, value)
    if (s.values.size !== size) s.index.set(key, undefined)
    if (sinks.size !== 0) emit({ _tag: "Set", key, value })
  }

  const writeWithExpiry = (
    s: MemoryState,
    key: string,
    value: string,
    expiry: Expiry,
    fiber: Fiber.Fiber<unknown, unknown>
  ) => {
    sweep(s, fiber)
    // An expired key must not lend its expiry to "keep".
    const existed = alive(s, key, fiber) !== undefined
    if (existed && maxEntries !== undefined) s.values.delete(key)
    s.values.set(key, value)
    if (!existed) {
      s.index.set(key, undefined)
      if (maxEntries !== undefined && s.values.size > maxEntries) remove(s, s.values.keys().next().value!)
    }
    if (expiry === null) {
      if (s.expiries.size !== 0) s.expiries.delete(key)
    } else if (expiry !== "keep") {
      const at = now(fiber) + expiry
      s.expiries.set(key, at)
      heapPush(s, at, key)
      // Every overwrite of a key with a ttl leaves its old entry in the heap until that expiry passes: a lease renewed
      // every second with a day's ttl would pile up 86,400 of them. Rebuilding from the live expiries once stale
      // entries outnumber them keeps the heap within twice the keys that have a ttl, at O(1) amortised per write.
      if (s.heapTimes.length > 2 * s.expiries.size + 1024) rebuildHeap(s)
    }
    if (sinks.size !== 0) emit({ _tag: "Set", key, value })
  }

  const read = (key: string, fiber: Fiber.Fiber<unknown, unknown>): string | null => {
    const s = Ref.getUnsafe(state)
    const value = alive(s, key, fiber)
    if (value === undefined) return null
    if (maxEntries !== undefined) touch(s, key, value)
    return value
  }

  /** Keys under `prefix` from `start` on (stripped), at most `limit`; expired ones are skipped and removed. */
  const scan = (
    prefix: string,
    start: string,
    skipStart: boolean,
    limit: number,
    fiber: Fiber.Fiber<unknown, unknown>
  ): Array<string> => {
    const s = Ref.getUnsafe(state)
    const time = s.expiries.size === 0 ? 0 : now(fiber)
    const keys: Array<string> = []
    const expired: Array<string> = []
    // The tree iterates from the first key >= start; keys sharing the prefix are contiguous from there.
    for (const key of s.index.keys(start)) {
      if (!key.startsWith(prefix) || keys.length >= limit) break
      if (skipStart && key === start) continue
      if (time !== 0 && isExpired(s, key, time)) expired.push(key)
      else keys.push(key.slice(prefix.length))
    }
    for (const key of expired) remove(s, key, "Expire")
    return keys
  }

  const compareAndSet = (
    key: string,
    expected: string | null,
    next: string | null,
    expiry: Expiry,
    fiber: Fiber.Fiber<unknown, unknown>
  ): boolean => {
    const s = Ref.getUnsafe(state)
    if ((alive(s, key, fiber) ?? null) !== expected) return false
    if (next === null) remove(s, key)
    else write(s, key, next, expiry, fiber)
    return true
  }

  /** Expires keys nobody reads while someone watches: sleeps until the earliest expiry (at most a second), sweeps. */
  const expireLoop = Effect.withFiber((fiber) => {
    const s = Ref.getUnsafe(state)
    sweep(s, fiber)
    const wait = s.heapTimes.length === 0 ? Infinity : s.heapTimes[0] - now(fiber)
    return Effect.sleep(Duration.min(Duration.millis(Math.max(wait, 1)), MAX_EXPIRY_SLEEP))
  }).pipe(Effect.forever)

  return {
    // No database behind it: the store is this process's memory, so its spans say `db.system.name: memory`.
    telemetry: MEMORY_TELEMETRY,
    // Every operation is one synchronous step: these four, the hottest, let `make` trace them in that same step.
    get: syncPrimitive((fiber, key: string) => read(key, fiber)),
    set: syncPrimitive((fiber, key: string, value: string, expiry: Expiry) => {
      write(Ref.getUnsafe(state), key, value, expiry, fiber)
    }),
    delete: syncPrimitive((_fiber, key: string) => {
      remove(Ref.getUnsafe(state), key)
    }),
    list: (prefix) => Effect.withFiberSucceed((fiber) => scan(prefix, prefix, false, Infinity, fiber)),
    listAfter: (prefix, after, limit) =>
      Effect.withFiberSucceed((fiber) =>
        after === null
          ? scan(prefix, prefix, false, limit + 1, fiber)
          : scan(prefix, prefix + after, true, limit + 1, fiber)
      ),
    has: syncPrimitive((fiber, key: string) => alive(Ref.getUnsafe(state), key, fiber) !== undefined),
    getMany: (keys) => Effect.withFiberSucceed((fiber) => keys.map((key) => read(key, fiber))),
    setMany: (entries, expiry) =>
      Effect.withFiberSucceed((fiber) => {
        const s = Ref.getUnsafe(state)
        for (const [key, value] of entries) write(s, key, value, expiry, fiber)
      }),
    deleteMany: (keys) =>
      Effect.sync(() => {
        const s = Ref.getUnsafe(state)
        for (const key of keys) remove(s, key)
      }),
    count: (prefix) => Effect.withFiberSucceed((fiber) => scan(prefix, prefix, false, Infinity, fiber).length),
    clear: (prefix) =>
      Effect.withFiberSucceed((fiber) => {
        const s = Ref.getUnsafe(state)
        const keys = scan(prefix, prefix, false, Infinity, fiber)
        for (const key of keys) remove(s, prefix + key)
        return keys.length
      }),
    setIfAbsent: (key, value, expiry) =>
      Effect.withFiberSucceed((fiber) => {
        const s = Ref.getUnsafe(state)
        if (alive(s, key, fiber) !== undefined) return false
        write(s, key, value, expiry, fiber)
        return true
      }),
    compareAndSet: (key, expected, next, expiry) =>
      Effect.withFiberSucceed((fiber) => compareAndSet(key, expected, next, expiry, fiber)),
    // One synchronous step: nothing can interleave between reading the value and writing f's result.
    modify: (key, f, expiry) =>
      Effect.withFiber((fiber) => {
        const current = alive(Ref.getUnsafe(state), key, fiber) ?? null
        const next = f(current)
        if (Result.isFailure(next)) return Effect.fail(next.failure)
        compareAndSet(key, current, next.success, expiry, fiber)
        return Effect.succeed(next.success)
      }),
    ttl: (key) =>
      Effect.withFiberSucceed((fiber) => {
        const s = Ref.getUnsafe(state)
        if (alive(s, key, fiber) === undefined) return null
        const at = s.expiries.get(key)
        return at === undefined ? Infinity : at - now(fiber)
      }),
    subscribe: (_prefix, sink) =>
      Effect.gen(function*() {
        yield* Effect.acquireRelease(Effect.sync(() => sinks.add(sink)), () => Effect.sync(() => sinks.delete(sink)))
        yield* Effect.forkScoped(expireLoop)
      })
  }
}

/**
 * Creates a new, empty in-memory store. It is ready at once: `makeMemoryBaseKvStore().get("key")` is an Effect.
 *
 * Throws a `KvInputError` (reason `"InvalidOption"`, argument `"maxEntries"`) when `maxEntries` is not a positive
 * integer.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemoryBaseKvStore = (options: MemoryStoreOptions = {}): BaseKvStore =>
  make(makeMemoryPrimitives(options))

/**
 * A `Layer` providing a fresh in-memory `BaseKvStoreService` each time it is built: `layerMemory()`, or
 * `layerMemory({ maxEntries: 10_000 })` for a bounded store. A bad `maxEntries` fails it with `KvInputError` (reason
 * `"InvalidOption"`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (options: MemoryStoreOptions = {}): Layer.Layer<BaseKvStoreService, KvInputError> =>
  Layer.effect(BaseKvStoreService, checkOptions(() => makeMemoryBaseKvStore(options)))

/**
 * The ready in-memory layer programs provide: `program.pipe(Effect.provide(memoryKvStore))`. Same as `layerMemory()`.
 *
 * @since 0.1.0
 * @category layers
 */
export const memoryKvStore: Layer.Layer<BaseKvStoreService> = Layer.sync(BaseKvStoreService)(() =>
  makeMemoryBaseKvStore()
)
