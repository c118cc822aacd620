/**
 * The Redis store on the connection a program already has through `@effect/platform-node`'s `NodeRedis` service.
 *
 * Use it when the program provides `NodeRedis.layer(...)` for other reasons (Effect's own persistence modules, rate
 * limiters, queues) and the key-value store should share that connection instead of opening its own:
 *
 * ```ts
 * import { NodeRedis } from "@effect/platform-node"
 * import { layerNodeRedis } from "effect-kv/platform-node"
 *
 * const KvLive = layerNodeRedis({ keyPrefix: "uploads:" }).pipe(Layer.provide(NodeRedis.layer({ url })))
 * ```
 *
 * NodeRedis owns the client: it connects and closes it, and its client queues commands while disconnected. effect-kv
 * still refuses commands while the client is not ready, so they fail at once with `KvBackendError`, and still applies
 * its own per-command deadline. NodeRedis is standalone only; for a cluster use `layerRedis` from `effect-kv/redis`.
 *
 * @since 0.1.0
 */
import { NodeRedis } from "@effect/platform-node/NodeRedis"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type { BaseKvStoreService, KvInputError } from "./BaseKvStore.ts"
import { layerRedisClient, type RedisStoreOptions } from "./RedisKvStore.ts"

/**
 * A `Layer` providing `BaseKvStoreService` on the client of the program's `NodeRedis` service. A bad option fails it
 * with `KvInputError` (reason `"InvalidOption"`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerNodeRedis = (
  options: RedisStoreOptions = {}
): Layer.Layer<BaseKvStoreService, KvInputError, NodeRedis> =>
  layerRedisClient(Effect.map(Effect.service(NodeRedis), (service) => service.client), options)
