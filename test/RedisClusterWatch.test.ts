/**
 * watch on a Redis Cluster, beyond the conformance suite (RedisIndexConformance.test.ts runs its watch checks on a
 * cluster): keys on every master written by another instance on the other client library, a dropped subscriber, the
 * subscriber connections released on every master, and a failover, after which the promoted master's writes are seen.
 */
import { assert, describe, it } from "@effect/vitest"
import type { BaseKvStore, WatchEvent } from "effect-kv"
import { layerRedis } from "effect-kv/redis"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import {
  buildStore,
  canKillServers,
  eventually,
  holds,
  rootNodes,
  uniqueNamespace,
  useRedisCluster
} from "./support/fixtures.ts"
import { type RedisCluster, redisCommand, startFailoverCluster } from "./support/RedisServer.ts"

const cluster = useRedisCluster()

const clients = ["node-redis", "ioredis"] as const
const other = (client: typeof clients[number]) => client === "node-redis" ? "ioredis" : "node-redis"

const storeOn = (on: RedisCluster, client: typeof clients[number], keyPrefix: string) =>
  buildStore(layerRedis({ cluster: { rootNodes: rootNodes(on) }, client, keyPrefix, timeout: "1 second" }))

/** Runs a watch in the background, recording its events. */
const recording = (stream: Stream.Stream<WatchEvent, unknown>) =>
  Effect.gen(function*() {
    const events: Array<WatchEvent> = []
    const fiber = yield* Effect.forkChild(Stream.runForEach(stream, (event) => Effect.sync(() => events.push(event))))
    return { events, fiber }
  })

const sawSet = (events: ReadonlyArray<WatchEvent>, key: string, value: string, after = -1) =>
  holds(
    Effect.sync(() =>
      events.some((event, i) => i > after && event._tag === "Set" && event.key === key && event.value === value)
    )
  )

/** Writes a probe until the watch sees it: it is live from then on. */
const untilLive = (store: BaseKvStore, events: ReadonlyArray<WatchEvent>) =>
  eventually("the watch goes live", 15_000, Effect.andThen(store.set("probe", "1"), sawSet(events, "probe", "1")))

/** The keys of `namespace` a node holds (its own slots only). */
const keysOn = (port: number, namespace: string) =>
  Effect.map(
    // The harness reads no array replies: the script joins them.
    redisCommand(port, "EVAL", "return table.concat(redis.call('KEYS', ARGV[1]), '\\n')", "0", `${namespace}*`),
    (reply) =>
      (reply ?? "").split("\n").filter((key) => key.startsWith(namespace)).map((key) => key.slice(namespace.length))
  )

/** The pattern subscriptions and subscriber connections left on every master. */
const subscriptionsLeft = (on: RedisCluster) =>
  Effect.map(
    Effect.forEach(on.nodes, (node) =>
      Effect.all([
        Effect.map(redisCommand(node.port, "PUBSUB", "NUMPAT"), Number),
        Effect.map(redisCommand(node.port, "CLIENT", "LIST", "TYPE", "pubsub"), (list) => (list ?? "").trim())
      ])),
    (perNode) => perNode.filter(([numpat, list]) => numpat !== 0 || list !== "").length
  )

describe("redis cluster watch", () => {
  for (const client of clients) {
    it.live(
      `sees another instance's writes on every master, and releases every subscriber (${client})`,
      () =>
        Effect.gen(function*() {
          const keyPrefix = uniqueNamespace()
          const watcher = yield* storeOn(cluster(), client, keyPrefix)
          const writer = yield* storeOn(cluster(), other(client), keyPrefix)
          const { events, fiber } = yield* recording(watcher.watch(""))
          yield* untilLive(writer, events)
          const keys = Array.from({ length: 30 }, (_, i) => `job:${i}`)
          for (const key of keys) yield* writer.set(key, `queued ${key}`)
          const held = yield* Effect.forEach(cluster().nodes, (node) => keysOn(node.port, keyPrefix))
          assert.isTrue(
            held.every((onNode) => onNode.length > 0),
            `the keys are on every master: ${JSON.stringify(held)}`
          )
          // Every Set first: a key deleted before the watch reads its value would rightly have its Set left out.
          yield* eventually(
            "every key's Set arrives",
            15_000,
            Effect.forEach(keys, (key) => sawSet(events, key, `queued ${key}`), { discard: true })
          )
          yield* writer.deleteMany(keys)
          yield* eventually(
            "every key's Delete arrives",
            15_000,
            holds(Effect.sync(() => keys.every((key) => events.some((e) => e._tag === "Delete" && e.key === key))))
          )
          for (const key of keys) {
            const own = events.filter((event) => event._tag !== "Resync" && event.key === key)
            assert.deepStrictEqual(own, [{ _tag: "Set", key, value: `queued ${key}` }, { _tag: "Delete", key }], key)
          }
          assert.isFalse(events.some((event) => event._tag === "Resync"), JSON.stringify(events))
          yield* Fiber.interrupt(fiber)
          yield* eventually(
            "no subscription left on any master",
            10_000,
            holds(Effect.map(subscriptionsLeft(cluster()), (nodes) => nodes === 0))
          )
        }).pipe(Effect.scoped),
      60_000
    )

    it.live(
      `a dropped subscriber connection yields Resync, then the stream goes on (${client})`,
      () =>
        Effect.gen(function*() {
          const store = yield* storeOn(cluster(), client, uniqueNamespace())
          const { events } = yield* recording(store.watch(""))
          yield* untilLive(store, events)
          const killed = yield* Effect.forEach(
            cluster().nodes,
            (node) => Effect.map(redisCommand(node.port, "CLIENT", "KILL", "TYPE", "pubsub"), Number)
          )
          assert.strictEqual(killed.reduce((a, b) => a + b, 0), 3, "one subscriber per master")
          yield* eventually(
            "a Resync, then writes on every master arrive",
            15_000,
            Effect.gen(function*() {
              const resync = events.findIndex((event) => event._tag === "Resync")
              if (resync < 0) return yield* Effect.fail("no Resync yet")
              const keys = Array.from({ length: 12 }, (_, i) => `after:${i}`)
              yield* Effect.forEach(keys, (key) => store.set(key, "2"), { discard: true })
              yield* Effect.forEach(keys, (key) => sawSet(events, key, "2", resync), { discard: true })
            })
          )
        }).pipe(Effect.scoped),
      60_000
    )
  }
})

describe.skipIf(!canKillServers)("redis cluster watch: failover", () => {
  it.live(
    "a killed master's replica takes over: the watch says Resync, and sees the writes to the promoted master",
    () =>
      Effect.gen(function*() {
        const failing = yield* startFailoverCluster
        const [victim] = failing.servers
        const keyPrefix = uniqueNamespace()
        const writer = yield* storeOn(failing, "ioredis", keyPrefix)
        const keys = Array.from({ length: 30 }, (_, i) => `k${i}`)
        yield* Effect.forEach(keys, (key) => writer.set(key, "before"), { discard: true })
        const [onVictim] = yield* keysOn(victim.port, keyPrefix)
        assert.isDefined(onVictim, "a key on the master that will be killed")
        const watches = yield* Effect.forEach(clients, (client) =>
          Effect.gen(function*() {
            const store = yield* storeOn(failing, client, keyPrefix)
            const { events } = yield* recording(store.watch(""))
            yield* untilLive(store, events)
            return { client, store, events }
          }))
        yield* victim.kill
        yield* Effect.forEach(watches, ({ client, events, store }) =>
          eventually(
            `${client}: a Resync, then the promoted master's writes arrive`,
            60_000,
            Effect.gen(function*() {
              const resync = events.findIndex((event) => event._tag === "Resync")
              if (resync < 0) return yield* Effect.fail("no Resync yet")
              yield* store.set(onVictim, `after ${client}`)
              yield* sawSet(events, onVictim, `after ${client}`, resync)
            })
          ), { concurrency: "unbounded", discard: true })
      }).pipe(Effect.scoped),
    120_000
  )
})
