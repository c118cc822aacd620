/**
 * How single operations of the Redis backend behave beyond the happy path, on real servers: interrupted commands
 * (no timer left behind, nothing sent again), error classification by the server's error code (a write to a replica,
 * a wrong type), clients that are still connecting or closed, the one deadline of a whole listing, replies as
 * Buffers, and option checks.
 */
import { assert, describe, it } from "@effect/vitest"
import { type BackendReason, KvBackendError, KvInputError } from "effect-kv"
import { layerRedis, layerRedisConfig, makeRedisBaseKvStore, type RedisClient } from "effect-kv/redis"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import { Cluster as IoRedisCluster, Redis as IoRedis } from "ioredis"
import * as net from "node:net"
import { createClient, createCluster, RESP_TYPES } from "redis"
import {
  buildStore,
  canKillServers,
  eventually,
  holds,
  rootNodes,
  uniqueNamespace,
  useRedisCluster,
  useRedisServer
} from "./support/fixtures.ts"
import { redisCommand, sleepServer, startRedisServer } from "./support/RedisServer.ts"

const server = useRedisServer()
const cluster = useRedisCluster()

const clients = ["node-redis", "ioredis"] as const

// Slack for a loaded CI machine: the assertions mean "failed within the deadline, did not hang", not performance.
const SLACK_MS = 1_500

const failureOf = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const started = Date.now()
    const result = yield* Effect.result(effect)
    const ms = Date.now() - started
    if (Result.isSuccess(result)) return assert.fail(`expected a failure, got ${JSON.stringify(result.success)}`)
    assert.instanceOf(result.failure, KvBackendError)
    return { error: result.failure as unknown as KvBackendError, ms }
  })

const expectReason = (error: KvBackendError, reason: BackendReason, mentions?: string) => {
  assert.strictEqual(error.reason, reason, error.message)
  if (mentions !== undefined) assert.include(error.message, mentions)
}

/** `calls` of one command in `INFO commandstats`. */
const commandCalls = (port: number, command: string): Effect.Effect<number> =>
  redisCommand(port, "INFO", "commandstats").pipe(
    Effect.map((info) => Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(info ?? "")?.[1] ?? 0)),
    Effect.orDie
  )

const liveTimers = (): number => process.getActiveResourcesInfo().filter((kind) => kind === "Timeout").length

/** A port where nothing listens: the OS hands it out and we close it again. */
const closedPort: Effect.Effect<number> = Effect.promise(() =>
  new Promise((resolve) => {
    const probe = net.createServer()
    probe.listen(0, "127.0.0.1", () => {
      const port = (probe.address() as net.AddressInfo).port
      probe.close(() => resolve(port))
    })
  })
)

const debugServer = startRedisServer({ args: ["--enable-debug-command", "yes"] })

describe.skipIf(!canKillServers)("redis: interrupted commands", () => {
  for (const client of clients) {
    it.live(
      `${client}: 1,000 gets interrupted by Effect.timeout leave no timer armed and send nothing again`,
      () =>
        Effect.gen(function*() {
          const own = yield* debugServer
          // A deadline far beyond the test: without cleanup, each interrupted get would keep a 20 s timer alive.
          const store = yield* buildStore(
            layerRedis({ url: own.url, client, timeout: "20 seconds", keyPrefix: uniqueNamespace() })
          )
          yield* store.set("k", "v")
          const setsBefore = yield* commandCalls(own.port, "set")
          // The server stops answering for two seconds; every command below waits on it.
          yield* sleepServer(own.port, 2)
          const timersBefore = liveTimers()
          const outcomes = yield* Effect.forEach(
            Array.from({ length: 1_000 }, (_, i) => i),
            (i) => Effect.option(Effect.timeout(store.get(`k${i}`), "5 millis")),
            { concurrency: "unbounded" }
          )
          yield* Effect.option(Effect.timeout(store.set("k", "interrupted"), "5 millis"))
          assert.isTrue(outcomes.every((outcome) => outcome._tag === "None"), "every get was interrupted")
          const left = liveTimers() - timersBefore
          assert.isBelow(left, 50, `${left} timers left armed by 1,001 interrupted commands`)

          yield* eventually("the server answers again", 10_000, store.get("k"))
          // The interrupted set had reached the socket, so Redis runs it once, when it wakes; nobody sends it again.
          const setsAfter = yield* commandCalls(own.port, "set")
          assert.strictEqual(setsAfter - setsBefore, 1, "the interrupted write ran once")
          yield* store.get("k")
          assert.strictEqual(yield* commandCalls(own.port, "set"), setsAfter, "and was not sent again")
        }),
      30_000
    )
  }
})

describe("redis: error classification", () => {
  for (const client of clients) {
    it.live.skipIf(!canKillServers)(
      `${client}: a write to a read-only replica fails Unavailable (retryable) with READONLY; reads work`,
      () =>
        Effect.gen(function*() {
          const master = yield* startRedisServer()
          const replica = yield* startRedisServer({ args: ["--replicaof", "127.0.0.1", String(master.port)] })
          yield* eventually(
            "the replica is in sync",
            10_000,
            holds(Effect.map(
              redisCommand(replica.port, "INFO", "replication"),
              (info) => info?.includes("master_link_status:up") ?? false
            ))
          )
          const keyPrefix = uniqueNamespace()
          const onMaster = yield* buildStore(layerRedis({ url: master.url, client, keyPrefix }))
          yield* onMaster.set("k", "v")
          const onReplica = yield* buildStore(layerRedis({ url: replica.url, client, keyPrefix }))
          yield* eventually(
            "the write reached the replica",
            5_000,
            holds(Effect.map(onReplica.get("k"), (v) => v === "v"))
          )
          const { error } = yield* failureOf(onReplica.set("k", "on the replica"))
          expectReason(error, "Unavailable", "READONLY")
          expectReason((yield* failureOf(onReplica.delete("k"))).error, "Unavailable", "READONLY")
        }),
      30_000
    )

    it.live(`${client}: a key of another type fails with Failure and the server's WRONGTYPE message`, () =>
      Effect.gen(function*() {
        const keyPrefix = uniqueNamespace()
        const store = yield* buildStore(layerRedis({ url: server().url, client, keyPrefix }))
        yield* redisCommand(server().port, "LPUSH", `${keyPrefix}list`, "x")
        const { error } = yield* failureOf(store.get("list"))
        expectReason(error, "Failure", "WRONGTYPE")
      }))
  }
})

/** A caller's client created and used at once, before its connection is up, as most ioredis code does. */
const connectingClients: ReadonlyArray<
  readonly [
    string,
    (target: { url: string } | { rootNodes: Array<string> }) => { client: RedisClient; close: () => void }
  ]
> = [
  ["ioredis Redis", (target) => {
    if (!("url" in target)) throw new Error("standalone only")
    const client = new IoRedis(target.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0 })
    client.on("error", () => undefined)
    return { client, close: () => client.disconnect() }
  }],
  ["ioredis Cluster", (target) => {
    if (!("rootNodes" in target)) throw new Error("cluster only")
    const client = new IoRedisCluster(
      target.rootNodes.map((url) => new URL(url)).map((url) => ({
        host: url.hostname,
        port: Number(url.port)
      })),
      { enableOfflineQueue: false, redisOptions: { maxRetriesPerRequest: 0 } }
    )
    client.on("error", () => undefined)
    return { client, close: () => client.disconnect() }
  }],
  ["node-redis client, connect() not awaited", (target) => {
    if (!("url" in target)) throw new Error("standalone only")
    const client = createClient({ url: target.url, disableOfflineQueue: true })
    client.on("error", () => undefined)
    void client.connect()
    return { client, close: () => client.destroy() }
  }],
  ["node-redis cluster, connect() not awaited", (target) => {
    if (!("rootNodes" in target)) throw new Error("cluster only")
    const client = createCluster({
      rootNodes: target.rootNodes.map((url) => ({ url })),
      defaults: { disableOfflineQueue: true }
    })
    client.on("error", () => undefined)
    void client.connect()
    return { client, close: () => client.destroy() }
  }]
]

describe("redis: a client that is still connecting", () => {
  for (const [name, open] of connectingClients) {
    it.live(`${name}: operations wait for the first connection within their deadline`, () =>
      Effect.gen(function*() {
        const target = name.includes("luster") ? { rootNodes: rootNodes(cluster()) } : { url: server().url }
        const owned = yield* Effect.acquireRelease(Effect.sync(() => open(target)), (owned) => Effect.sync(owned.close))
        const store = makeRedisBaseKvStore({ redis: owned.client, keyPrefix: uniqueNamespace(), timeout: "5 seconds" })
        yield* store.set("k", "v")
        assert.strictEqual(yield* store.get("k"), "v")
        assert.deepStrictEqual(yield* store.list(""), ["k"])
      }))
  }

  it.live("ioredis to a port where nothing listens: fails Unavailable at the deadline, saying it never connected", () =>
    Effect.gen(function*() {
      const port = yield* closedPort
      const owned = yield* Effect.acquireRelease(
        Effect.sync(() => {
          const client = new IoRedis(`redis://127.0.0.1:${port}`, { enableOfflineQueue: false })
          client.on("error", () => undefined)
          return client
        }),
        (client) => Effect.sync(() => client.disconnect())
      )
      const store = makeRedisBaseKvStore({ redis: owned, timeout: "300 millis" })
      for (const operation of [store.get("k"), store.list("")]) {
        const { error, ms } = yield* failureOf<unknown, unknown, never>(operation)
        expectReason(error, "Unavailable", "never connected")
        assert.isAtLeast(ms, 250, "waited for the deadline")
        assert.isBelow(ms, 300 + SLACK_MS, "no longer than the deadline")
      }
    }))

  for (const client of clients) {
    it.live(`${client}: a store used after its layer closed fails with Failure, saying so`, () =>
      Effect.gen(function*() {
        const store = yield* Effect.scoped(buildStore(layerRedis({ url: server().url, client })))
        const { error, ms } = yield* failureOf(store.get("k"))
        expectReason(error, "Failure", "after its layer closed")
        assert.isBelow(ms, SLACK_MS, "at once")
      }))
  }
})

describe.skipIf(!canKillServers)("redis: the deadline of a listing", () => {
  for (const client of clients) {
    it.live(
      `${client}: a listing of 500,000 keys fails at timeout; listTimeout gives it longer`,
      () =>
        Effect.gen(function*() {
          const own = yield* debugServer
          yield* redisCommand(own.port, "DEBUG", "POPULATE", "500000", "other")
          // scanCount 10: 50,000 SCAN pages, each far below the 100 ms deadline, seconds in all.
          const slow = yield* buildStore(layerRedis({ url: own.url, client, timeout: "100 millis", scanCount: 10 }))
          const { error, ms } = yield* failureOf(slow.list("upload:"))
          expectReason(error, "Timeout", "100 ms")
          assert.isBelow(ms, 100 + SLACK_MS, "the whole listing stopped at the deadline")

          // Pages of 10 again: seconds in all, far past the per-command deadline, whose 1 s leaves each small SCAN
          // room on a machine the other fault files keep busy (100 ms failed there once).
          const patient = yield* buildStore(
            layerRedis({ url: own.url, client, timeout: "1 second", scanCount: 10, listTimeout: "60 seconds" })
          )
          yield* patient.set("upload:1", "v")
          assert.deepStrictEqual(yield* patient.list("upload:"), ["1"])
        }),
      60_000
    )
  }
})

describe("redis: replies and options", () => {
  it.live("node-redis mapped to Buffers: get and list still return strings", () =>
    Effect.gen(function*() {
      const owned = yield* Effect.acquireRelease(
        Effect.promise(async () => {
          const client = createClient({ url: server().url, disableOfflineQueue: true })
          client.on("error", () => undefined)
          await client.connect()
          return client
        }),
        (client) => Effect.sync(() => client.destroy())
      )
      const buffers = owned.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer })
      const keyPrefix = uniqueNamespace()
      const store = makeRedisBaseKvStore({ redis: buffers, keyPrefix })
      yield* store.set("k", "ünïcödé 😀")
      assert.instanceOf(yield* Effect.promise(() => buffers.get(`${keyPrefix}k`)), Buffer, "the client returns Buffers")
      const value = yield* store.get("k")
      assert.strictEqual(typeof value, "string")
      assert.strictEqual(value, "ünïcödé 😀")
      assert.deepStrictEqual(yield* store.list(""), ["k"])
    }))

  it.live("a duration that does not parse (\"2 secs\") is a KvInputError naming the option", () =>
    Effect.gen(function*() {
      const owned = yield* Effect.acquireRelease(
        Effect.promise(async () => {
          const client = createClient({ url: server().url, disableOfflineQueue: true })
          client.on("error", () => undefined)
          await client.connect()
          return client
        }),
        (client) => Effect.sync(() => client.destroy())
      )
      for (const option of ["timeout", "listTimeout"] as const) {
        const error = (() => {
          try {
            makeRedisBaseKvStore({ redis: owned, [option]: "2 secs" })
          } catch (error) {
            return error
          }
        })()
        assert.instanceOf(error, KvInputError, option)
        assert.deepInclude(error, { operation: "options", argument: option, reason: "InvalidOption" })
        assert.include((error as KvInputError).message, `${option} must be a duration`)
        assert.include((error as KvInputError).message, "received \"2 secs\"")
      }
    }))

  it.live("a password containing @ is redacted whole from the layer's error", () =>
    Effect.gen(function*() {
      const port = yield* closedPort
      const { error } = yield* failureOf(buildStore(layerRedis({ url: `redis://user:s3cr@tpw@127.0.0.1:${port}` })))
      assert.notInclude(error.message, "s3cr")
      assert.notInclude(error.message, "tpw")
      assert.include(error.message, `127.0.0.1:${port}`)
    }))

  it.live("layerRedisConfig with both REDIS_URL and REDIS_CLUSTER_NODES fails with KvInputError", () =>
    Effect.gen(function*() {
      const env = { REDIS_URL: server().url, REDIS_CLUSTER_NODES: rootNodes(cluster()).join(",") }
      const error = yield* Effect.flip(
        buildStore(Layer.provide(layerRedisConfig(), ConfigProvider.layer(ConfigProvider.fromEnv({ env }))))
      )
      assert.instanceOf(error, KvInputError)
      assert.deepInclude(error, { operation: "options", argument: "REDIS_CLUSTER_NODES", reason: "InvalidOption" })
      assert.include(error.message, "REDIS_URL")
      assert.include(error.message, "not both")
    }))
})
