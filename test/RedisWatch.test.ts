/**
 * watch on Redis, beyond the conformance suite (RedisStandalone.test.ts runs it, watch checks included): writes from other instances and client libraries, the server's
 * notify-keyspace-events setting, a dropped subscriber connection, and cleanup.
 */
import { assert, describe, it } from "@effect/vitest"
import { KvBackendError, type WatchEvent } from "effect-kv"
import { layerRedis } from "effect-kv/redis"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import { Redis } from "ioredis"
import { buildStore, eventually, holds, uniqueNamespace, useRedisServer } from "./support/fixtures.ts"
import { redisCommand, startRedisServer } from "./support/RedisServer.ts"

const server = useRedisServer()

const collect = (stream: Stream.Stream<WatchEvent, unknown>, stop: (event: WatchEvent) => boolean) =>
  Effect.forkChild(Stream.runCollect(Stream.takeUntil(stream, stop)))

/** Writes `key` until the watch's fiber has seen it: the watch is live from then on. */
const untilLive = (write: Effect.Effect<unknown, unknown>, fiber: Fiber.Fiber<unknown, unknown>) =>
  eventually(
    "the watch goes live",
    10_000,
    Effect.andThen(write, holds(Effect.sync(() => fiber.pollUnsafe() !== undefined)))
  )

/** Runs a watch in the background, recording its events. */
const recording = (stream: Stream.Stream<WatchEvent, unknown>) =>
  Effect.gen(function*() {
    const events: Array<WatchEvent> = []
    const fiber = yield* Effect.forkChild(Stream.runForEach(stream, (event) => Effect.sync(() => events.push(event))))
    return { events, fiber }
  })

const sawSet = (events: ReadonlyArray<WatchEvent>, key: string) =>
  holds(Effect.sync(() => events.some((event) => event._tag === "Set" && event.key === key)))

describe("redis watch", () => {
  it.live("sees writes from another effect-kv instance on another client library", () =>
    Effect.gen(function*() {
      const keyPrefix = uniqueNamespace()
      const watcher = yield* buildStore(layerRedis({ url: server().url, client: "node-redis", keyPrefix }))
      const writer = yield* buildStore(layerRedis({ url: server().url, client: "ioredis", keyPrefix }))
      const probe = yield* collect(watcher.watch("job:"), (event) => event._tag === "Set" && event.key === "probe")
      yield* untilLive(writer.set("job:probe", "1"), probe)
      const events = yield* collect(watcher.watch("job:"), (event) => event._tag === "Delete")
      // A second watch on the same store: live once it sees a write made after it started.
      const second = yield* collect(watcher.watch("job:"), (event) => event._tag === "Set" && event.key === "probe2")
      yield* untilLive(writer.set("job:probe2", "1"), second)
      yield* writer.set("job:1", "queued", { ttl: 60_000 })
      yield* writer.modify("job:1", () => "taken")
      yield* writer.delete("job:1")
      const seen = (yield* Fiber.join(events)).filter((event) => event._tag !== "Set" || !event.key.startsWith("probe"))
      assert.deepStrictEqual(seen.at(-1), { _tag: "Delete", key: "1" })
      // Values are read after the notification, so a Set may carry the later value, or be left out when the key
      // was deleted first; never an older one, and the last event is the delete.
      for (const event of seen.slice(0, -1)) {
        assert.oneOf(event._tag === "Set" ? event.value : event._tag, ["queued", "taken"])
      }
    }).pipe(Effect.scoped))

  it.live("turns keyspace notifications on with CONFIG SET, adding only the flags missing", () =>
    Effect.gen(function*() {
      const redis = yield* startRedisServer({ args: ["--notify-keyspace-events", "Elh"] })
      const store = yield* buildStore(layerRedis({ url: redis.url, keyPrefix: "n:" }))
      const fiber = yield* collect(store.watch(""), (event) => event._tag === "Set")
      yield* untilLive(store.set("k", "v"), fiber)
      const flags = yield* Effect.acquireUseRelease(
        Effect.sync(() => new Redis(redis.port, "127.0.0.1")),
        (client) =>
          Effect.promise(() => client.config("GET", "notify-keyspace-events") as Promise<Array<string>>).pipe(
            Effect.map((reply) => reply[1])
          ),
        (client) => Effect.sync(() => client.disconnect())
      )
      for (const flag of ["K", "E", "g", "$", "x", "e", "l", "h"]) assert.include(flags, flag, `flags ${flags}`)
    }).pipe(Effect.scoped))

  it.live("fails with KvBackendError naming notify-keyspace-events when CONFIG is refused", () =>
    Effect.gen(function*() {
      const redis = yield* startRedisServer({ args: ["--rename-command", "CONFIG", ""] })
      const store = yield* buildStore(layerRedis({ url: redis.url }))
      const error = yield* Effect.flip(Stream.runDrain(store.watch("")))
      assert.instanceOf(error, KvBackendError)
      assert.strictEqual((error as KvBackendError).operation, "watch")
      assert.include((error as KvBackendError).message, "notify-keyspace-events")
      yield* store.set("still", "works")
    }).pipe(Effect.scoped))

  for (const client of ["node-redis", "ioredis"] as const) {
    it.live(
      `a dropped subscriber connection yields Resync, then the stream goes on (${client})`,
      () =>
        Effect.gen(function*() {
          const redis = yield* startRedisServer()
          const store = yield* buildStore(layerRedis({ url: redis.url, client, keyPrefix: "r:" }))
          const { events } = yield* recording(store.watch(""))
          yield* eventually(
            "the watch goes live",
            10_000,
            Effect.andThen(store.set("before", "1"), sawSet(events, "before"))
          )
          assert.strictEqual(String(yield* redisCommand(redis.port, "CLIENT", "KILL", "TYPE", "pubsub")), "1")
          // Written until seen: writes made while the subscriber reconnects are covered by the Resync.
          yield* eventually(
            "a write after the reconnection arrives",
            15_000,
            Effect.andThen(store.set("after", "2"), sawSet(events, "after"))
          )
          const resync = events.findIndex((event) => event._tag === "Resync")
          assert.isAtLeast(resync, 0, `a Resync: ${JSON.stringify(events)}`)
          const after = events.findIndex((event) => event._tag === "Set" && event.key === "after")
          assert.isBelow(
            resync,
            after,
            `the Resync comes before the changes after the reconnection: ${JSON.stringify(events)}`
          )
        }).pipe(Effect.scoped),
      30_000
    )

    it.live(`interrupting watches closes their subscriber connections (${client})`, () =>
      Effect.gen(function*() {
        const redis = yield* startRedisServer()
        const store = yield* buildStore(layerRedis({ url: redis.url, client }))
        const numpat = Effect.map(redisCommand(redis.port, "PUBSUB", "NUMPAT"), Number)
        const fibers = yield* Effect.forEach(
          ["a:", "b:", "c:"],
          (prefix) => Effect.forkChild(Stream.runDrain(store.watch(prefix)))
        )
        yield* eventually("three pattern subscriptions", 10_000, holds(Effect.map(numpat, (n) => n === 3)))
        yield* Effect.forEach(fibers, Fiber.interrupt, { discard: true })
        yield* eventually("no pattern subscription left", 10_000, holds(Effect.map(numpat, (n) => n === 0)))
        const clients = String(yield* redisCommand(redis.port, "CLIENT", "LIST", "TYPE", "pubsub"))
        assert.strictEqual(clients.trim(), "", "no subscriber connection left")
      }).pipe(Effect.scoped))
  }
})

describe("redis watch with the ordered index", () => {
  it.live("a watch of the whole namespace sees the store's keys only, never the index's own keys", () =>
    Effect.gen(function*() {
      const keyPrefix = uniqueNamespace()
      const store = yield* buildStore(layerRedis({ url: server().url, keyPrefix, orderedIndex: true }))
      const { events, fiber } = yield* recording(store.watch(""))
      yield* eventually("the watch goes live", 10_000, Effect.andThen(store.set("probe", "1"), sawSet(events, "probe")))
      // Listing writes the index's marker; the writes add to, sweep and empty the index and its expiry set.
      yield* store.list("")
      yield* store.set("a", "1", { ttl: 60_000 })
      yield* store.delete("a")
      yield* store.delete("probe")
      yield* store.set("last", "1")
      yield* eventually("the last write's event", 10_000, sawSet(events, "last"))
      yield* Fiber.interrupt(fiber)
      const keys = new Set(events.map((event) => event._tag === "Resync" ? "(resync)" : event.key))
      assert.deepStrictEqual([...keys].sort(), ["a", "last", "probe"])
    }).pipe(Effect.scoped))
})
