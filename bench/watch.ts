/**
 * Child process: `watch` on one backend (`--backend memory | node-redis | ioredis | postgres`, `--redis <url>`,
 * `--pg <url>`).
 *
 * - latency: one write at a time, from the start of the `set` to the arrival of its event at a watcher that is
 *   already live; p50 and p99 over `--writes` writes.
 * - throughput: `--burst` keys written as concurrent `set`s (16 in flight), from the first write to the last event;
 *   events per second.
 * - write cost: the same sequential `set`s with no watcher and with one watcher consuming every event, in alternating
 *   rounds; the ratio of the two per round (its median and spread are what the orchestrator prints).
 */
import { type BaseKvStore, BaseKvStoreService, makeMemoryBaseKvStore, type WatchEvent } from "effect-kv"
import { layerRedis } from "effect-kv/redis"
import { layerPg } from "effect-kv/sql"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { parseArgs } from "node:util"
import { check, emit, log, main, now } from "./support/measure.ts"

export interface WatchResult {
  readonly backend: string
  /** Microseconds from the start of a write to its event. */
  readonly latencyP50Us: number
  readonly latencyP99Us: number
  readonly eventsPerSecond: number
  /** Nanoseconds per `set`, per round, without and with a watcher. */
  readonly plainNs: ReadonlyArray<number>
  readonly watchedNs: ReadonlyArray<number>
}

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]

/** A live watch of `prefix` that calls `onEvent` for every event. */
const liveWatch = (
  store: BaseKvStore,
  prefix: string,
  onEvent: (event: WatchEvent) => void,
  bufferSize?: number
) =>
  Effect.gen(function*() {
    let live = false
    const fiber = yield* Effect.forkScoped(
      Stream.runForEach(store.watch(prefix, { bufferSize }), (event) =>
        Effect.sync(() => {
          live = true
          onEvent(event)
        }))
    )
    // Live once the first write after it started is seen.
    while (!live) {
      yield* store.set(`${prefix}probe`, "")
      yield* Effect.sleep("5 millis")
    }
    return fiber
  })

const run = (store: BaseKvStore, writes: number, burst: number, rounds: number) =>
  Effect.gen(function*() {
    // latency
    let arrived: (() => void) | undefined
    yield* liveWatch(store, "lat:", (event) => {
      if (event._tag === "Set" && event.key.startsWith("k")) arrived?.()
    })
    const latencies: Array<number> = []
    for (let i = 0; i < writes; i++) {
      const start = now()
      yield* Effect.callback<void>((resume) => {
        arrived = () => resume(Effect.void)
        Effect.runFork(store.set(`lat:k${i % 100}`, String(i)))
      })
      latencies.push((now() - start) * 1000)
    }
    latencies.sort((a, b) => a - b)

    // throughput
    let seen = 0
    let done: (() => void) | undefined
    yield* liveWatch(store, "tp:", (event) => {
      if (event._tag === "Resync") throw new Error("Resync during the throughput run: raise the buffer")
      if (event._tag === "Set" && event.key.startsWith("k") && ++seen === burst) done?.()
    }, burst + 1024) // room for the whole burst: the memory store delivers faster than a consumer takes
    const burstStart = now()
    yield* Effect.callback<void>((resume) => {
      done = () => resume(Effect.void)
      Effect.runFork(
        Effect.forEach(Array.from({ length: burst }, (_, i) => i), (i) => store.set(`tp:k${i}`, String(i)), {
          concurrency: 16,
          discard: true
        })
      )
    })
    const eventsPerSecond = burst / ((now() - burstStart) / 1000)

    // write cost
    const plainNs: Array<number> = []
    const watchedNs: Array<number> = []
    const timeSets = (prefix: string) =>
      Effect.gen(function*() {
        const start = now()
        for (let i = 0; i < writes; i++) yield* store.set(`${prefix}k${i % 1000}`, String(i))
        return ((now() - start) * 1e6) / writes
      })
    // One untimed pass of each, so that neither side of the first round pays for the optimising compiler.
    yield* timeSets("plain:")
    yield* timeSets("cost:")
    for (let round = 0; round < rounds; round++) {
      plainNs.push(yield* timeSets("plain:"))
      const scope = yield* Scope.make()
      let events = 0
      yield* Scope.provide(liveWatch(store, "cost:", () => events++), scope)
      watchedNs.push(yield* timeSets("cost:"))
      yield* Scope.close(scope, Exit.void)
      check(events > 0, "the watcher saw the writes it was timed with")
    }
    return {
      latencyP50Us: percentile(latencies, 0.5),
      latencyP99Us: percentile(latencies, 0.99),
      eventsPerSecond,
      plainNs,
      watchedNs
    }
  }).pipe(Effect.scoped)

main(async () => {
  const { values } = parseArgs({
    options: {
      backend: { type: "string" },
      redis: { type: "string" },
      pg: { type: "string" },
      quick: { type: "boolean", default: false }
    }
  })
  const backend = values.backend ?? "memory"
  const quick = values.quick === true
  const writes = quick ? 500 : 5000
  const burst = quick ? 2000 : 20_000
  const rounds = quick ? 3 : 5
  const layer = backend === "memory"
    ? Layer.sync(BaseKvStoreService)(() => makeMemoryBaseKvStore())
    : backend === "postgres"
    ? layerPg({ url: values.pg!, table: `bench_watch_${process.pid}` })
    : layerRedis({
      url: values.redis!,
      client: backend === "ioredis" ? "ioredis" : "node-redis",
      keyPrefix: `bench-watch-${process.pid}:`
    })
  log(`watch, ${backend}: ${writes} writes, burst of ${burst}, ${rounds} rounds`)
  const result = await Effect.runPromise(
    Effect.scoped(
      Effect.flatMap(
        Layer.build(layer),
        (context) => run(Context.get(context, BaseKvStoreService), writes, burst, rounds)
      )
    )
  )
  emit({ backend, ...result } satisfies WatchResult)
})
