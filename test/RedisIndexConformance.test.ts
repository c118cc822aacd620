/**
 * The conformance suite, unchanged, on the Redis store with its ordered index (`orderedIndex: true`): standalone and
 * Cluster, with both clients. On a cluster the namespace holds a hash tag, as the index requires.
 */
import { describe } from "@effect/vitest"
import { layerRedis } from "effect-kv/redis"
import { conformance } from "effect-kv/testing"
import * as Layer from "effect/Layer"
import { clearedAfterUse, rootNodes, uniqueNamespace, useRedisCluster, useRedisServer } from "./support/fixtures.ts"

const server = useRedisServer()
const cluster = useRedisCluster()

// The configurations run side by side (each build has a namespace of its own); the checks of each, in turn.
describe.concurrent("conformance with the ordered index", () => {
  for (const client of ["node-redis", "ioredis"] as const) {
    conformance(
      `redis standalone with the ordered index (${client})`,
      clearedAfterUse(
        Layer.suspend(() => layerRedis({ url: server().url, client, keyPrefix: uniqueNamespace(), orderedIndex: true }))
      )
    )
    conformance(
      `redis cluster with the ordered index, 3 masters (${client})`,
      clearedAfterUse(Layer.suspend(() =>
        layerRedis({
          cluster: { rootNodes: rootNodes(cluster()) },
          client,
          keyPrefix: `{${uniqueNamespace()}}`,
          orderedIndex: true
        })
      ))
    )
  }
})
