/**
 * The contract every effect-kv backend keeps.
 *
 * `BaseKvStore` is a string key-value store as an Effect service: programs ask for `BaseKvStoreService`, develop and
 * test against the in-memory backend, and run on Redis, PostgreSQL or SQLite in production without changing a line.
 * This module holds the one definition of what the operations mean (the four of the original shape, and the atomics,
 * expiry, batches, paging and watch built on them), the errors they fail with, and the limits of keys and values. Backends build their store with `make`, which enforces the input rules, so a backend only says how it
 * stores things. The conformance suite in `effect-kv/testing` proves a backend keeps this contract.
 *
 * **Semantics**
 *
 * - `get(key)` succeeds with the value, or `null` when the key is missing.
 * - `set(key, value)` stores the value, overwriting any previous one.
 * - `delete(key)` removes the key, and succeeds when it is already missing.
 * - `list(prefix)` succeeds with the keys that start with `prefix`, with the prefix removed, sorted ascending in
 *   JavaScript string order (UTF-16 code units, as `Array.prototype.sort` does), each exactly once. `list("")` lists
 *   every key. For every `k` it returns, `get(prefix + k)` found a value when the listing ran.
 *
 * **Watching.** `watch(prefix)` is a `Stream` of the changes to keys under `prefix` (keys with the prefix removed, as
 * `list` returns them), on every backend:
 *
 * - `Set { key, value }`: a write; `value` is the value written or a later one, never an older one. A backend that
 *   reads the value after the change (Redis, SQL) may leave out a `Set` whose key changed again before the read: the
 *   later change's event follows, so the last change of every key always arrives.
 * - `Delete { key }`: a `delete`, `deleteMany`, `clear`, a `compareAndSet` or `modify` to `null`, or an eviction.
 *   Deleting a missing key changes nothing and is no event.
 * - `Expire { key }`: the key's ttl ran out. It arrives without anyone reading the key, within 5 seconds.
 * - `Resync`: events may have been missed (a dropped connection, a consumer that fell behind its buffer); re-read what
 *   you care about. A backend never drops events silently.
 *
 * Events caused by one writer arrive in that writer's order (on a Redis Cluster, in its order per master: keys that
 * need one order across them share a hash tag). The prefix is literal. With `initial: true` the stream
 * first replays the entries under the prefix as `Set` events in key order, then goes live, with nothing missed in
 * between (it subscribes first, then reads). A consumer holds at most `bufferSize` undelivered events
 * (`DEFAULT_WATCH_BUFFER`); past that it gets `Resync` instead of the backlog, so memory stays bounded. Interrupting
 * the stream releases its subscription, connections and fibers.
 *
 * **Keys, values and prefixes** are plain strings: `* ? [ ] \ : / %`, spaces, newlines and non-ASCII characters have
 * no special meaning. A key is a non-empty string of at most `MAX_KEY_LENGTH` UTF-16 code units; a value is a string of
 * at most `MAX_VALUE_LENGTH` code units; a prefix is a string (possibly empty) of at most `MAX_KEY_LENGTH` code units.
 * All three must be well-formed Unicode (no lone surrogate), because a backend that stores UTF-8, as Redis does,
 * would otherwise turn two different keys into the same one. Anything else fails with a `KvInputError` and nothing is
 * read or written.
 *
 * **Effects are lazy.** Building `store.set("a", "1")` does nothing; running it writes; running it twice writes twice;
 * a `get` built earlier reads the value at the time it runs.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as Predicate from "effect/Predicate"
import type * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { decodeCursor } from "./internal/cursor.ts"
import { deriveListStream, derivePage, derivePrimitives, STREAM_PAGE } from "./internal/derived.ts"
import { isTracing, makeTracing, type Telemetry, traceStore } from "./internal/tracing.ts"
import {
  applyModify,
  checkEntries,
  checkKey,
  checkKeys,
  checkModifyFunction,
  checkPageOptions,
  checkValueOrNull,
  expiryOf,
  invalidKey,
  invalidPrefix,
  invalidValue,
  isValidKey,
  isValidPrefix,
  isValidValue,
  watchSettings
} from "./internal/validation.ts"
import { deriveWatch } from "./internal/watch.ts"

/**
 * What a backend tells `make` about itself for its spans and metrics (OpenTelemetry's database attributes).
 *
 * @since 0.1.0
 * @category models
 */
export type { Telemetry } from "./internal/tracing.ts"

/**
 * Options of every write: how long the key lives.
 *
 * @since 0.1.0
 * @category models
 */
export interface WriteOptions {
  /**
   * The key expires this long after the write: a finite duration of at least 1 millisecond (`"30 minutes"`, `5000`
   * for milliseconds, `Duration.hours(1)`). Without it the key never expires, even if it had an expiry before.
   */
  readonly ttl?: Duration.Input | undefined
  /** Keep the key's current expiry instead of removing it (Redis `KEEPTTL`). Cannot be combined with `ttl`. */
  readonly keepTtl?: boolean | undefined
}

/**
 * Options of `listPage`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ListPageOptions {
  /** The most keys the page holds: an integer from 1 to `MAX_PAGE_LIMIT`. */
  readonly limit: number
  /** The `cursor` of the previous page; omitted or `null` for the first page. */
  readonly cursor?: string | null | undefined
}

/**
 * One page of a listing.
 *
 * @since 0.1.0
 * @category models
 */
export interface ListPage {
  /** Keys in `list` order, with the prefix removed. */
  readonly keys: ReadonlyArray<string>
  /** Pass it to the next `listPage` call; `null` after the last page. Opaque: do not parse it. */
  readonly cursor: string | null
}

/**
 * One change seen by `watch`. Keys are relative to the watched prefix.
 *
 * @since 0.1.0
 * @category models
 */
export type WatchEvent =
  | { readonly _tag: "Set"; readonly key: string; readonly value: string }
  | { readonly _tag: "Delete"; readonly key: string }
  | { readonly _tag: "Expire"; readonly key: string }
  | { readonly _tag: "Resync" }

/**
 * Options of `watch`.
 *
 * @since 0.1.0
 * @category models
 */
export interface WatchOptions {
  /** First replay the entries under the prefix as `Set` events in key order, then go live. Default: `false`. */
  readonly initial?: boolean | undefined
  /**
   * The most events held for a consumer that has not taken them: an integer from 1 to `MAX_WATCH_BUFFER`. Past it the
   * backlog is dropped and the consumer gets `Resync`. Default: `DEFAULT_WATCH_BUFFER`.
   */
  readonly bufferSize?: number | undefined
}

/**
 * The default `bufferSize` of `watch`: enough for a burst of writes (a `setMany` of a thousand keys) to reach a
 * consumer that is briefly busy, few enough that a stuck consumer holds a bounded, small amount of memory.
 *
 * @since 0.1.0
 * @category limits
 */
export const DEFAULT_WATCH_BUFFER = 4096

/**
 * The largest `bufferSize` of `watch`.
 *
 * @since 0.1.0
 * @category limits
 */
export const MAX_WATCH_BUFFER = 1_000_000

/**
 * A string key-value store. Every operation is a lazy `Effect`.
 *
 * @since 0.1.0
 * @category models
 */
export interface BaseKvStore {
  /** The value stored under `key`, or `null` when the key is missing (or expired). */
  readonly get: (key: string) => Effect.Effect<string | null, KvStoreError>
  /** Stores `value` under `key`, overwriting any previous value. */
  readonly set: (key: string, value: string, options?: WriteOptions) => Effect.Effect<void, KvStoreError>
  /** Removes `key`; succeeds when the key is already missing. */
  readonly delete: (key: string) => Effect.Effect<void, KvStoreError>
  /** The keys starting with `prefix`, with the prefix removed, sorted ascending, each once. */
  readonly list: (prefix: string) => Effect.Effect<ReadonlyArray<string>, KvStoreError>
  /** Whether `key` holds a value. */
  readonly has: (key: string) => Effect.Effect<boolean, KvStoreError>
  /** The values of `keys`, in their order, `null` for each missing key. Duplicates are allowed. */
  readonly getMany: (keys: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<string | null>, KvStoreError>
  /** Stores every entry; later entries win over earlier ones with the same key. */
  readonly setMany: (
    entries: ReadonlyArray<readonly [key: string, value: string]>,
    options?: WriteOptions
  ) => Effect.Effect<void, KvStoreError>
  /** Removes every key; missing keys are skipped. */
  readonly deleteMany: (keys: ReadonlyArray<string>) => Effect.Effect<void, KvStoreError>
  /** The number of keys under `prefix`. */
  readonly count: (prefix: string) => Effect.Effect<number, KvStoreError>
  /** Deletes every key under `prefix` (`""`: the whole store) and succeeds with how many it deleted. */
  readonly clear: (prefix: string) => Effect.Effect<number, KvStoreError>
  /** At most `limit` keys under `prefix` in `list` order, and the cursor of the next page. */
  readonly listPage: (prefix: string, options: ListPageOptions) => Effect.Effect<ListPage, KvStoreError>
  /** The keys under `prefix` in `list` order, as a stream read page by page. */
  readonly listStream: (prefix: string) => Stream.Stream<string, KvStoreError>
  /** Writes `value` only when `key` is missing (or expired); `true` when it wrote. Atomic. */
  readonly setIfAbsent: (key: string, value: string, options?: WriteOptions) => Effect.Effect<boolean, KvStoreError>
  /**
   * When the value of `key` is `expected` (`null`: missing), replaces it with `next` (`null`: deletes it) and succeeds
   * with `true`; otherwise changes nothing and succeeds with `false`. Atomic.
   */
  readonly compareAndSet: (
    key: string,
    expected: string | null,
    next: string | null,
    options?: WriteOptions
  ) => Effect.Effect<boolean, KvStoreError>
  /**
   * Atomically replaces the value of `key` with `f(current)` (`null`: missing / deletes) and succeeds with the new
   * value. `f` may run more than once when other writers race for the key, so it must be pure.
   */
  readonly modify: (
    key: string,
    f: (current: string | null) => string | null,
    options?: WriteOptions
  ) => Effect.Effect<string | null, KvStoreError>
  /**
   * The time `key` has left to live: `null` when the key is missing, `Duration.infinity` when it never expires.
   */
  readonly ttl: (key: string) => Effect.Effect<Duration.Duration | null, KvStoreError>
  /**
   * The changes to keys under `prefix` as they happen (see "Watching" above). Fails with `KvBackendError` when the
   * backend cannot deliver them (Redis with keyspace notifications off and `CONFIG SET` refused, say).
   */
  readonly watch: (prefix: string, options?: WatchOptions) => Stream.Stream<WatchEvent, KvStoreError>
}

/**
 * The longest key, in UTF-16 code units (`key.length`), that every backend accepts. Prefixes share the limit.
 *
 * Long enough for any structured key (`upload:<uuid>:part:<n>` is 50); short enough that a key is never mistaken for
 * a value. A longer natural key should be hashed.
 *
 * @since 0.1.0
 * @category limits
 */
export const MAX_KEY_LENGTH = 1024

/**
 * The longest value, in UTF-16 code units (`value.length`): 16 Mi. As UTF-8 that is at most 48 MiB, far below Redis's
 * 512 MB limit, so a value one backend accepts every backend accepts. Store larger blobs elsewhere and keep a
 * reference here.
 *
 * @since 0.1.0
 * @category limits
 */
export const MAX_VALUE_LENGTH = 16 * 1024 * 1024

/**
 * The most keys or entries one `getMany`, `setMany` or `deleteMany` takes. One batch is one request to the backend
 * (one `MGET` on Redis); a bound keeps a single request from holding a server, or the process's memory, for long.
 *
 * @since 0.1.0
 * @category limits
 */
export const MAX_BATCH_SIZE = 10_000

/**
 * The largest `limit` of one `listPage`.
 *
 * @since 0.1.0
 * @category limits
 */
export const MAX_PAGE_LIMIT = 10_000

/**
 * The operations of a `BaseKvStore`, as named in errors.
 *
 * @since 0.1.0
 * @category models
 */
export type Operation =
  | "get"
  | "set"
  | "delete"
  | "list"
  | "has"
  | "getMany"
  | "setMany"
  | "deleteMany"
  | "count"
  | "clear"
  | "listPage"
  | "setIfAbsent"
  | "compareAndSet"
  | "modify"
  | "ttl"
  | "watch"

/**
 * The argument an input error is about.
 *
 * @since 0.1.0
 * @category errors
 */
export type Argument =
  | "key"
  | "value"
  | "prefix"
  | "expected"
  | "next"
  | "options"
  | "ttl"
  | "keepTtl"
  | "keys"
  | "entries"
  | "limit"
  | "cursor"
  | "f"
  | "bufferSize"

/**
 * Why an argument was refused.
 *
 * - `NotAString`: the argument is not a primitive string (a number, `undefined`, an object, a `String` object...).
 * - `Empty`: the key is `""`.
 * - `TooLong`: longer than `MAX_KEY_LENGTH` (keys, prefixes) or `MAX_VALUE_LENGTH` (values), or a batch of more than
 *   `MAX_BATCH_SIZE`.
 * - `MalformedUnicode`: contains a lone UTF-16 surrogate.
 * - `InvalidOption`: an option of the wrong type or out of range: a `ttl` that is not a finite duration of at least
 *   1 ms, `ttl` together with `keepTtl`, a `limit` that is not an integer from 1 to `MAX_PAGE_LIMIT`, a cursor that
 *   no `listPage` returned, a batch that is not an array of keys or `[key, value]` pairs, a `modify` function that is
 *   not a function; and, with operation `"options"`, an option of a store or layer that is not what it must be (the
 *   message names the option and what it accepts).
 * - `FunctionThrew`: the function given to `modify` threw; its exception is the error's `cause`.
 *
 * @since 0.1.0
 * @category errors
 */
export type InputReason = "NotAString" | "Empty" | "TooLong" | "MalformedUnicode" | "InvalidOption" | "FunctionThrew"

/**
 * Marks effect-kv's errors, so the guards below recognise them across two installed copies of the package, where
 * `instanceof` does not. A string, not a symbol, for the same reason: every copy builds the same key.
 */
const KvStoreErrorTypeId = "~effect-kv/KvStoreError" as const

/**
 * An argument broke the input rules. Nothing was read or written. Retrying cannot help: fix the caller.
 *
 * @since 0.1.0
 * @category errors
 */
export class KvInputError extends Data.TaggedError("KvInputError")<{
  /** The operation refused, or `"options"`: a store or layer was given a bad option when it was built. */
  readonly operation: Operation | "options"
  /** The argument refused; with operation `"options"`, the option's name (`"timeout"`, `"maxEntries"`...). */
  readonly argument: Argument | (string & {})
  readonly reason: InputReason
  /** The key (or prefix), when the caller passed a string as the key; `undefined` otherwise. */
  readonly key: string | undefined
  readonly message: string
  readonly cause?: unknown
}> {
  /**
   * Marks the error as effect-kv's, for `isKvStoreError` and `isKvInputError`.
   *
   * @since 0.1.0
   */
  readonly [KvStoreErrorTypeId]: typeof KvStoreErrorTypeId = KvStoreErrorTypeId
}

/**
 * Why a backend could not complete an operation.
 *
 * - `Unavailable`: the backend cannot be reached (connection refused or lost, not connected yet, failing over).
 *   Retrying later can succeed.
 * - `Timeout`: no answer within the backend's timeout. The operation may or may not have been applied.
 * - `Conflict`: `modify` kept losing the race for the key to other writers until its deadline. Nothing was written
 *   by this call; retrying can succeed.
 * - `Failure`: the backend answered with an error, or failed in a way that retrying will not fix.
 *
 * @since 0.1.0
 * @category errors
 */
export type BackendReason = "Unavailable" | "Timeout" | "Conflict" | "Failure"

/**
 * The backend failed to perform the operation.
 *
 * @since 0.1.0
 * @category errors
 */
export class KvBackendError extends Data.TaggedError("KvBackendError")<{
  readonly operation: Operation | "connect"
  readonly reason: BackendReason
  /** The key or prefix the operation was given, when there was one. */
  readonly key: string | undefined
  readonly message: string
  readonly cause?: unknown
}> {
  /**
   * Marks the error as effect-kv's, for `isKvStoreError` and `isKvBackendError`.
   *
   * @since 0.1.0
   */
  readonly [KvStoreErrorTypeId]: typeof KvStoreErrorTypeId = KvStoreErrorTypeId
}

/**
 * Every error a `BaseKvStore` operation can fail with.
 *
 * @since 0.1.0
 * @category errors
 */
export type KvStoreError = KvInputError | KvBackendError

/**
 * Whether `u` is an error of effect-kv (`KvInputError` or `KvBackendError`), built by this copy of the package or
 * by another one installed beside it.
 *
 * @since 0.1.0
 * @category guards
 */
export const isKvStoreError = (u: unknown): u is KvStoreError => Predicate.hasProperty(u, KvStoreErrorTypeId)

/**
 * Whether `u` is a `KvInputError`, from any installed copy of effect-kv.
 *
 * @since 0.1.0
 * @category guards
 */
export const isKvInputError = (u: unknown): u is KvInputError => isKvStoreError(u) && u._tag === "KvInputError"

/**
 * Whether `u` is a `KvBackendError`, from any installed copy of effect-kv.
 *
 * @since 0.1.0
 * @category guards
 */
export const isKvBackendError = (u: unknown): u is KvBackendError => isKvStoreError(u) && u._tag === "KvBackendError"

/**
 * The service programs ask for: `const store = yield* BaseKvStoreService`.
 *
 * @since 0.1.0
 * @category services
 */
export class BaseKvStoreService extends Context.Service<BaseKvStoreService, BaseKvStore>()("effect-kv/BaseKvStore") {}

// --- input rules: `make` enforces them (internal/validation.ts); the checks a backend or a view may call itself ---

/**
 * Whether `key` is a valid key: a non-empty, well-formed string of at most `MAX_KEY_LENGTH` code units.
 *
 * @since 0.1.0
 * @category validation
 */
export { isValidKey } from "./internal/validation.ts"

/**
 * Whether `value` is a valid value: a well-formed string of at most `MAX_VALUE_LENGTH` code units.
 *
 * @since 0.1.0
 * @category validation
 */
export { isValidValue } from "./internal/validation.ts"

/**
 * Whether `prefix` is a valid prefix: a well-formed string (possibly empty) of at most `MAX_KEY_LENGTH` code units.
 *
 * @since 0.1.0
 * @category validation
 */
export { isValidPrefix } from "./internal/validation.ts"

/**
 * The error for a key that `isValidKey` refuses: `invalidKey(operation, key)`.
 *
 * @since 0.1.0
 * @category validation
 */
export { invalidKey } from "./internal/validation.ts"

/**
 * The error for a value (or a `compareAndSet` `expected` / `next`) that `isValidValue` refuses:
 * `invalidValue(key, value, operation = "set", argument = "value")`.
 *
 * @since 0.1.0
 * @category validation
 */
export { invalidValue } from "./internal/validation.ts"

/**
 * The error for a prefix that `isValidPrefix` refuses: `invalidPrefix(prefix, operation = "list")`.
 *
 * @since 0.1.0
 * @category validation
 */
export { invalidPrefix } from "./internal/validation.ts"

/**
 * What a backend is told to do with a key's expiry on a write: expire it after this many milliseconds (an integer of
 * at least 1), keep its current expiry (`"keep"`), or make it never expire (`null`).
 *
 * @since 0.1.0
 * @category models
 */
export type Expiry = number | "keep" | null

// --- the primitives a backend supplies ---

/**
 * The primitives a backend supplies to `make`. They receive only arguments that passed the input rules; `expiry` is
 * the already validated form of the caller's `WriteOptions`.
 *
 * The required ones are the few a store cannot be built without; each optional one has a derived default in `make`,
 * built on the required ones, and a backend supplies it when it can do better (one `MGET` instead of many `GET`s).
 * Every primitive must keep the contract's rules, expiry included: a key past its expiry is missing to all of them.
 *
 * @since 0.1.0
 * @category constructors
 */
export interface MakeOptions {
  readonly get: (key: string) => Effect.Effect<string | null, KvStoreError>
  readonly set: (key: string, value: string, expiry: Expiry) => Effect.Effect<void, KvStoreError>
  readonly delete: (key: string) => Effect.Effect<void, KvStoreError>
  /** Must return the stripped, sorted, duplicate-free keys the contract asks for. */
  readonly list: (prefix: string) => Effect.Effect<ReadonlyArray<string>, KvStoreError>
  /** Atomic: of concurrent callers on one key, across processes, at most one writes. */
  readonly setIfAbsent: (key: string, value: string, expiry: Expiry) => Effect.Effect<boolean, KvStoreError>
  /** Atomic compare-and-set; `null` is a missing key as `expected`, a delete as `next`. */
  readonly compareAndSet: (
    key: string,
    expected: string | null,
    next: string | null,
    expiry: Expiry
  ) => Effect.Effect<boolean, KvStoreError>
  /** Milliseconds left to live: `null` when missing, `Infinity` when the key never expires. */
  readonly ttl: (key: string) => Effect.Effect<number | null, KvStoreError>
  readonly has?: ((key: string) => Effect.Effect<boolean, KvStoreError>) | undefined
  readonly getMany?:
    | ((keys: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<string | null>, KvStoreError>)
    | undefined
  readonly setMany?:
    | ((entries: ReadonlyArray<readonly [string, string]>, expiry: Expiry) => Effect.Effect<void, KvStoreError>)
    | undefined
  readonly deleteMany?: ((keys: ReadonlyArray<string>) => Effect.Effect<void, KvStoreError>) | undefined
  readonly count?: ((prefix: string) => Effect.Effect<number, KvStoreError>) | undefined
  readonly clear?: ((prefix: string) => Effect.Effect<number, KvStoreError>) | undefined
  /** Keys under `prefix` strictly after `after` (stripped, `null`: from the start), at most `limit` + 1 of them. */
  readonly listAfter?:
    | ((prefix: string, after: string | null, limit: number) => Effect.Effect<ReadonlyArray<string>, KvStoreError>)
    | undefined
  /**
   * A native atomic `modify`, for backends that can run `f` inside one atomic step (the memory store). It must apply
   * `f` once per attempt and write nothing when `f` fails.
   */
  readonly modify?:
    | ((
      key: string,
      f: (current: string | null) => Result.Result<string | null, KvInputError>,
      expiry: Expiry
    ) => Effect.Effect<string | null, KvStoreError>)
    | undefined
  /**
   * Delivers the backend's changes to `sink` until the scope closes, for `watch`. It succeeds once the subscription
   * is live: every change committed after that reaches the sink, so `watch` can read the initial entries next without
   * missing any. Events carry full keys and may include keys outside `prefix` (a hint for the backend); `make`
   * filters, strips the prefix, buffers and replays, once for every backend. `sink.emit` is synchronous and never
   * blocks, so a backend may call it from a client's callback; a lost connection is `Resync`, a fatal error
   * `sink.fail`. Without it, `watch` fails with `KvBackendError`.
   */
  readonly subscribe?: ((prefix: string, sink: WatchSink) => Effect.Effect<void, KvStoreError, Scope.Scope>) | undefined
  /** How long `modify` keeps retrying when other writers win the race. Default: 5 seconds. */
  readonly modifyTimeout?: Duration.Input | undefined
  /** What the store's spans say about the backend (OpenTelemetry's database attributes). Default: `other`. */
  readonly telemetry?: Telemetry | undefined
}

const SyncId: unique symbol = Symbol.for("effect-kv/BaseKvStore/sync")

/**
 * A primitive that does all its work in one synchronous step of the calling fiber, as the memory store's do. `make`
 * runs `run` in the very step that checks for a tracer (and opens and closes the span around it when one is
 * installed), so the operation costs one fiber step, traced or not. Used by `make` for `get`, `set`, `delete` and
 * `has`; a primitive replaced by a plain function (`{ ...primitives, get }`) runs as the effect it returns.
 *
 * @since 0.1.0
 * @category constructors
 */
export const syncPrimitive = <Args extends ReadonlyArray<unknown>, A>(
  run: (fiber: Fiber.Fiber<unknown, unknown>, ...args: Args) => A
): (...args: Args) => Effect.Effect<A> =>
  Object.assign((...args: Args) => Effect.withFiberSucceed((fiber) => run(fiber, ...args)), { [SyncId]: run })

const syncOf = <Args extends ReadonlyArray<unknown>, A>(
  primitive: ((...args: Args) => Effect.Effect<A, KvStoreError>) | undefined
): ((fiber: Fiber.Fiber<unknown, unknown>, ...args: Args) => A) | undefined =>
  (primitive as { readonly [SyncId]?: (fiber: Fiber.Fiber<unknown, unknown>, ...args: Args) => A } | undefined)?.[
    SyncId
  ]

const TracedId: unique symbol = Symbol.for("effect-kv/BaseKvStore/traced")

/**
 * How a primitive built with `tracedPrimitive` puts its work in the span of its operation: `make` passes this function
 * (the operation's span around `effect`), and the primitive calls it only when a tracer is installed.
 *
 * @since 0.1.0
 * @category models
 */
export type Traced = <A, E extends KvStoreError>(effect: Effect.Effect<A, E>) => Effect.Effect<A, E>

/**
 * A primitive that checks for a tracer itself, in the step that starts its work (where `Fiber.getCurrent()` is the
 * caller's fiber), as the Redis store's point operations do: `make` gives `run` the operation's `Traced`, and the
 * primitive runs in it when a tracer is installed. So an untraced operation needs no step of its own for the check.
 * Used by `make` for `get`, `set` and `delete`; called as a plain function (as a view over the store calls it), `run`
 * gets `undefined` and the caller traces.
 *
 * @since 0.1.0
 * @category constructors
 */
export const tracedPrimitive = <Args extends ReadonlyArray<unknown>, A>(
  run: (traced: Traced | undefined, ...args: Args) => Effect.Effect<A, KvStoreError>
): (...args: Args) => Effect.Effect<A, KvStoreError> =>
  Object.assign((...args: Args) => run(undefined, ...args), { [TracedId]: run })

const tracedOf = <Args extends ReadonlyArray<unknown>, A>(
  primitive: ((...args: Args) => Effect.Effect<A, KvStoreError>) | undefined
): ((traced: Traced | undefined, ...args: Args) => Effect.Effect<A, KvStoreError>) | undefined =>
  (primitive as {
    readonly [TracedId]?: (traced: Traced | undefined, ...args: Args) => Effect.Effect<A, KvStoreError>
  } | undefined)?.[TracedId]

/**
 * A point primitive (`get`, `set`, `delete`, `has`) with its key rewritten by `f` before the backend sees it, keeping
 * the path its backend gave it: a `syncPrimitive` stays one, and so does a `tracedPrimitive`. A view over a store
 * (`withPrefix`) builds its point operations with it, so that an operation through the view takes the fiber steps it
 * takes on the store, with no step of its own for the tracer check (BENCHMARKS.md, views).
 *
 * @since 0.1.0
 * @category constructors
 */
export const mapKey = <P extends (key: string, ...args: Array<any>) => Effect.Effect<any, KvStoreError>>(
  primitive: P,
  f: (key: string) => string
): P => {
  // Point primitives take at most three arguments; passing them one by one spares a rest array per call.
  const point = primitive as (key: string, a?: unknown, b?: unknown) => Effect.Effect<unknown, KvStoreError>
  const sync = syncOf(point)
  if (sync !== undefined) {
    return syncPrimitive((fiber, key: string, a?: unknown, b?: unknown) => sync(fiber, f(key), a, b)) as unknown as P
  }
  const traced = tracedOf(point)
  if (traced !== undefined) {
    return tracedPrimitive((span, key: string, a?: unknown, b?: unknown) => traced(span, f(key), a, b)) as unknown as P
  }
  return ((key: string, a?: unknown, b?: unknown) => point(f(key), a, b)) as P
}

/**
 * Where a backend's `subscribe` delivers changes.
 *
 * @since 0.1.0
 * @category constructors
 */
export interface WatchSink {
  /** One change, with the backend's full key. */
  readonly emit: (event: WatchEvent) => void
  /** Ends the watch with this error. */
  readonly fail: (error: KvStoreError) => void
}

/**
 * Builds a `BaseKvStore` from a backend's primitives: enforces the input rules in front of them and derives every
 * operation the backend does not supply.
 *
 * A refused argument fails with `KvInputError` before the backend is touched. The check runs when the effect is
 * built, which is safe because it only reads the caller's arguments; for a batch, every key and value is checked
 * before anything is written. The backend's effect is returned as is, so its laziness is the backend's.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: MakeOptions): BaseKvStore => {
  const primitives = derivePrimitives(options)
  const { clear, compareAndSet, count, deleteMany, get, getMany, has, listAfter, modify, setMany, subscribe } =
    primitives
  const page = derivePage(listAfter)
  const listStream = deriveListStream(page)
  const watch = deriveWatch({ subscribe, getMany, listAfter, pageSize: STREAM_PAGE })

  const withExpiry = <A>(
    operation: Operation,
    key: string | undefined,
    writeOptions: WriteOptions | undefined,
    f: (expiry: Expiry) => Effect.Effect<A, KvStoreError>
  ): Effect.Effect<A, KvStoreError> => {
    // The common write, without options, skips the options check entirely.
    if (writeOptions === undefined) return f(null)
    const expiry = expiryOf(operation, key, writeOptions)
    return isKvInputError(expiry) ? Effect.fail(expiry) : f(expiry)
  }

  const telemetry = options.telemetry ?? OTHER
  const tracing = makeTracing(telemetry)
  // The backend's synchronous primitives, run in the step that checks for a tracer (see `syncPrimitive`).
  const getSync = syncOf(options.get)
  const setSync = syncOf(options.set)
  const deleteSync = syncOf(options.delete)
  const hasSync = syncOf(options.has)
  // The backend's primitives that check for a tracer in the step that starts their work (see `tracedPrimitive`).
  const getTraced = tracedOf(options.get)
  const setTraced = tracedOf(options.set)
  const deleteTraced = tracedOf(options.delete)
  const spanOf = (operation: Operation): Traced => (effect) => tracing.traced(operation, effect)
  const getSpan = spanOf("get")
  const setSpan = spanOf("set")
  const deleteSpan = spanOf("delete")
  const selfTraced = new Set<Operation>()
  if (getSync !== undefined || getTraced !== undefined) selfTraced.add("get")
  if (setSync !== undefined || setTraced !== undefined) selfTraced.add("set")
  if (deleteSync !== undefined || deleteTraced !== undefined) selfTraced.add("delete")
  if (hasSync !== undefined) selfTraced.add("has")
  /** A refused argument of a self-traced operation still gets its span, with `error.type`. */
  const refuse = (operation: Operation, error: KvInputError) =>
    selfTraced.has(operation) ? tracing.traced(operation, Effect.fail(error)) : Effect.fail(error)
  const setValid = (key: string, value: string, expiry: Expiry): Effect.Effect<void, KvStoreError> =>
    setSync === undefined
      ? setTraced === undefined ? options.set(key, value, expiry) : setTraced(setSpan, key, value, expiry)
      : Effect.withFiberSucceed((fiber) =>
        isTracing(fiber)
          ? tracing.sync(fiber, "set", () => setSync(fiber, key, value, expiry))
          : setSync(fiber, key, value, expiry)
      )

  /** A synchronous primitive of one key, in one fiber step (its span in that step when a tracer is installed). */
  const onKey = <A>(
    operation: Operation,
    run: (fiber: Fiber.Fiber<unknown, unknown>, key: string) => A,
    key: string
  ): Effect.Effect<A> =>
    Effect.withFiberSucceed((fiber) =>
      isTracing(fiber) ? tracing.sync(fiber, operation, () => run(fiber, key)) : run(fiber, key)
    )

  const store: BaseKvStore = {
    get: (key) =>
      !isValidKey(key)
        ? refuse("get", invalidKey("get", key))
        : getSync !== undefined
        ? onKey("get", getSync, key)
        : getTraced !== undefined
        ? getTraced(getSpan, key)
        : get(key),
    set: (key, value, writeOptions) =>
      !isValidKey(key)
        ? refuse("set", invalidKey("set", key))
        : !isValidValue(value)
        ? refuse("set", invalidValue(key, value))
        : writeOptions === undefined
        ? setValid(key, value, null)
        : withExpiry("set", key, writeOptions, (expiry) => setValid(key, value, expiry)),
    delete: (key) =>
      !isValidKey(key)
        ? refuse("delete", invalidKey("delete", key))
        : deleteSync !== undefined
        ? onKey("delete", deleteSync, key)
        : deleteTraced !== undefined
        ? deleteTraced(deleteSpan, key)
        : options.delete(key),
    list: (prefix) => isValidPrefix(prefix) ? options.list(prefix) : Effect.fail(invalidPrefix(prefix)),
    has: (key) =>
      !isValidKey(key)
        ? refuse("has", invalidKey("has", key))
        : hasSync === undefined
        ? has(key)
        : onKey("has", hasSync, key),
    getMany: (keys) => {
      const error = checkKeys("getMany", keys)
      return error !== undefined ? Effect.fail(error) : keys.length === 0 ? Effect.succeed([]) : getMany(keys)
    },
    setMany: (entries, writeOptions) => {
      const error = checkEntries(entries)
      if (error !== undefined) return Effect.fail(error)
      return withExpiry(
        "setMany",
        undefined,
        writeOptions,
        (expiry) => entries.length === 0 ? Effect.void : setMany(entries, expiry)
      )
    },
    deleteMany: (keys) => {
      const error = checkKeys("deleteMany", keys)
      return error !== undefined ? Effect.fail(error) : keys.length === 0 ? Effect.void : deleteMany(keys)
    },
    count: (prefix) => isValidPrefix(prefix) ? count(prefix) : Effect.fail(invalidPrefix(prefix, "count")),
    clear: (prefix) => isValidPrefix(prefix) ? clear(prefix) : Effect.fail(invalidPrefix(prefix, "clear")),
    listPage: (prefix, pageOptions) => {
      if (!isValidPrefix(prefix)) return Effect.fail(invalidPrefix(prefix, "listPage"))
      const error = checkPageOptions(prefix, pageOptions)
      if (error !== undefined) return Effect.fail(error)
      const after = decodeCursor(pageOptions.cursor)
      return isKvInputError(after) ? Effect.fail(after) : page(prefix, after, pageOptions.limit)
    },
    listStream: (prefix) => isValidPrefix(prefix) ? listStream(prefix) : Stream.fail(invalidPrefix(prefix, "list")),
    setIfAbsent: (key, value, writeOptions) =>
      !isValidKey(key)
        ? Effect.fail(invalidKey("setIfAbsent", key))
        : !isValidValue(value)
        ? Effect.fail(invalidValue(key, value, "setIfAbsent"))
        : withExpiry("setIfAbsent", key, writeOptions, (expiry) => options.setIfAbsent(key, value, expiry)),
    compareAndSet: (key, expected, next, writeOptions) => {
      const error = checkKey("compareAndSet", key) ??
        checkValueOrNull("compareAndSet", key, expected, "expected") ??
        checkValueOrNull("compareAndSet", key, next, "next")
      if (error !== undefined) return Effect.fail(error)
      return withExpiry("compareAndSet", key, writeOptions, (expiry) => compareAndSet(key, expected, next, expiry))
    },
    modify: (key, f, writeOptions) => {
      const error = checkKey("modify", key) ?? checkModifyFunction(key, f)
      if (error !== undefined) return Effect.fail(error)
      return withExpiry("modify", key, writeOptions, (expiry) => modify(key, applyModify(key, f), expiry))
    },
    ttl: (key) =>
      isValidKey(key)
        ? Effect.map(options.ttl(key), (ms) => ms === null ? null : Duration.millis(ms))
        : Effect.fail(invalidKey("ttl", key)),
    watch: (prefix, watchOptions) => {
      if (!isValidPrefix(prefix)) return Stream.fail(invalidPrefix(prefix, "watch"))
      if (watchOptions === undefined) return watch(prefix, false, DEFAULT_WATCH_BUFFER)
      const settings = watchSettings(prefix, watchOptions)
      return isKvInputError(settings) ? Stream.fail(settings) : watch(prefix, settings.initial, settings.bufferSize)
    }
  }
  const traced = traceStore(store, tracing, selfTraced)
  Object.defineProperty(traced, PrimitivesId, { value: primitives })
  Object.defineProperty(traced, TelemetryId, { value: telemetry })
  return BaseKvStoreService.of(traced)
}

const OTHER: Telemetry = { system: "other" }

/**
 * Every primitive of `MakeOptions`, none missing: what a store built by `make` runs on.
 *
 * @since 0.1.0
 * @category constructors
 */
export type Primitives = {
  readonly [K in Exclude<keyof MakeOptions, "modifyTimeout" | "telemetry">]-?: NonNullable<MakeOptions[K]>
}

const PrimitivesId: unique symbol = Symbol.for("effect-kv/BaseKvStore/primitives")

/**
 * The primitives a store built by `make` runs on, behind its input checks: every one present, derived where the
 * backend gave none. A view over the store (`withPrefix`) builds itself on them, so that its keys are checked once,
 * against the view's own limits; `undefined` for a store built otherwise.
 *
 * @since 0.1.0
 * @category constructors
 */
export const primitivesOf = (store: BaseKvStore): Primitives | undefined =>
  (store as { readonly [PrimitivesId]?: Primitives })[PrimitivesId]

const TelemetryId: unique symbol = Symbol.for("effect-kv/BaseKvStore/telemetry")

/**
 * The telemetry a store built by `make` was given, so that a view over it (`withPrefix`) traces as its store does;
 * `undefined` for a store built otherwise.
 *
 * @since 0.1.0
 * @category constructors
 */
export const telemetryOf = (store: BaseKvStore): Telemetry | undefined =>
  (store as { readonly [TelemetryId]?: Telemetry })[TelemetryId]
