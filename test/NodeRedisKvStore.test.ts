import { NodeRedis } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { BaseKvStoreService, KvBackendError } from "effect-kv"
import { layerNodeRedis } from "effect-kv/platform-node"
import { conformance } from "effect-kv/testing"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { eventually, uniqueNamespace, useRedisServer } from "./support/fixtures.ts"

const server = useRedisServer()

conformance(
  "redis standalone through @effect/platform-node's NodeRedis",
  Layer.suspend(() =>
    layerNodeRedis({ keyPrefix: uniqueNamespace() }).pipe(Layer.provide(NodeRedis.layer({ url: server().url })))
  )
)

describe("layerNodeRedis", () => {
  it.live("uses the NodeRedis connection and fails at once, typed, while Redis is down", () =>
    Effect.gen(function*() {
      const store = yield* BaseKvStoreService
      const { client } = yield* NodeRedis.NodeRedis
      yield* store.set("k", "v")
      assert.strictEqual(yield* Effect.promise(() => client.get("shared:k")), "v", "written through NodeRedis's client")
      yield* server().kill
      const started = Date.now()
      const error = yield* Effect.flip(store.get("k"))
      assert.instanceOf(error, KvBackendError)
      assert.strictEqual(error.reason, "Unavailable")
      // NodeRedis's client queues commands while reconnecting; effect-kv must not wait in that queue.
      assert.isBelow(Date.now() - started, 1_000)
      yield* server().restart
      yield* eventually("the same store works again once Redis is back", 15_000, store.set("k", "again"))
      assert.strictEqual(yield* store.get("k"), "again")
    }).pipe(
      Effect.provide(
        Layer.suspend(() =>
          layerNodeRedis({ keyPrefix: "shared:" }).pipe(Layer.provideMerge(NodeRedis.layer({ url: server().url })))
        )
      )
    ), 60_000)
})
