import { layerRedis } from "effect-kv/redis"
import { conformance } from "effect-kv/testing"
import * as Layer from "effect/Layer"
import { rootNodes, uniqueNamespace, useRedisCluster } from "./support/fixtures.ts"

const cluster = useRedisCluster()

for (const client of ["node-redis", "ioredis"] as const) {
  conformance(
    `redis cluster, 3 masters (${client})`,
    Layer.suspend(() =>
      layerRedis({ cluster: { rootNodes: rootNodes(cluster()) }, client, keyPrefix: uniqueNamespace() })
    ),
    // Keys on all three masters: each master's notifications come on a connection of their own, so one writer's
    // order holds per master but not across them (a setMany split by slot is three concurrent writes), and the
    // suite's order checks cannot pass. Everything else of watch is checked on a cluster below (one hash slot) and
    // in RedisClusterWatch.test.ts (keys on every master, failover).
    { watch: false }
  )
  conformance(
    `redis cluster, a namespace in one hash slot (${client})`,
    Layer.suspend(() =>
      layerRedis({ cluster: { rootNodes: rootNodes(cluster()) }, client, keyPrefix: `{${uniqueNamespace()}}` })
    )
  )
}
