/**
 * What the conformance suite is made of: a `Check` is one rule of the contract as an effect, and
 * `ConformanceOptions` say how a backend runs them. Re-exported by `effect-kv/testing`.
 *
 * @since 0.1.0
 */
import type * as Effect from "effect/Effect"
import type { BaseKvStoreService } from "../../BaseKvStore.ts"

/**
 * One rule of the contract, as an effect that fails (or dies on a failed assertion) when the store breaks it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Check {
  /** Stable identifier, e.g. `"list-prefix"`. */
  readonly id: string
  readonly name: string
  readonly run: Effect.Effect<void, unknown, BaseKvStoreService>
  /** Milliseconds; checks that do many operations need more than vitest's default. */
  readonly timeout?: number
}

/**
 * Options for the suite.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConformanceOptions {
  /**
   * Sequences the model-based property test runs. Default 1000, the least the contract asks for (or
   * `EFFECT_KV_CONFORMANCE_RUNS` when set).
   */
  readonly numRuns?: number
  /** fast-check seed, to replay a failure the suite reported. */
  readonly seed?: number
  /**
   * Whose time expiry follows. `"test"`: the backend reads Effect's `Clock` (as the memory store does), so expiry
   * checks run on a `TestClock` and advance it, fast and exact. `"live"` (default): the backend keeps real time (Redis
   * does), so the checks use short real ttls and wait for the backend to expire them.
   */
  readonly clock?: "test" | "live" | undefined
  /**
   * Whether the `watch` checks run. Default `true`: a backend keeps the whole contract. `false` only for a backend
   * that does not deliver changes yet, so that the rest of the suite still guards it; its `watch` is not done.
   */
  readonly watch?: boolean | undefined
  /**
   * The order the `watch` checks expect one writer's events in. `"writer"` (default): the writer's order, across keys.
   * `"key"`: the writer's order key by key, for a backend whose keys live on servers that each deliver their own
   * changes (a Redis Cluster with keys on several masters: each master notifies on a connection of its own). The
   * checks then compare events key by key, and after a marker wait for the stream to be quiet for a moment.
   */
  readonly watchOrder?: "writer" | "key" | undefined
}
