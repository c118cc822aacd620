/**
 * The conformance suite: the executable form of the `BaseKvStore` contract.
 *
 * Every backend's test file calls `conformance(name, layer)` unchanged, effect-kv's own and third parties' alike. A
 * backend is done when the whole suite passes. The suite is also available as data (`checks`), so it can be run
 * outside vitest, and so that the suite itself is tested against deliberately broken backends.
 *
 * Each check runs on a fresh build of the layer and expects the store it gets to be empty. A backend over shared
 * storage (a Redis server) should give each build its own namespace, e.g. a `keyPrefix` made unique per build with
 * `Layer.suspend`.
 *
 * Requires `vitest`, `@effect/vitest` and `fast-check` (dev dependencies of the test project).
 *
 * @since 0.1.0
 */
import { describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { BaseKvStoreService } from "./BaseKvStore.ts"
import { atomicChecks } from "./internal/testing/atomic.ts"
import { basicChecks } from "./internal/testing/basics.ts"
import { batchChecks } from "./internal/testing/batch.ts"
import type { Check, ConformanceOptions } from "./internal/testing/check.ts"
import { expiryChecks } from "./internal/testing/expiry.ts"
import { listingChecks } from "./internal/testing/listing.ts"
import { modelBased } from "./internal/testing/model.ts"
import { watchChecks } from "./internal/testing/watch.ts"

/**
 * One rule of the contract, as an effect that fails (or dies on a failed assertion) when the store breaks it.
 *
 * @since 0.1.0
 * @category models
 */
export type { Check } from "./internal/testing/check.ts"

/**
 * Options for the suite.
 *
 * @since 0.1.0
 * @category models
 */
export type { ConformanceOptions } from "./internal/testing/check.ts"

/**
 * The rules of the contract, each a `Check`.
 *
 * @since 0.1.0
 * @category checks
 */
export const checks = (options: ConformanceOptions = {}): ReadonlyArray<Check> => [
  ...basicChecks,
  ...expiryChecks(options),
  ...atomicChecks,
  ...batchChecks,
  ...listingChecks,
  ...(options.watch === false ? [] : watchChecks(options.clock ?? "live", options.watchOrder)),
  modelBased(options)
]

/**
 * Registers the conformance suite for a backend: one vitest test per check, each on a fresh build of `layer`. The
 * checks of one call run one after another; several calls inside `describe.concurrent` run side by side, which pays
 * when each build of their layers has a namespace of its own (most checks wait on expiry and round trips).
 *
 * ```ts
 * import { conformance } from "effect-kv/testing"
 * import { memoryKvStore } from "effect-kv"
 *
 * conformance("memory", memoryKvStore)
 * ```
 *
 * @since 0.1.0
 * @category suites
 */
export const conformance = <E>(
  name: string,
  layer: Layer.Layer<BaseKvStoreService, E>,
  options: ConformanceOptions = {}
): void => {
  describe(name, () => {
    for (const check of checks(options)) {
      // Live clock: backends time out on real time. `fresh` so a memoized build is never shared between checks.
      // One check after another, even inside `describe.concurrent`: checks may share the store's namespace.
      it.live(check.name, () => check.run.pipe(Effect.provide(Layer.fresh(layer))), {
        concurrent: false,
        ...(check.timeout === undefined ? {} : { timeout: check.timeout })
      })
    }
  })
}

/**
 * @since 0.1.0
 */
export {
  type Adapters,
  type EffectAdapterCheck,
  effectAdapterChecks,
  effectAdapters,
  type EffectAdaptersOptions
} from "./internal/testing/effectAdapters.ts"
