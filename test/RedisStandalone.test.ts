import { describe } from "@effect/vitest"
import { layerWithPrefix } from "effect-kv"
import { layerRedis } from "effect-kv/redis"
import { conformance } from "effect-kv/testing"
import * as Layer from "effect/Layer"
import { clearedAfterUse, uniqueNamespace, useRedisServer } from "./support/fixtures.ts"

const server = useRedisServer()

// The configurations run side by side (each build has a namespace of its own); the checks of each, in turn.
describe.concurrent("conformance on redis standalone", () => {
  // Each check builds the layer afresh: a new connection and a namespace of its own on the shared server.
  for (const client of ["node-redis", "ioredis"] as const) {
    conformance(
      `redis standalone (${client})`,
      clearedAfterUse(Layer.suspend(() => layerRedis({ url: server().url, client, keyPrefix: uniqueNamespace() })))
    )
  }

  // A view over Redis is a store too: keys under the view's prefix inside the layer's own namespace.
  conformance(
    "withPrefix view over redis standalone (node-redis)",
    Layer.provide(
      layerWithPrefix("view:"),
      clearedAfterUse(Layer.suspend(() => layerRedis({ url: server().url, keyPrefix: uniqueNamespace() })))
    )
  )
})
