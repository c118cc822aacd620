/**
 * Which store the server keeps its records in, chosen in one place from the environment: Redis when `REDIS_URL` or
 * `REDIS_CLUSTER_NODES` is set, the in-memory store otherwise. The rest of the server only asks for
 * `BaseKvStoreService`.
 *
 * A backend is one entry of `backends`: the variables that select it, a description for the start-up line and its
 * layer. A SQL backend joins with one more entry, e.g.
 *
 * ```ts
 * { name: "SQL", selectedBy: ["DATABASE_URL", "SQLITE_FILE"], layer: () => layerSqlConfig() }
 * ```
 *
 * @since 0.2.0
 */
import { type BaseKvStoreService, memoryKvStore } from "effect-kv"
import { layerRedisConfig } from "effect-kv/redis"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"

/**
 * A store the server can run on.
 *
 * @since 0.2.0
 * @category models
 */
export interface Backend {
  readonly name: string
  /** Environment variables whose presence selects this backend; the first backend with one set wins. */
  readonly selectedBy: ReadonlyArray<string>
  readonly layer: () => Layer.Layer<BaseKvStoreService, unknown>
}

/**
 * The backends in order of precedence. Memory is the fallback when none is selected.
 *
 * @since 0.2.0
 * @category models
 */
export const backends: ReadonlyArray<Backend> = [
  { name: "Redis", selectedBy: ["REDIS_CLUSTER_NODES", "REDIS_URL"], layer: layerRedisConfig }
]

/**
 * The chosen store: its layer and a line saying which it is.
 *
 * @since 0.2.0
 * @category models
 */
export interface StoreChoice {
  readonly description: string
  readonly layer: Layer.Layer<BaseKvStoreService, unknown>
}

/**
 * Reads the environment and picks the backend.
 *
 * @since 0.2.0
 * @category constructors
 */
export const choose: Effect.Effect<StoreChoice, Config.ConfigError> = Effect.gen(function*() {
  for (const backend of backends) {
    for (const variable of backend.selectedBy) {
      if (Option.isSome(yield* Config.option(Config.String(variable)))) {
        return { description: `${backend.name} (${variable})`, layer: backend.layer() }
      }
    }
  }
  return {
    description: `in-memory (records are lost on exit; set REDIS_URL to keep them in Redis)`,
    layer: memoryKvStore
  }
})
