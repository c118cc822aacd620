/**
 * What the Redis backend does when Redis fails, on real servers that the tests kill, restart and hang: every operation
 * fails with a typed `KvBackendError` within its deadline (never hangs, never queues), commands issued while Redis was
 * down are not replayed when it is back, the same store works again without a restart, and on a cluster a listing
 * with a master down fails instead of returning part of the keys.
 *
 * Each test starts servers of its own, so killing them disturbs no other test. Skipped when the Redis tests run
 * against external servers, which must not be killed.
 */
import { assert, describe, it } from "@effect/vitest"
import { type BackendReason, type BaseKvStore, isKvBackendError, KvBackendError, type Operation } from "effect-kv"
import { layerRedis, makeRedisBaseKvStore, type RedisClient } from "effect-kv/redis"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Result from "effect/Result"
import { Redis as IoRedis } from "ioredis"
import { createClient } from "redis"
import { buildStore, canKillServers, eventually, rootNodes, uniqueNamespace } from "./support/fixtures.ts"
import {
  awaitClusterOk,
  awaitUnreadCommand,
  type RedisCluster,
  redisCommand,
  type RedisServer,
  sleepServer,
  startRedisCluster,
  startRedisServer
} from "./support/RedisServer.ts"

const clients = ["node-redis", "ioredis"] as const

/** The stores' command deadline in these tests. */
const TIMEOUT_MS = 500
// Slack for a loaded CI machine: the assertions mean "failed within the deadline, did not hang", not performance.
const SLACK_MS = 1_500

/** A server with DEBUG enabled (Redis 7 refuses it by default), for DEBUG SLEEP. */
const startServer = startRedisServer({ args: ["--enable-debug-command", "yes"] })

/**
 * Runs `effect` and asserts it failed with a `KvBackendError` for `operation`, with one of `reasons`, within
 * `withinMs`. Returns the error and how long it took.
 */
const expectBackendFailure = <A, E>(
  effect: Effect.Effect<A, E>,
  operation: Operation,
  reasons: ReadonlyArray<BackendReason>,
  withinMs: number
): Effect.Effect<{ readonly error: KvBackendError; readonly ms: number }> =>
  Effect.gen(function*() {
    const started = Date.now()
    const result = yield* Effect.result(effect)
    const ms = Date.now() - started
    if (Result.isSuccess(result)) return assert.fail(`${operation} succeeded while Redis was failing`)
    const error = result.failure
    assert.instanceOf(error, KvBackendError, `${operation} fails with KvBackendError`)
    const backendError = error as KvBackendError
    assert.strictEqual(backendError.operation, operation)
    assert.include(reasons, backendError.reason, `${operation}: ${backendError.message}`)
    assert.isBelow(ms, withinMs, `${operation} failed within ${withinMs} ms (${backendError.reason})`)
    return { error: backendError, ms }
  })

/** get, set, delete and list each fail typed, fast, while Redis cannot answer. */
const allOperationsFail = (store: BaseKvStore, reasons: ReadonlyArray<BackendReason>, withinMs: number) =>
  Effect.gen(function*() {
    const failures = yield* Effect.all([
      expectBackendFailure(store.get("k"), "get", reasons, withinMs),
      expectBackendFailure(store.set("k", "while down"), "set", reasons, withinMs),
      expectBackendFailure(store.delete("k"), "delete", reasons, withinMs),
      expectBackendFailure(store.list("pre"), "list", reasons, withinMs)
    ])
    // The error names the key (or prefix) as the caller gave it, not the namespaced Redis key.
    assert.deepStrictEqual(failures.map(({ error }) => error.key), ["k", "k", "k", "pre"])
  })

/** ~2,000 writes at once while Redis is down: each must fail typed, all of them quickly, none waiting in a queue. */
const burstOfWritesFails = (store: BaseKvStore, count: number, reasons: ReadonlyArray<BackendReason>) =>
  Effect.gen(function*() {
    const started = Date.now()
    const results = yield* Effect.forEach(
      Array.from({ length: count }, (_, i) => i),
      (i) => Effect.result(store.set(`queued:${i}`, `written while down ${i}`)),
      { concurrency: "unbounded" }
    )
    const ms = Date.now() - started
    const failures = results.filter(Result.isFailure).map((result) => result.failure)
    assert.strictEqual(failures.length, count, "every write failed")
    for (const error of failures) {
      assert.instanceOf(error, KvBackendError)
      assert.include(reasons, (error as KvBackendError).reason)
    }
    assert.isBelow(ms, TIMEOUT_MS + SLACK_MS, `${count} writes failed within the deadline, not one after another`)
  })

/** `DEBUG SLEEP seconds` on its own connection: returns once the server has stopped answering anyone. */
const hangServer = (server: RedisServer, seconds: number) => sleepServer(server.port, seconds)

/** Until an operation fails at once with Unavailable: the client has noticed that the connection is gone. */
const clientNoticed = (store: BaseKvStore) =>
  eventually(
    "the client notices the connection is gone",
    10_000,
    Effect.flatMap(Effect.result(Effect.timeout(store.get("k"), "100 millis")), (result) =>
      Result.isFailure(result) && isKvBackendError(result.failure) && result.failure.reason === "Unavailable"
        ? Effect.void
        : Effect.fail("not yet"))
  )

describe.skipIf(!canKillServers)("redis faults, standalone", () => {
  for (const client of clients) {
    it.live(
      `${client}: while Redis is down every operation fails fast and typed; the same store recovers`,
      () =>
        Effect.gen(function*() {
          const server = yield* startServer
          const store = yield* buildStore(
            layerRedis({ url: server.url, client, timeout: `${TIMEOUT_MS} millis`, keyPrefix: uniqueNamespace() })
          )
          yield* store.set("k", "v")
          assert.strictEqual(yield* store.get("k"), "v")

          yield* server.kill
          // Twice: right after the crash, and once the client has noticed and is reconnecting.
          yield* allOperationsFail(store, ["Unavailable", "Timeout"], TIMEOUT_MS + SLACK_MS)
          yield* clientNoticed(store)
          yield* allOperationsFail(store, ["Unavailable", "Timeout"], TIMEOUT_MS + SLACK_MS)
          yield* burstOfWritesFails(store, 2_000, ["Unavailable", "Timeout"])

          yield* server.restart
          yield* eventually("the same store works again once Redis is back", 15_000, store.set("k", "again"))
          assert.strictEqual(yield* store.get("k"), "again")
          // The restarted server is empty: a queued write replayed on reconnect would show here.
          assert.deepStrictEqual(
            yield* store.list("queued:"),
            [],
            "writes issued while Redis was down were not replayed"
          )
          assert.deepStrictEqual(yield* store.list(""), ["k"])
        }),
      60_000
    )

    it.live(
      `${client}: a hung server (DEBUG SLEEP) fails each operation with Timeout at the deadline`,
      () =>
        Effect.gen(function*() {
          const server = yield* startServer
          const timeoutMs = 300
          const store = yield* buildStore(
            layerRedis({ url: server.url, client, timeout: `${timeoutMs} millis`, keyPrefix: uniqueNamespace() })
          )
          yield* store.set("k", "v")
          yield* hangServer(server, 2)
          const failures = yield* Effect.all([
            expectBackendFailure(store.get("k"), "get", ["Timeout"], timeoutMs + SLACK_MS),
            expectBackendFailure(store.set("k", "late"), "set", ["Timeout"], timeoutMs + SLACK_MS),
            expectBackendFailure(store.delete("other"), "delete", ["Timeout"], timeoutMs + SLACK_MS),
            expectBackendFailure(store.list(""), "list", ["Timeout"], timeoutMs + SLACK_MS)
          ], { concurrency: "unbounded" })
          for (const { ms } of failures) assert.isAtLeast(ms, timeoutMs - 50, "waited for the deadline")
          // Once the server wakes up the connection is still good.
          yield* eventually("the store answers again after the sleep", 10_000, store.get("k"))
        }),
      30_000
    )

    it.live(
      `${client}: a command in flight when Redis dies fails at once and is not sent again`,
      () =>
        Effect.gen(function*() {
          const server = yield* startServer
          // A deadline far beyond the test: the failure must come from the lost connection, not from the timer.
          const store = yield* buildStore(
            layerRedis({ url: server.url, client, timeout: "20 seconds", keyPrefix: uniqueNamespace() })
          )
          yield* store.set("k", "v")
          yield* hangServer(server, 3)
          const inFlight = yield* Effect.forkChild(Effect.result(store.set("in-flight", "x")))
          // The write has left the client: it waits, unread, in the sleeping server's socket.
          yield* awaitUnreadCommand(server.port)
          // The server dies before it reads the write: it was never applied.
          yield* server.kill
          const killed = Date.now()
          const result = yield* Fiber.join(inFlight)
          assert.isBelow(Date.now() - killed, SLACK_MS, "failed when the connection dropped")
          assert.isTrue(Result.isFailure(result), "the write failed")
          const error = Result.isFailure(result) ? result.failure : undefined
          assert.instanceOf(error, KvBackendError)
          assert.strictEqual((error as KvBackendError).reason, "Unavailable")

          yield* server.restart
          yield* eventually("the same store works again", 15_000, store.set("k", "again"))
          // ioredis resends in-flight commands after reconnecting unless told not to; the write must not come back.
          assert.strictEqual(yield* store.get("in-flight"), null, "the in-flight write was not replayed")
        }),
      30_000
    )
  }

  // A caller's client may keep its offline queue (the libraries' default): effect-kv must still fail at once instead
  // of queueing a command behind the reconnection, and so nothing can be replayed later.
  const queueingClients: ReadonlyArray<
    readonly [string, (url: string) => Promise<{ client: RedisClient; isReady: () => boolean; close: () => void }>]
  > = [
    ["node-redis v6", async (url) => {
      const client = createClient({ url })
      client.on("error", () => undefined)
      await client.connect()
      return { client, isReady: () => client.isReady, close: () => client.destroy() }
    }],
    ["ioredis v6", async (url) => {
      const client = new IoRedis(url, { lazyConnect: true })
      client.on("error", () => undefined)
      await client.connect()
      return { client, isReady: () => client.status === "ready", close: () => client.disconnect() }
    }]
  ]
  for (const [name, open] of queueingClients) {
    it.live(
      `a caller's ${name} client with its default offline queue: fails at once while down, replays nothing`,
      () =>
        Effect.gen(function*() {
          const server = yield* startServer
          const owned = yield* Effect.acquireRelease(
            Effect.promise(() => open(server.url)),
            (owned) => Effect.sync(owned.close)
          )
          const store = makeRedisBaseKvStore({
            redis: owned.client,
            keyPrefix: uniqueNamespace(),
            timeout: `${TIMEOUT_MS} millis`
          })
          yield* store.set("k", "v")
          yield* server.kill
          // Once the client knows it is disconnected it would queue; effect-kv must not hand it anything.
          yield* eventually(
            "the client sees the connection is gone",
            5_000,
            Effect.sync(() => owned.isReady()).pipe(
              Effect.flatMap((ready) => ready ? Effect.fail("still ready") : Effect.void)
            )
          )
          yield* allOperationsFail(store, ["Unavailable"], SLACK_MS)
          yield* burstOfWritesFails(store, 2_000, ["Unavailable"])
          yield* server.restart
          yield* eventually("the client reconnects by itself and the store works", 15_000, store.set("k", "again"))
          assert.deepStrictEqual(yield* store.list("queued:"), [], "nothing issued while down was queued and replayed")
        }),
      30_000
    )
  }
})

/** slot -> port of its master, from CLUSTER NODES. */
const slotOwners = (port: number) =>
  Effect.gen(function*() {
    const nodes = yield* redisCommand(port, "CLUSTER", "NODES")
    const owners = new Map<number, number>()
    for (const line of (nodes ?? "").trim().split("\n")) {
      const [, address, flags, , , , , , ...ranges] = line.split(" ")
      if (!flags.includes("master")) continue
      const owner = Number(address.split("@")[0].split(":").at(-1))
      for (const range of ranges) {
        if (range.startsWith("[")) continue // a slot being migrated, not one owned
        const [from, to = from] = range.split("-").map(Number)
        for (let slot = from; slot <= to; slot++) owners.set(slot, owner)
      }
    }
    return owners
  })

/** Whether the master on `port` is flagged `fail` (not just `fail?`) by the node on `observer`. */
const flaggedFailed = (observer: number, port: number) =>
  Effect.map(
    redisCommand(observer, "CLUSTER", "NODES"),
    (nodes) =>
      (nodes ?? "").split("\n").some((line) => {
        const [, address = "", flags = ""] = line.split(" ")
        return address.startsWith(`127.0.0.1:${port}@`) && flags.split(",").includes("fail")
      })
  )

/**
 * One client's view of the cluster test: its own namespace, keys on the master that will be killed (`lost`) and on
 * the others (`kept`), and a store over its own layer.
 */
const clusterScenario = (client: typeof clients[number], cluster: RedisCluster, victim: RedisServer) =>
  Effect.gen(function*() {
    const observer = cluster.nodes.find((node) => node.port !== victim.port)!.port
    const keyPrefix = uniqueNamespace()
    const owners = yield* slotOwners(observer)
    const keys = Array.from({ length: 30 }, (_, i) => `k${i}`)
    const ownerOf = new Map<string, number>()
    for (const key of keys) {
      const slot = Number(yield* redisCommand(observer, "CLUSTER", "KEYSLOT", keyPrefix + key))
      ownerOf.set(key, owners.get(slot)!)
    }
    const lost = keys.filter((key) => ownerOf.get(key) === victim.port)
    const kept = keys.filter((key) => ownerOf.get(key) !== victim.port)
    assert.isNotEmpty(lost, "some keys live on the master that will be killed")
    assert.isAtLeast(kept.length, 2)

    const store = yield* buildStore(
      layerRedis({ cluster: { rootNodes: rootNodes(cluster) }, client, timeout: `${TIMEOUT_MS} millis`, keyPrefix })
    )
    yield* Effect.forEach(keys, (key) => store.set(key, `value of ${key}`), { discard: true })
    assert.deepStrictEqual(yield* store.list(""), keys.slice().sort())

    const [dead] = lost
    const [alive, otherAlive] = kept
    const reasons: ReadonlyArray<BackendReason> = ["Unavailable", "Timeout"]
    const deadline = TIMEOUT_MS + SLACK_MS
    const whileDown = (phase: string) =>
      Effect.gen(function*() {
        yield* expectBackendFailure(store.get(dead), "get", reasons, deadline)
        yield* expectBackendFailure(store.set(dead, "while down"), "set", reasons, deadline)
        yield* expectBackendFailure(store.delete(dead), "delete", reasons, deadline)
        // A third of the keys is unreachable: a listing of the other two thirds would be wrong, so it must fail.
        yield* expectBackendFailure(store.list(""), "list", reasons, deadline)
        yield* expectBackendFailure(store.list("k1"), "list", reasons, deadline)
        // Keys on the live masters keep working.
        yield* store.set(alive, `written ${phase}`)
        assert.strictEqual(yield* store.get(alive), `written ${phase}`, `${client}: ${phase}`)
        assert.strictEqual(yield* store.get(otherAlive), `value of ${otherAlive}`, `${client}: ${phase}`)
      })
    const recovers = Effect.gen(function*() {
      yield* eventually(`${client}: the same store writes to the restarted master`, 20_000, store.set(dead, "again"))
      assert.strictEqual(yield* store.get(dead), "again")
      // The restarted master kept nothing (no persistence in the harness): its other keys are gone.
      const listing = yield* eventually(`${client}: listing works again`, 10_000, store.list(""))
      assert.deepStrictEqual(listing, [...kept, dead].sort(), client)
      assert.strictEqual(yield* store.get(alive), "written after the view settled")
    })
    return { whileDown, recovers }
  })

describe.skipIf(!canKillServers)("redis faults, cluster", () => {
  // Both clients watch the same failure, each through a store of its own: one cluster, one kill, one restart.
  it.live(
    "a master down fails its keys and every listing, typed; the rest works; the same stores recover",
    () =>
      Effect.gen(function*() {
        const cluster = yield* startRedisCluster()
        const [survivor, victim] = cluster.servers
        // By default the surviving masters refuse every command once a master is marked failed (CLUSTERDOWN); the
        // test wants to see that keys on them keep working while listing fails.
        for (const node of cluster.nodes) {
          yield* redisCommand(node.port, "CONFIG", "SET", "cluster-require-full-coverage", "no")
        }
        const scenarios = yield* Effect.forEach(clients, (client) => clusterScenario(client, cluster, victim))
        const all = <E>(f: (scenario: typeof scenarios[number]) => Effect.Effect<void, E>) =>
          Effect.forEach(scenarios, f, { concurrency: "unbounded", discard: true })

        yield* victim.kill
        const killed = Date.now()
        yield* all((scenario) => scenario.whileDown("right after the kill"))
        // Again once the other masters have marked it failed and the clients have had time to refresh their view of
        // the cluster (node-redis does after 5 s of reconnecting): a master missing from the refreshed topology must
        // not turn into a listing that silently skips its slots.
        yield* eventually(
          "the survivors flag the killed master as failed",
          15_000,
          Effect.flatMap(
            flaggedFailed(survivor.port, victim.port),
            (failed) => failed ? Effect.void : Effect.fail("not yet")
          )
        )
        yield* Effect.sleep(Math.max(0, 6_000 - (Date.now() - killed)))
        yield* all((scenario) => scenario.whileDown("after the view settled"))

        yield* victim.restart
        yield* awaitClusterOk(cluster)
        yield* all((scenario) => scenario.recovers)
      }),
    90_000
  )
})
