/**
 * Effect's `RateLimiter` on the effect-kv `RateLimiterStore`: limits hold across two limiters on one store, windows
 * and buckets refill with the `Clock`, and the state expires with the key.
 */
import { describe, expect, it } from "@effect/vitest"
import { makeMemoryBaseKvStore, makeRateLimiterStore } from "effect-kv"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as RateLimiter from "effect/persistence/RateLimiter"
import * as TestClock from "effect/testing/TestClock"

/** Two limiters, as two instances would build them, on one store. */
const twoLimiters = Effect.gen(function*() {
  const store = makeMemoryBaseKvStore()
  const limiter = () =>
    Effect.provide(RateLimiter.make, Layer.succeed(RateLimiter.RateLimiterStore, makeRateLimiterStore(store)))
  return { store, a: yield* limiter(), b: yield* limiter() }
})

const exceeded = (effect: Effect.Effect<unknown, RateLimiter.RateLimiterError>) =>
  Effect.map(Effect.flip(effect), (error) => error.reason)

describe("KvRateLimiterStore", () => {
  it.effect("a fixed window is shared by two limiters on one store and reopens after the window", () =>
    Effect.gen(function*() {
      const { a, b, store } = yield* twoLimiters
      const consume = (limiter: RateLimiter.RateLimiter) =>
        limiter.consume({ key: "alice", limit: 3, window: "1 minute" })
      yield* consume(a)
      yield* consume(b)
      const third = yield* consume(a)
      expect(third.remaining).toBe(0)
      const reason = yield* exceeded(consume(b))
      expect(reason._tag).toBe("RateLimitExceeded")
      if (reason._tag === "RateLimitExceeded") {
        expect(reason.limit).toBe(3)
        expect(Duration.toMillis(reason.retryAfter)).toBeGreaterThan(0)
        expect(Duration.toMillis(reason.retryAfter)).toBeLessThanOrEqual(60_000)
      }
      // Another key has its own window.
      yield* b.consume({ key: "bob", limit: 3, window: "1 minute" })
      yield* TestClock.adjust("61 seconds")
      yield* consume(b)
      expect(yield* store.has("ratelimit:fw:alice")).toBe(true)
      yield* TestClock.adjust("2 minutes")
      // Idle state expires with its key.
      expect(yield* store.has("ratelimit:fw:alice")).toBe(false)
    }))

  it.effect("a token bucket refills one token per window/limit", () =>
    Effect.gen(function*() {
      const { a, b } = yield* twoLimiters
      const take = (limiter: RateLimiter.RateLimiter) =>
        limiter.consume({ algorithm: "token-bucket", key: "k", limit: 2, window: "10 seconds" })
      yield* take(a)
      yield* take(b)
      expect((yield* exceeded(take(a)))._tag).toBe("RateLimitExceeded")
      yield* TestClock.adjust("5 seconds")
      yield* take(b)
      expect((yield* exceeded(take(a)))._tag).toBe("RateLimitExceeded")
    }))

  it.effect("the adaptive operations say they are not supported instead of never adapting", () =>
    Effect.gen(function*() {
      const { a } = yield* twoLimiters
      const error = yield* Effect.flip(
        a.adaptiveConsume({ key: "k", tokens: 1, fallbackLimit: 1, fallbackWindow: Duration.seconds(1) })
      )
      expect(error.reason._tag).toBe("RateLimitStoreError")
      expect(error.reason.message).toContain("not supported")
    }))
})
