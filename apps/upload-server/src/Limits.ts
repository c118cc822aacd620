/**
 * Limits on what an owner may do, as an `onCreate` hook: upload creations per owner per window, counted by Effect's
 * `RateLimiter`. On effect-kv's `layerRateLimiter` the count lives in the upload store, so every instance on the same
 * store shares it. Over the limit the creation is answered 429 with `Retry-After` (whole seconds until a creation is
 * allowed again); the limiter's store being down is 503, never a silent pass.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as RateLimiter from "effect/persistence/RateLimiter"
import { createHash } from "node:crypto"
import { Hooks, make as makeHooks, type NewUpload, type UploadHooks, UploadRejected } from "./Hooks.ts"

/**
 * @since 0.1.0
 * @category models
 */
export interface CreateLimit {
  readonly limit: number
  readonly window: Duration.Duration
}

/** Owners are whatever the authorization says (a JWT `sub` can be any string): the key holds a digest instead. */
const ownerKey = (owner: string) => `upload-creates:${createHash("sha256").update(owner).digest("hex")}`

/**
 * An `onCreate` that counts creations per owner.
 *
 * @since 0.1.0
 * @category constructors
 */
export const limitCreates = (limiter: RateLimiter.RateLimiter, options: CreateLimit) => (upload: NewUpload) =>
  limiter.consume({ key: ownerKey(upload.owner), limit: options.limit, window: options.window }).pipe(
    Effect.asVoid,
    Effect.mapError((error) =>
      error.reason._tag === "RateLimitExceeded"
        ? new UploadRejected({
          status: 429,
          reason: `at most ${options.limit} uploads per ${Duration.format(options.window)}; retry later`,
          headers: { "Retry-After": String(Math.max(1, Math.ceil(Duration.toSeconds(error.reason.retryAfter)))) }
        })
        : new UploadRejected({
          status: 503,
          reason: "the rate limit store is unavailable; retry",
          headers: { "Retry-After": "1" }
        })
    )
  )

/**
 * `Hooks` whose `onCreate` runs `limitCreates` before the given hooks' own `onCreate`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerHooks = (
  options: CreateLimit,
  hooks: Partial<UploadHooks> = {}
): Layer.Layer<Hooks, never, RateLimiter.RateLimiter> =>
  Layer.effect(
    Hooks,
    Effect.gen(function*() {
      const limit = limitCreates(yield* RateLimiter.RateLimiter, options)
      const inner = makeHooks(hooks)
      return Hooks.of({ ...inner, onCreate: (upload) => Effect.andThen(limit(upload), inner.onCreate(upload)) })
    })
  )
