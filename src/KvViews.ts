/**
 * Views: a `BaseKvStore` seen through a namespace, or one that cleans itself up.
 *
 * A view is a plain function over any `BaseKvStore`, so it works the same on every backend, and a view of a view is a
 * view (`withPrefix(withPrefix(store, "tenant:1:"), "uploads:")`). Programs that ask for `BaseKvStoreService` get a
 * namespaced store by providing `layerWithPrefix("tenant:1:")` on top of the backend's layer, without changing a
 * line.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import {
  type BaseKvStore,
  BaseKvStoreService,
  type Expiry,
  invalidPrefix,
  isKvInputError,
  isValidPrefix,
  type KvInputError,
  type KvStoreError,
  make,
  mapKey,
  type Primitives,
  primitivesOf,
  telemetryOf,
  type WatchSink,
  type WriteOptions
} from "./BaseKvStore.ts"
import { checkOptions, namespace as checkNamespace } from "./internal/options.ts"

const writeOptions = (expiry: Expiry): WriteOptions | undefined =>
  expiry === null ? undefined : expiry === "keep" ? { keepTtl: true } : { ttl: expiry }

/** A view over a store's public operations, for stores not built by `make`: their own checks apply on top. */
const viaOperations = (store: BaseKvStore): Primitives => ({
  get: store.get,
  set: (key, value, expiry) => store.set(key, value, writeOptions(expiry)),
  delete: store.delete,
  list: store.list,
  has: store.has,
  getMany: store.getMany,
  setMany: (entries, expiry) => store.setMany(entries, writeOptions(expiry)),
  deleteMany: store.deleteMany,
  count: store.count,
  clear: store.clear,
  setIfAbsent: (key, value, expiry) => store.setIfAbsent(key, value, writeOptions(expiry)),
  compareAndSet: (key, expected, next, expiry) => store.compareAndSet(key, expected, next, writeOptions(expiry)),
  ttl: (key) => Effect.map(store.ttl(key), (left) => left === null ? null : Duration.toMillis(left)),
  listAfter: (prefix, after, limit) =>
    // Only reached for a store with no primitives: page through its listing from the start.
    Effect.map(store.list(prefix), (keys) => keys.filter((key) => after === null || key > after).slice(0, limit + 1)),
  modify: (key, f, expiry) =>
    store.modify(key, (current) => {
      const next = f(current)
      if (Result.isFailure(next)) throw next.failure
      return next.success
    }, writeOptions(expiry)).pipe(
      // The view's own check of f's result, thrown through the store's modify: report it as it was.
      Effect.catchIf(
        (error) => error._tag === "KvInputError" && isKvInputError(error.cause),
        (error) => Effect.fail(error.cause as KvInputError)
      )
    ),
  // The store's own watch, run in the subscriber's scope. Its keys come relative to `prefix`; the sink wants them full.
  // Unlike a primitive, it cannot say when its subscription is live, so an initial replay through such a view may
  // miss a change made in the moment it starts.
  subscribe: (prefix, sink) =>
    store.watch(prefix).pipe(
      Stream.runForEach((event) =>
        Effect.sync(() =>
          sink.emit(
            event._tag === "Resync"
              ? event
              : event._tag === "Set"
              ? { _tag: "Set", key: prefix + event.key, value: event.value }
              : { _tag: event._tag, key: prefix + event.key }
          )
        )
      ),
      Effect.catch((error) => Effect.sync(() => sink.fail(error))),
      Effect.forkScoped,
      Effect.asVoid
    )
})

/** The sink of a view: the base store's full keys, seen from inside `namespace`. */
const namespacedSink = (sink: WatchSink, namespace: string): WatchSink => ({
  emit: (event) => {
    if (event._tag === "Resync") return sink.emit(event)
    if (!event.key.startsWith(namespace)) return
    const key = event.key.slice(namespace.length)
    // The namespace itself is a key of the base store but not of the view, whose keys are never empty.
    if (key === "") return
    sink.emit(event._tag === "Set" ? { _tag: "Set", key, value: event.value } : { _tag: event._tag, key })
  },
  fail: sink.fail
})

const prefixed = (store: BaseKvStore, namespace: string): BaseKvStore => {
  // The view checks the caller's keys itself (so "" stays refused) and runs on the store's primitives, behind its
  // checks: a view's keys may be MAX_KEY_LENGTH long, as on every store, whatever the prefix.
  const base = primitivesOf(store) ?? viaOperations(store)
  const inner = (key: string) => namespace + key
  return make({
    telemetry: telemetryOf(store),
    get: mapKey(base.get, inner),
    set: mapKey(base.set, inner),
    delete: mapKey(base.delete, inner),
    list: (prefix) => base.list(inner(prefix)),
    has: mapKey(base.has, inner),
    getMany: (keys) => base.getMany(keys.map(inner)),
    setMany: (entries, expiry) => base.setMany(entries.map(([key, value]) => [inner(key), value] as const), expiry),
    deleteMany: (keys) => base.deleteMany(keys.map(inner)),
    count: (prefix) => base.count(inner(prefix)),
    clear: (prefix) => base.clear(inner(prefix)),
    // The store strips `namespace + prefix` from the keys it lists, so `after` is already the view's own.
    listAfter: (prefix, after, limit) => base.listAfter(inner(prefix), after, limit),
    setIfAbsent: (key, value, expiry) => base.setIfAbsent(inner(key), value, expiry),
    compareAndSet: (key, expected, next, expiry) => base.compareAndSet(inner(key), expected, next, expiry),
    modify: (key, f, expiry) => base.modify(inner(key), f, expiry),
    ttl: (key) => base.ttl(inner(key)),
    subscribe: (prefix, sink) => base.subscribe(inner(prefix), namespacedSink(sink, namespace))
  })
}

/**
 * The store seen under a namespace: every key is stored as `prefix + key`, listings strip the prefix, and `count`,
 * `clear` (`clear("")` too) and listings stay inside it. Throws a `KvInputError` (reason `"InvalidOption"`,
 * argument `"prefix"`) for a prefix that is not a valid prefix.
 *
 * ```ts
 * const tenant = withPrefix(store, "tenant:42:")
 * yield* tenant.set("upload:1", "{}") // stored as "tenant:42:upload:1"
 * yield* tenant.list("upload:") // ["1"]
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const withPrefix: {
  (prefix: string): (store: BaseKvStore) => BaseKvStore
  (store: BaseKvStore, prefix: string): BaseKvStore
} = dual(2, (store: BaseKvStore, prefix: string): BaseKvStore => {
  const valid = checkNamespace("withPrefix", "prefix", prefix)
  return valid === "" ? store : prefixed(store, valid)
})

/**
 * A `Layer` that namespaces the `BaseKvStoreService` beneath it:
 * `program.pipe(Effect.provide(layerWithPrefix("tenant:42:")), Effect.provide(memoryKvStore))`. A prefix that is not
 * a valid prefix fails it with `KvInputError` (reason `"InvalidOption"`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWithPrefix = (prefix: string): Layer.Layer<BaseKvStoreService, KvInputError, BaseKvStoreService> =>
  Layer.effect(
    BaseKvStoreService,
    Effect.flatMap(
      checkOptions(() => checkNamespace("withPrefix", "prefix", prefix)),
      (valid) => BaseKvStoreService.useSync((store) => withPrefix(store, valid))
    )
  )

/**
 * A view under a fresh, unique prefix (or the one given) whose keys are all deleted when the `Scope` closes: a
 * per-session, per-request or per-test store.
 *
 * Closing the scope never fails it: a clear that fails (Redis down) is logged as a warning, and the keys stay until
 * they expire or are cleared later. Give the keys a `ttl` as well when they must not outlive a crash.
 *
 * ```ts
 * Effect.scoped(Effect.gen(function*() {
 *   const session = yield* scoped(store)
 *   yield* session.set("cart", "[]")
 * })) // the session's keys are gone here
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const scoped = (
  store: BaseKvStore,
  prefix?: string
): Effect.Effect<BaseKvStore, KvStoreError, Scope.Scope> =>
  Effect.suspend(() => {
    const namespace = prefix ?? `scoped:${globalThis.crypto.randomUUID()}:`
    if (!isValidPrefix(namespace) || namespace === "") return Effect.fail(invalidPrefix(namespace, "clear"))
    return Effect.acquireRelease(
      Effect.sync(() => prefixed(store, namespace)),
      (view) =>
        view.clear("").pipe(
          Effect.catchCause((cause) =>
            Effect.logWarning(
              `effect-kv scoped: could not clear ${JSON.stringify(namespace)} when its scope closed`,
              cause
            )
          ),
          Effect.asVoid
        )
    )
  })
