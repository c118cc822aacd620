/**
 * Metrics of a store's operations, opt-in, named as OpenTelemetry's database conventions name them, and a `health`
 * check for readiness probes.
 *
 * `withMetrics(store)` (or `layerMetrics` on top of a backend's layer) records, for every operation:
 *
 * - `db.client.operation.duration`: a histogram in seconds, by `db.system.name`, `db.operation.name` and `error.type`
 *   (on failure);
 * - `effect_kv.operations`: a counter by `db.system.name`, `db.operation.name` and `outcome` (`success`, `failure`);
 * - `effect_kv.cas.conflicts`: `compareAndSet` calls that found another value than expected;
 * - `effect_kv.modify.conflicts`: `modify` calls that lost the race until their deadline (`Conflict`).
 *
 * `effect_kv.modify.retries` (attempts of the derived `modify` that lost the race for their key) is counted by every
 * store built by `make`, since it only costs on the lost race.
 *
 * Spans need no option: every store traces itself when a tracer is installed.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import { type BaseKvStore, BaseKvStoreService, type KvStoreError, type Operation, telemetryOf } from "./BaseKvStore.ts"
import { modifyRetries } from "./internal/metrics.ts"

/**
 * The operation-duration histogram, in seconds: buckets from 100 µs to about 13 s, as a store answers from memory in
 * microseconds and from a loaded server in milliseconds.
 *
 * @since 0.1.0
 * @category metrics
 */
export const operationDuration: Metric.Histogram<number> = Metric.histogram("db.client.operation.duration", {
  description: "Duration of effect-kv store operations, in seconds",
  boundaries: Metric.exponentialBoundaries({ start: 0.0001, factor: 2, count: 18 })
})

/**
 * Operations by outcome.
 *
 * @since 0.1.0
 * @category metrics
 */
export const operations: Metric.Counter<number> = Metric.counter("effect_kv.operations", {
  description: "effect-kv store operations, by operation and outcome",
  incremental: true
})

/**
 * `compareAndSet` calls that found another value than expected.
 *
 * @since 0.1.0
 * @category metrics
 */
export const casConflicts: Metric.Counter<number> = Metric.counter("effect_kv.cas.conflicts", {
  description: "compareAndSet calls that found another value than expected",
  incremental: true
})

/**
 * `modify` calls that gave up after losing the race for their key until their deadline.
 *
 * @since 0.1.0
 * @category metrics
 */
export const modifyConflicts: Metric.Counter<number> = Metric.counter("effect_kv.modify.conflicts", {
  description: "modify calls that lost the race for their key until their deadline",
  incremental: true
})

/**
 * Attempts of the derived `modify` that lost the race for their key (each is followed by another, or by the `Conflict`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const modifyRetryCount: Metric.Counter<number> = modifyRetries

/**
 * `store` with every operation measured (see the module's documentation).
 *
 * @since 0.1.0
 * @category combinators
 */
export const withMetrics = (store: BaseKvStore): BaseKvStore => {
  const system = telemetryOf(store)?.system ?? "other"
  // One set of tagged metrics per operation and outcome, built once: the hot path only looks them up.
  const tagged = new Map<string, {
    readonly duration: Metric.Histogram<number>
    readonly count: Metric.Counter<number>
  }>()
  const metricsOf = (operation: Operation, errorType: string | undefined) => {
    const id = `${operation}/${errorType ?? ""}`
    let found = tagged.get(id)
    if (found === undefined) {
      const attributes = { "db.system.name": system, "db.operation.name": operation }
      found = {
        duration: Metric.withAttributes(
          operationDuration,
          errorType === undefined ? attributes : { ...attributes, "error.type": errorType }
        ),
        count: Metric.withAttributes(operations, {
          ...attributes,
          outcome: errorType === undefined ? "success" : "failure"
        })
      }
      tagged.set(id, found)
    }
    return found
  }
  const conflicts = { cas: Metric.withAttributes(casConflicts, { "db.system.name": system }) }
  const modifyGaveUp = Metric.withAttributes(modifyConflicts, { "db.system.name": system })

  const measured = <A>(operation: Operation, effect: Effect.Effect<A, KvStoreError>) =>
    Effect.withFiber((fiber) => {
      const clock = fiber.getRef(Clock.Clock)
      const start = clock.currentTimeNanosUnsafe()
      return Effect.onExit(effect, (exit) => {
        const seconds = Number(clock.currentTimeNanosUnsafe() - start) / 1e9
        const error = Exit.isFailure(exit) ? Exit.findErrorOption(exit) : undefined
        const errorType = Exit.isSuccess(exit)
          ? undefined
          : error !== undefined && error._tag === "Some"
          ? error.value._tag === "KvBackendError" ? error.value.reason : error.value._tag
          : "_OTHER"
        const { count, duration } = metricsOf(operation, errorType)
        const updates = [Metric.update(duration, seconds), Metric.update(count, 1)]
        if (operation === "compareAndSet" && Exit.isSuccess(exit) && exit.value === false) {
          updates.push(Metric.update(conflicts.cas, 1))
        }
        if (operation === "modify" && errorType === "Conflict") updates.push(Metric.update(modifyGaveUp, 1))
        return Effect.all(updates, { discard: true })
      })
    })

  return {
    ...store,
    get: (key) => measured("get", store.get(key)),
    set: (key, value, options) => measured("set", store.set(key, value, options)),
    delete: (key) => measured("delete", store.delete(key)),
    list: (prefix) => measured("list", store.list(prefix)),
    has: (key) => measured("has", store.has(key)),
    getMany: (keys) => measured("getMany", store.getMany(keys)),
    setMany: (entries, options) => measured("setMany", store.setMany(entries, options)),
    deleteMany: (keys) => measured("deleteMany", store.deleteMany(keys)),
    count: (prefix) => measured("count", store.count(prefix)),
    clear: (prefix) => measured("clear", store.clear(prefix)),
    listPage: (prefix, options) => measured("listPage", store.listPage(prefix, options)),
    setIfAbsent: (key, value, options) => measured("setIfAbsent", store.setIfAbsent(key, value, options)),
    compareAndSet: (key, expected, next, options) =>
      measured("compareAndSet", store.compareAndSet(key, expected, next, options)),
    modify: (key, f, options) => measured("modify", store.modify(key, f, options)),
    ttl: (key) => measured("ttl", store.ttl(key))
  }
}

/**
 * Measures the `BaseKvStoreService` beneath it: `program.pipe(Effect.provide(layerMetrics), Effect.provide(backend))`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMetrics: Layer.Layer<BaseKvStoreService, never, BaseKvStoreService> = Layer.effect(
  BaseKvStoreService,
  BaseKvStoreService.useSync(withMetrics)
)

/** A key no program uses: the probe only asks whether it exists. */
const HEALTH_KEY = "effect-kv:health-probe"

/**
 * One cheap round trip to the backend (`EXISTS` on Redis, one indexed `SELECT` on SQL), for readiness probes:
 * succeeds when the backend answers, fails with its `KvBackendError` otherwise.
 *
 * @since 0.1.0
 * @category health
 */
export const health = (store: BaseKvStore): Effect.Effect<void, KvStoreError> => Effect.asVoid(store.has(HEALTH_KEY))
