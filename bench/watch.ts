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
 *
 * `--backend mechanism` (with `--redis`) instead measures what the Redis watch is built on, on the server alone, with
 * a raw ioredis client: `--sets` `SET`s, 64 in flight so that the server's work rather than the round trip is timed,
 * (a) with keyspace notifications on and one subscriber of the keyspace pattern, which is what `watch` uses, against
 * (b) with notifications off and a script that sets and `PUBLISH`es the event, which publishing on write would need,
 * and (c) a plain `SET` with notifications off, for reference; in rotating rounds. The subscribers are `redis-cli`
 * processes, so that this process times the writes alone.
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
import { Redis } from "ioredis"
import { type ChildProcess, spawn } from "node:child_process"
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

/** Nanoseconds per set, per round, of the three ways to learn of a write on Redis (see the module's description). */
export interface MechanismResult {
  readonly notifications: ReadonlyArray<number>
  readonly publishing: ReadonlyArray<number>
  readonly plain: ReadonlyArray<number>
}

const IN_FLIGHT = 64

/** A subscriber in a process of its own (`redis-cli`), as a watcher on another machine would be; its output is dropped. */
const subscriberProcess = (url: string, ...command: ReadonlyArray<string>): ChildProcess =>
  spawn("redis-cli", ["-u", url, ...command], { stdio: ["ignore", "ignore", "inherit"] })

const mechanism = async (url: string, sets: number, rounds: number): Promise<MechanismResult> => {
  const redis = new Redis(url)
  const subscribers = [
    subscriberProcess(url, "PSUBSCRIBE", "__keyspace@0__:mech:*"),
    subscriberProcess(url, "SUBSCRIBE", "mech-events")
  ]
  try {
    const subscribed = async () =>
      Number(await redis.pubsub("NUMPAT")) === 1 &&
      Number(((await redis.pubsub("NUMSUB", "mech-events")) as Array<unknown>)[1]) === 1
    for (let waited = 0; !(await subscribed()); waited += 10) {
      check(waited < 10_000, "the subscribers are there")
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    const script = "redis.call('SET', KEYS[1], ARGV[1]) redis.call('PUBLISH', 'mech-events', KEYS[1]) return 1"
    const sha = String(await redis.script("LOAD", script))
    const timed = async (notify: string, set: (key: string, value: string) => Promise<unknown>) => {
      await redis.config("SET", "notify-keyspace-events", notify)
      const start = now()
      for (let i = 0; i < sets; i += IN_FLIGHT) {
        const batch: Array<Promise<unknown>> = []
        for (let j = i; j < Math.min(sets, i + IN_FLIGHT); j++) batch.push(set(`mech:k${j % 1000}`, String(j)))
        await Promise.all(batch)
      }
      return ((now() - start) * 1e6) / sets
    }
    const ways = {
      notifications: () => timed("Kg$xe", (key, value) => redis.set(key, value)),
      publishing: () => timed("", (key, value) => redis.evalsha(sha, 1, key, value)),
      plain: () => timed("", (key, value) => redis.set(key, value))
    }
    const result = { notifications: [] as Array<number>, publishing: [] as Array<number>, plain: [] as Array<number> }
    // One untimed pass of each for the optimising compiler, then rounds whose order rotates.
    for (const way of Object.values(ways)) await way()
    const names = Object.keys(ways) as Array<keyof typeof ways>
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < names.length; k++) {
        const name = names[(round + k) % names.length]
        result[name].push(await ways[name]())
      }
    }
    check(await subscribed(), "the subscribers stayed subscribed throughout")
    await redis.config("SET", "notify-keyspace-events", "")
    return result
  } finally {
    for (const subscriber of subscribers) subscriber.kill()
    redis.disconnect()
  }
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
  if (backend === "mechanism") {
    const sets = quick ? 20_000 : 100_000
    log(`watch mechanism on Redis: ${sets} sets, ${quick ? 3 : 7} rounds`)
    emit(await mechanism(values.redis!, sets, quick ? 3 : 7))
    return
  }
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
