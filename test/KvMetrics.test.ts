import { assert, describe, it } from "@effect/vitest"
import {
  type BaseKvStore,
  casConflicts,
  health,
  KvBackendError,
  make,
  makeMemoryPrimitives,
  modifyRetryCount,
  operationDuration,
  operations,
  withMetrics
} from "effect-kv"
import { layerRedis } from "effect-kv/redis"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import { buildStore, canKillServers, uniqueNamespace, useRedisServer } from "./support/fixtures.ts"
import { startRedisServer } from "./support/RedisServer.ts"

const count = (system: string, operation: string, outcome: string) =>
  Effect.map(
    Metric.value(
      Metric.withAttributes(operations, { "db.system.name": system, "db.operation.name": operation, outcome })
    ),
    (state) => state.count
  )

const durations = (system: string, operation: string, errorType?: string) =>
  Metric.value(
    Metric.withAttributes(operationDuration, {
      "db.system.name": system,
      "db.operation.name": operation,
      ...(errorType === undefined ? {} : { "error.type": errorType })
    })
  )

/** The change of `metric` while `effect` runs. */
const delta = <E>(read: Effect.Effect<number>, effect: Effect.Effect<unknown, E>) =>
  Effect.gen(function*() {
    const before = yield* read
    yield* effect
    return (yield* read) - before
  })

const redis = useRedisServer()

describe("metrics", () => {
  it.live("withMetrics: duration in seconds and counts by operation and outcome, error.type on failure", () =>
    Effect.gen(function*() {
      const store = withMetrics(make(makeMemoryPrimitives()))
      const gets = yield* delta(count("memory", "get", "success"), Effect.repeat(store.get("k"), { times: 4 }))
      assert.strictEqual(gets, 5)
      const refused = yield* delta(count("memory", "get", "failure"), Effect.flip(store.get("")))
      assert.strictEqual(refused, 1)
      const failed = yield* durations("memory", "get", "KvInputError")
      assert.isAtLeast(failed.count, 1, "the failure's duration is tagged with its error.type")
      const ok = yield* durations("memory", "get")
      assert.isAtLeast(ok.count, 5)
      assert.isAbove(ok.sum, 0)
      assert.isBelow(ok.max, 1, "seconds, not milliseconds or nanoseconds")
    }))

  it.live("compareAndSet conflicts and modify retries are counted", () =>
    Effect.gen(function*() {
      const memory = makeMemoryPrimitives()
      // Two processes over one async backend whose modify is derived from get and compareAndSet: within a process
      // modifies of one key queue, across processes they race.
      const process = () =>
        withMetrics(make({
          ...memory,
          modify: undefined,
          get: (key) => Effect.tap(memory.get(key), () => Effect.yieldNow)
        }))
      const store = process()
      const other = process()
      const conflicts = yield* delta(
        Effect.map(Metric.value(Metric.withAttributes(casConflicts, { "db.system.name": "memory" })), (s) => s.count),
        store.compareAndSet("k", "not this", "v")
      )
      assert.strictEqual(conflicts, 1)
      const retries = yield* delta(
        Effect.map(Metric.value(modifyRetryCount), (s) => s.count),
        Effect.forEach(
          Array.from({ length: 20 }, (_, i) => i % 2 === 0 ? store : other),
          (writer) => writer.modify("n", (v) => String(Number(v ?? 0) + 1)),
          { concurrency: "unbounded" }
        )
      )
      assert.strictEqual(yield* store.get("n"), "20")
      assert.isAbove(retries, 0, "20 concurrent modifies of one key from two processes lost some races")
    }))

  it.live("health: one round trip that succeeds while the backend answers and fails when it does not", () =>
    Effect.scoped(Effect.gen(function*() {
      assert.isUndefined(yield* health(make(makeMemoryPrimitives())))
      const shared: BaseKvStore = yield* buildStore(layerRedis({ url: redis().url, keyPrefix: uniqueNamespace() }))
      yield* health(shared)
      if (!canKillServers) return
      const server = yield* startRedisServer()
      const store = yield* buildStore(layerRedis({ url: server.url, timeout: "1 second" }))
      yield* health(store)
      yield* server.kill
      const error = yield* Effect.flip(health(store))
      assert.instanceOf(error, KvBackendError)
    })))
})
