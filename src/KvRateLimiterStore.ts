/**
 * A `RateLimiterStore` for Effect's `RateLimiter` (`effect/persistence/RateLimiter`) on any `BaseKvStore`, so that
 * every instance sharing a store shares its limits: on memory, Redis (standalone or Cluster), PostgreSQL and SQLite
 * alike.
 *
 * Each limit is one key (`ratelimit:fw:<key>` for a fixed window, `ratelimit:tb:<key>` for a token bucket) holding a
 * small JSON state, updated with `compareAndSet` in a read-compute-swap loop: one key per operation, so it is atomic on
 * every backend and never crosses Redis Cluster slots (Effect's own Redis store runs a Lua script over keys it does
 * not hash-tag). The key expires with its state, so idle limits leave nothing behind. Time comes from `Clock`.
 *
 * The adaptive operations (`adaptiveConsume`, `adaptiveFeedback`) are not implemented: they fail with a
 * `RateLimitStoreError` that says so, rather than silently never adapting.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as RateLimiter from "effect/persistence/RateLimiter"
import { type BaseKvStore, BaseKvStoreService, type KvStoreError } from "./BaseKvStore.ts"

/** Swaps lost to other writers in a row before giving up: each loss means another request took tokens meanwhile. */
const MAX_ATTEMPTS = 32

const storeError = (message: string, cause?: unknown) =>
  new RateLimiter.RateLimiterError({ reason: new RateLimiter.RateLimitStoreError({ message, cause }) })

/**
 * Reads `key`, computes its next state from the current one and the time, and swaps it in if no one changed it
 * meanwhile; `step` is pure, so a lost swap simply runs it again on the fresh state.
 */
const update = <A>(
  store: BaseKvStore,
  key: string,
  step: (current: string | null, now: number) => {
    readonly next: string
    readonly ttlMillis: number
    readonly result: A
  } | { readonly next: null; readonly result: A }
): Effect.Effect<A, RateLimiter.RateLimiterError> => {
  const attempt = (n: number): Effect.Effect<A, RateLimiter.RateLimiterError | KvStoreError> =>
    Effect.gen(function*() {
      const current = yield* store.get(key)
      const now = yield* Clock.currentTimeMillis
      const outcome = step(current, now)
      // Nothing to write (over the limit): the answer stands on the state as read.
      if (outcome.next === null) return outcome.result
      const swapped = yield* store.compareAndSet(key, current, outcome.next, {
        ttl: Duration.millis(Math.max(1, Math.ceil(outcome.ttlMillis)))
      })
      if (swapped) return outcome.result
      if (n + 1 >= MAX_ATTEMPTS) {
        return yield* Effect.fail(
          storeError(`rate limit ${key}: lost ${MAX_ATTEMPTS} updates in a row to other writers`)
        )
      }
      return yield* attempt(n + 1)
    })
  return attempt(0).pipe(
    Effect.mapError((error) =>
      error instanceof RateLimiter.RateLimiterError ? error : storeError(`rate limit store: ${error.message}`, error)
    )
  )
}

interface FixedWindow {
  readonly count: number
  readonly expiresAt: number
}

interface TokenBucket {
  readonly tokens: number
  readonly lastRefill: number
}

const parse = <A>(value: string | null): A | null => value === null ? null : JSON.parse(value) as A

const unsupported = (operation: string) =>
  Effect.fail(storeError(`${operation}: adaptive rate limiting is not supported by the effect-kv RateLimiterStore`))

/**
 * A `RateLimiterStore` over `store`, with the same semantics as Effect's in-memory store.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeRateLimiterStore = (store: BaseKvStore): RateLimiter.RateLimiterStore["Service"] =>
  RateLimiter.RateLimiterStore.of({
    fixedWindow: (options) => {
      const refillMillis = Duration.toMillis(options.refillRate)
      return update(store, `ratelimit:fw:${options.key}`, (current, now) => {
        const state = parse<FixedWindow>(current)
        const counter = state === null || state.expiresAt <= now ? { count: 0, expiresAt: now } : state
        if (options.limit !== undefined && counter.count + options.tokens > options.limit) {
          return { next: null, result: [counter.count + options.tokens, counter.expiresAt - now] as const }
        }
        const next = {
          count: counter.count + options.tokens,
          expiresAt: counter.expiresAt + refillMillis * options.tokens
        }
        return {
          next: JSON.stringify(next),
          ttlMillis: next.expiresAt - now,
          result: [next.count, next.expiresAt - now] as const
        }
      })
    },
    tokenBucket: (options) => {
      const refillMillis = Duration.toMillis(options.refillRate)
      return update(store, `ratelimit:tb:${options.key}`, (current, now) => {
        let { lastRefill, tokens } = parse<TokenBucket>(current) ?? { tokens: options.limit, lastRefill: now }
        const refills = Math.floor((now - lastRefill) / refillMillis)
        if (refills > 0) {
          tokens = Math.min(options.limit, tokens + refills)
          lastRefill += refills * refillMillis
        }
        if (tokens >= options.limit) lastRefill = now
        const remaining = tokens - options.tokens
        const result = [remaining, Math.max(0, now - lastRefill)] as const
        if (!options.allowOverflow && remaining < 0) {
          return current === null
            ? { next: JSON.stringify({ tokens, lastRefill }), ttlMillis: refillMillis, result }
            : { next: null, result }
        }
        // The state may expire once the bucket would be full again: a missing bucket is a full one.
        const ttlMillis = (options.limit - remaining) * refillMillis + refillMillis
        return { next: JSON.stringify({ tokens: remaining, lastRefill }), ttlMillis, result }
      })
    },
    adaptiveConsume: () => unsupported("adaptiveConsume"),
    adaptiveFeedback: () => unsupported("adaptiveFeedback")
  })

/**
 * `RateLimiterStore` on the `BaseKvStoreService` in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRateLimiterStore: Layer.Layer<RateLimiter.RateLimiterStore, never, BaseKvStoreService> = Layer
  .effect(
    RateLimiter.RateLimiterStore,
    Effect.gen(function*() {
      return makeRateLimiterStore(yield* BaseKvStoreService)
    })
  )

/**
 * Effect's `RateLimiter` on the `BaseKvStoreService` in context: limits shared by every instance on the same store.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRateLimiter: Layer.Layer<RateLimiter.RateLimiter, never, BaseKvStoreService> = Layer.effect(
  RateLimiter.RateLimiter,
  RateLimiter.make
).pipe(Layer.provide(layerRateLimiterStore))
