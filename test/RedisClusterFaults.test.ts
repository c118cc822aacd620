/**
 * Listings on a Redis Cluster that fails while they run, on real clusters of their own: a master that dies mid-listing
 * stops the scans of the other masters at once (seen in their `INFO commandstats`), and a cluster with slots that no
 * master serves fails every listing instead of returning what the other masters hold.
 *
 * Skipped when the Redis tests run against external servers, which must not be killed or reconfigured.
 */
import { assert, describe, it } from "@effect/vitest"
import { type BackendReason, KvBackendError } from "effect-kv"
import { layerRedis } from "effect-kv/redis"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Result from "effect/Result"
import { buildStore, canKillServers, eventually, holds, rootNodes, uniqueNamespace } from "./support/fixtures.ts"
import { awaitClusterOk, redisCommand, startRedisCluster } from "./support/RedisServer.ts"

const clients = ["node-redis", "ioredis"] as const

const debugCluster = startRedisCluster({ node: () => Effect.succeed({ args: ["--enable-debug-command", "yes"] }) })

/** `calls` of one command in `INFO commandstats`. */
const commandCalls = (port: number, command: string): Effect.Effect<number> =>
  redisCommand(port, "INFO", "commandstats").pipe(
    Effect.map((info) => Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(info ?? "")?.[1] ?? 0)),
    Effect.orDie
  )

/** Real time, on purpose: what is checked is that nothing happens during it. */
const quietPeriod = (ms: number) =>
  Effect.callback<void>((resume) => {
    const timer = setTimeout(() => resume(Effect.void), ms)
    return Effect.sync(() => clearTimeout(timer))
  })

const listingFailure = <A, E>(result: Result.Result<A, E>, reasons: ReadonlyArray<BackendReason>) => {
  if (Result.isSuccess(result)) return assert.fail("the listing succeeded")
  assert.instanceOf(result.failure, KvBackendError)
  const error = result.failure as unknown as KvBackendError
  assert.include(reasons, error.reason, error.message)
  return error
}

describe.skipIf(!canKillServers)("redis cluster: listings that fail", () => {
  it.live(
    "a master killed during a listing fails it, and the other masters are not scanned any further",
    () =>
      Effect.gen(function*() {
        const cluster = yield* debugCluster
        const [victim, ...survivors] = cluster.servers
        for (const client of clients) {
          // Keys outside any namespace, only there to make each master's scan long: 30,000 pages of COUNT 10.
          yield* Effect.forEach(cluster.nodes, (node) => redisCommand(node.port, "DEBUG", "POPULATE", "300000", "fill"))
          const store = yield* buildStore(
            layerRedis({
              cluster: { rootNodes: rootNodes(cluster) },
              client,
              keyPrefix: uniqueNamespace(),
              scanCount: 10,
              listTimeout: "2 minutes"
            })
          )
          const before = yield* Effect.forEach(survivors, (server) => commandCalls(server.port, "scan"))
          const listing = yield* Effect.forkChild(Effect.result(store.list("")))
          yield* eventually(
            `${client}: the listing is under way on the victim`,
            10_000,
            holds(Effect.map(commandCalls(victim.port, "scan"), (calls) => calls >= 20))
          )
          yield* victim.kill
          listingFailure(yield* Fiber.join(listing), ["Unavailable", "Timeout"])
          const atFailure = yield* Effect.forEach(survivors, (server) => commandCalls(server.port, "scan"))
          yield* quietPeriod(1_000)
          const later = yield* Effect.forEach(survivors, (server) => commandCalls(server.port, "scan"))
          survivors.forEach((server, i) => {
            // At most the page that was in flight when the listing failed.
            assert.isAtMost(
              later[i] - atFailure[i],
              1,
              `${client}: ${server.port} kept being scanned after the failure`
            )
            assert.isBelow(atFailure[i] - before[i], 30_000, `${client}: ${server.port} was not scanned to the end`)
          })
          yield* victim.restart
          yield* awaitClusterOk(cluster)
        }
      }),
    120_000
  )

  it.live("a cluster with slots no master serves fails every listing, on both clients", () =>
    Effect.gen(function*() {
      const cluster = yield* startRedisCluster()
      const ports = cluster.nodes.map((node) => node.port)
      for (const port of ports) {
        yield* redisCommand(port, "CONFIG", "SET", "cluster-require-full-coverage", "no")
        yield* Effect.ignore(redisCommand(port, "CLUSTER", "DELSLOTSRANGE", "16000", "16383"))
      }
      yield* eventually(
        "every node sees the slots unassigned",
        15_000,
        holds(Effect.map(
          Effect.forEach(ports, (port) => redisCommand(port, "CLUSTER", "INFO")),
          (infos) => infos.every((info) => info?.includes("cluster_slots_assigned:16000\r\n") ?? false)
        ))
      )
      for (const client of clients) {
        const store = yield* buildStore(
          layerRedis({ cluster: { rootNodes: rootNodes(cluster) }, client, keyPrefix: uniqueNamespace() })
        )
        const error = listingFailure(yield* Effect.result(store.list("")), ["Unavailable"])
        assert.include(error.message, "slot", client)
      }
    }), 60_000)
})
