import { describe } from "@effect/vitest"
import { layerRedis } from "effect-kv/redis"
import { conformance } from "effect-kv/testing"
import * as Layer from "effect/Layer"
import { clearedAfterUse, rootNodes, uniqueNamespace, useRedisCluster } from "./support/fixtures.ts"

const cluster = useRedisCluster()

// The configurations run side by side (each build has a namespace of its own); the checks of each, in turn.
describe.concurrent("conformance on a redis cluster", () => {
  for (const client of ["node-redis", "ioredis"] as const) {
    conformance(
      `redis cluster, 3 masters (${client})`,
      clearedAfterUse(
        Layer.suspend(() =>
          layerRedis({ cluster: { rootNodes: rootNodes(cluster()) }, client, keyPrefix: uniqueNamespace() })
        )
      ),
      // Keys on all three masters: each master's notifications come on a connection of their own, so one writer's
      // order holds per key (per master) but not across masters (a setMany split by slot is three concurrent writes).
      // The order across keys is checked on a cluster below (one hash slot), failover in RedisClusterWatch.test.ts.
      { watchOrder: "key" }
    )
    conformance(
      `redis cluster, a namespace in one hash slot (${client})`,
      clearedAfterUse(
        Layer.suspend(() =>
          layerRedis({ cluster: { rootNodes: rootNodes(cluster()) }, client, keyPrefix: `{${uniqueNamespace()}}` })
        )
      )
    )
  }
})
