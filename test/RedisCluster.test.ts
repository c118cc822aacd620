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
    )
  )
}
