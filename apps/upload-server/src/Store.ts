/**
 * Which store the server keeps its records in, chosen in one place from the environment: Redis when `REDIS_URL` or
 * `REDIS_CLUSTER_NODES` is set, PostgreSQL when `DATABASE_URL` is, SQLite when `SQLITE_FILE` is, the in-memory store
 * otherwise. The rest of the server only asks for `BaseKvStoreService`.
 *
 * A backend is one entry of `backends`: the variables that select it, a description for the start-up line and its
 * layer. Another backend joins with one more entry.
 *
 * @since 0.1.0
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { type BaseKvStoreService, memoryKvStore } from "effect-kv"
import { layerRedisConfig } from "effect-kv/redis"
import { layerSqlConfig } from "effect-kv/sql"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Path from "node:path"

/** A store the server can run on. */
interface Backend {
  readonly name: string
  /** Environment variables whose presence selects this backend; the first backend with one set wins. */
  readonly selectedBy: ReadonlyArray<string>
  readonly layer: () => Layer.Layer<BaseKvStoreService, unknown>
}

/** The backends in order of precedence. Memory is the fallback when none is selected. */
const backends: ReadonlyArray<Backend> = [
  { name: "Redis", selectedBy: ["REDIS_CLUSTER_NODES", "REDIS_URL"], layer: layerRedisConfig },
  // Both read by `layerSqlConfig`, which also prefers `DATABASE_URL` when both are set: the order here agrees with it.
  { name: "PostgreSQL", selectedBy: ["DATABASE_URL"], layer: layerSqlConfig },
  { name: "SQLite", selectedBy: ["SQLITE_FILE"], layer: () => layerSqliteFile }
]

// SQLite opens a file but not the directories above it: make them, as the server does for DATA_DIR, so that
// `SQLITE_FILE=./data/kv.db npm start` works in a fresh checkout.
const layerSqliteFile: Layer.Layer<BaseKvStoreService, unknown> = Layer.unwrap(
  Effect.gen(function*() {
    const file = yield* Config.String("SQLITE_FILE")
    yield* (yield* FileSystem.FileSystem).makeDirectory(Path.dirname(file), { recursive: true })
    return layerSqlConfig()
  }).pipe(Effect.provide(NodeFileSystem.layer))
)

/**
 * The chosen store: its layer and a line saying which it is.
 *
 * @since 0.1.0
 * @category models
 */
export interface StoreChoice {
  readonly description: string
  readonly layer: Layer.Layer<BaseKvStoreService, unknown>
}

/**
 * Reads the environment and picks the backend.
 *
 * @since 0.1.0
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
    description: `in-memory (records are lost on exit; set REDIS_URL, DATABASE_URL or SQLITE_FILE to keep them)`,
    layer: memoryKvStore
  }
})
