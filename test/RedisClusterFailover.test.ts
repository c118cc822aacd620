/**
 * A Redis Cluster losing nodes, on real clusters of their own: a killed master's replica takes over and the same
 * layers work again with every key intact, and the loss of a single node's connection is logged naming the node. A
 * file of its own beside RedisClusterFaults.test.ts, so that the fault project runs the two side by side.
 *
 * Skipped when the Redis tests run against external servers, which must not be killed or reconfigured.
 */
import { assert, describe, it } from "@effect/vitest"
import { layerRedis } from "effect-kv/redis"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import {
  buildStore,
  canKillServers,
  eventually,
  holds,
  replicaTookOver,
  rootNodes,
  uniqueNamespace
} from "./support/fixtures.ts"
import { redisCommand, startFailoverCluster, startRedisCluster } from "./support/RedisServer.ts"

const clients = ["node-redis", "ioredis"] as const

// The two tests side by side: each has a cluster of its own and spends its time waiting for the cluster to react.
describe.skipIf(!canKillServers).concurrent("redis cluster: nodes lost", () => {
  it.live(
    "3 masters + 3 replicas: a killed master's replica takes over and the same layers work again, keys intact",
    () =>
      Effect.gen(function*() {
        const cluster = yield* startFailoverCluster
        const [victim] = cluster.servers
        const observer = cluster.servers[1].port
        const keys = Array.from({ length: 30 }, (_, i) => `k${i}`)
        const stores = yield* Effect.forEach(clients, (client) =>
          Effect.gen(function*() {
            const store = yield* buildStore(
              layerRedis({
                cluster: { rootNodes: rootNodes(cluster) },
                client,
                timeout: "500 millis",
                keyPrefix: uniqueNamespace()
              })
            )
            yield* Effect.forEach(keys, (key) => store.set(key, `${client} ${key}`), { discard: true })
            return { client, store }
          }))
        // Every write reached the replicas before the victim dies: each master's replica acknowledged its offset.
        yield* eventually(
          "the replicas caught up",
          10_000,
          holds(Effect.map(
            Effect.forEach(cluster.servers, (server) => redisCommand(server.port, "INFO", "replication")),
            (infos) =>
              infos.every((info) => {
                const offset = /master_repl_offset:(\d+)/.exec(info ?? "")?.[1]
                return offset !== undefined && new RegExp(`slave0:[^\r]*offset=${offset},`).test(info ?? "")
              })
          ))
        )
        yield* victim.kill
        yield* replicaTookOver(observer, victim.port)
        yield* Effect.forEach(stores, ({ client, store }) =>
          Effect.gen(function*() {
            // Without a rebuild: the layers' clients find the new master by themselves.
            const listing = yield* eventually(`${client}: listing works after the failover`, 30_000, store.list(""))
            assert.deepStrictEqual(listing, keys.slice().sort(), client)
            for (const key of keys) {
              const value = yield* eventually(`${client}: get ${key}`, 30_000, store.get(key))
              assert.strictEqual(value, `${client} ${key}`, `${client}: ${key} survived the failover`)
              yield* eventually(`${client}: set ${key}`, 30_000, store.set(key, "after"))
            }
          }), { concurrency: "unbounded", discard: true })
      }),
    120_000
  )

  it.live(
    "the error of a single node's connection is logged, naming the node, on both clients",
    () =>
      Effect.gen(function*() {
        const cluster = yield* startRedisCluster()
        const victim = cluster.servers[2]
        const warnings: Array<string> = []
        const capture = Logger.layer([
          Logger.make(({ logLevel, message }) => {
            if (logLevel === "Warn") warnings.push((Array.isArray(message) ? message : [message]).map(String).join(" "))
          })
        ])
        yield* Effect.gen(function*() {
          for (const client of clients) {
            yield* buildStore(layerRedis({ cluster: { rootNodes: rootNodes(cluster) }, client }))
          }
          yield* victim.kill
          yield* eventually(
            "both clients logged the lost node",
            15_000,
            holds(
              Effect.sync(() =>
                warnings.filter((warning) => warning.includes(`node 127.0.0.1:${victim.port}`)).length >= clients.length
              )
            )
          )
        }).pipe(Effect.provide(capture))
      }),
    60_000
  )
})
