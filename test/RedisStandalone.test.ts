import { layerRedis } from "effect-kv/redis"
import { conformance } from "effect-kv/testing"
import * as Layer from "effect/Layer"
import { uniqueNamespace, useRedisServer } from "./support/fixtures.ts"

const server = useRedisServer()

// Each check builds the layer afresh: a new connection and a namespace of its own on the shared server.
for (const client of ["node-redis", "ioredis"] as const) {
  conformance(
    `redis standalone (${client})`,
    Layer.suspend(() => layerRedis({ url: server().url, client, keyPrefix: uniqueNamespace() }))
  )
}
