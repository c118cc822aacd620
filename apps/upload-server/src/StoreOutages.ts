/**
 * Riding through short store outages: a view of the store on which an operation that finds the store unreachable
 * waits for it, up to a window, instead of failing at once.
 *
 * A Redis restart or failover takes a second or two, and the client needs up to two more to reconnect. Failing every
 * request at once for that long costs clients their progress: tus-js-client takes a HEAD that fails with anything but
 * 423 to mean the upload is gone, and starts it again from byte 0. With this view a request waits the outage out and
 * carries on; only an outage longer than `window` reaches clients, as 503 with `Retry-After`.
 *
 * - **One window per outage, not per operation.** The window counts from the first failure of the outage, so a
 *   request of four store calls waits at most `window` in all, and once an outage is older than the window every
 *   operation fails at once (each still tries the store once, and the first that succeeds ends the outage): a long
 *   outage answers 5xx within the window, and nothing piles up behind it.
 * - **Bounded waiting.** At most `maxWaiting` operations wait at a time; past that they fail at once.
 * - **Retries stay exact.** Only `Unavailable` and `Timeout` are retried. A `Timeout` (or a connection lost after the
 *   command was sent) may have been applied: a retried `setIfAbsent` or `compareAndSet` that now finds the key
 *   holding the very value it meant to write counts as written. Every value the server writes this way is unique (a
 *   lease's random token, a record with a fresh expiry), so that value can only be its own. `modify`, `clear`,
 *   listing streams and watches pass through unchanged: the server does not need them to wait.
 *
 * @since 0.1.0
 */
import type { BaseKvStore, KvStoreError } from "effect-kv"
import { BaseKvStoreService } from "effect-kv"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import { UploadServerConfig } from "./Config.ts"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** How long after the outage began an operation may still wait for the store. */
  readonly window: Duration.Duration
  /** How many operations may wait at once; the rest fail at once. */
  readonly maxWaiting: number
}

const retryable = (error: KvStoreError): boolean =>
  error._tag === "KvBackendError" && (error.reason === "Unavailable" || error.reason === "Timeout")

/** First retry soon (a dropped connection often comes back at once), then at most every quarter second. */
const FIRST_RETRY_MS = 25
const MAX_RETRY_MS = 250

/**
 * The store seen through the outage window.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (store: BaseKvStore, options: Options): BaseKvStore => {
  const windowMs = Duration.toMillis(options.window)
  let outageSince: number | null = null
  let waiting = 0

  const recovered = Effect.sync(() => {
    outageSince = null
  })

  /** Tries `retry` until it succeeds, fails for good, or the outage outlives the window. */
  const waitOut = <A>(first: KvStoreError, retry: Effect.Effect<A, KvStoreError>): Effect.Effect<A, KvStoreError> =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      outageSince ??= now
      const deadline = outageSince + windowMs
      if (now >= deadline || waiting >= options.maxWaiting) return yield* Effect.fail(first)
      waiting++
      const left = Effect.map(Clock.currentTimeMillis, (now) => deadline - now)
      let last = first
      // An attempt may not outlast the window: a store that does not answer (paused, overloaded) fails in time.
      const attempt = Effect.flatMap(left, (left) =>
        left <= 0 ? Effect.fail(last) : Effect.timeoutOrElse(retry, {
          duration: left,
          orElse: () => Effect.fail(last)
        })).pipe(Effect.tapError((error) => Effect.sync(() => last = error)))
      // Doubling pauses up to a quarter second, none past the end of the window.
      const pauses = Schedule.exponential(FIRST_RETRY_MS * 2).pipe(
        Schedule.modifyDelay(({ duration }) =>
          Effect.map(left, (left) => Math.max(0, Math.min(Duration.toMillis(duration), MAX_RETRY_MS, left)))
        )
      )
      return yield* Effect.sleep(FIRST_RETRY_MS).pipe(
        Effect.andThen(Effect.retry(attempt, {
          schedule: pauses,
          while: (error) => Effect.map(left, (left) => retryable(error) && left > 0)
        })),
        Effect.tap(() => recovered),
        Effect.ensuring(Effect.sync(() => waiting--))
      )
    })

  const ride = <A>(
    attempt: Effect.Effect<A, KvStoreError>,
    retry: Effect.Effect<A, KvStoreError> = attempt
  ): Effect.Effect<A, KvStoreError> =>
    attempt.pipe(
      Effect.tap(() => outageSince === null ? Effect.void : recovered),
      Effect.catchIf(retryable, (error) => waitOut(error, retry))
    )

  /** A retried write that reports "not written" was written by the first try if the key now holds its value. */
  const orHolds = (key: string, value: string | null) => (written: boolean) =>
    written ? Effect.succeed(true) : Effect.map(store.get(key), (current) => current === value)

  return {
    ...store,
    get: (key) => ride(store.get(key)),
    has: (key) => ride(store.has(key)),
    getMany: (keys) => ride(store.getMany(keys)),
    ttl: (key) => ride(store.ttl(key)),
    count: (prefix) => ride(store.count(prefix)),
    list: (prefix) => ride(store.list(prefix)),
    listPage: (prefix, page) => ride(store.listPage(prefix, page)),
    set: (key, value, write) => ride(store.set(key, value, write)),
    setMany: (entries, write) => ride(store.setMany(entries, write)),
    delete: (key) => ride(store.delete(key)),
    deleteMany: (keys) => ride(store.deleteMany(keys)),
    setIfAbsent: (key, value, write) => {
      const attempt = store.setIfAbsent(key, value, write)
      return ride(attempt, Effect.flatMap(attempt, orHolds(key, value)))
    },
    compareAndSet: (key, expected, next, write) => {
      const attempt = store.compareAndSet(key, expected, next, write)
      return ride(attempt, Effect.flatMap(attempt, orHolds(key, next)))
    }
  }
}

/**
 * The store of the surrounding layer, seen through the window of `UploadServerConfig` (`storeWait`,
 * `storeMaxWaiting`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<BaseKvStoreService, never, BaseKvStoreService | UploadServerConfig> = Layer.effect(
  BaseKvStoreService,
  Effect.gen(function*() {
    const config = yield* UploadServerConfig
    return make(yield* BaseKvStoreService, { window: config.storeWait, maxWaiting: config.storeMaxWaiting })
  })
)
