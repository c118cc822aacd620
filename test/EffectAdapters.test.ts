import { memoryKvStore } from "effect-kv"
import { layerRedis } from "effect-kv/redis"
import { layerPg, layerSql } from "effect-kv/sql"
import { layerSqlite } from "effect-kv/sqlite"
import { effectAdapters } from "effect-kv/testing"
import * as Layer from "effect/Layer"
import { rootNodes, uniqueNamespace, useRedisCluster, useRedisServer } from "./support/fixtures.ts"
import { usePostgresServer, useSqliteDir } from "./support/sqlFixtures.ts"
import * as SqliteClient from "./support/SqliteClient.ts"

// Effect's KeyValueStore and Persistence (PersistedCache) over every backend: one suite, each layer built afresh.
const redis = useRedisServer()
const cluster = useRedisCluster()
const postgres = usePostgresServer()
const sqlite = useSqliteDir()

effectAdapters("memory", memoryKvStore, { clock: "test" })

for (const client of ["node-redis", "ioredis"] as const) {
  effectAdapters(
    `redis standalone (${client})`,
    Layer.suspend(() => layerRedis({ url: redis().url, client, keyPrefix: uniqueNamespace() }))
  )
  effectAdapters(
    `redis cluster (${client})`,
    Layer.suspend(() =>
      layerRedis({ cluster: { rootNodes: rootNodes(cluster()) }, client, keyPrefix: uniqueNamespace() })
    )
  )
}

effectAdapters("sqlite", Layer.suspend(() => layerSqlite({ filename: sqlite.file() })))
effectAdapters(
  "sql (SQLite through SqlClient)",
  Layer.suspend(() => layerSql().pipe(Layer.provide(SqliteClient.layer({ filename: sqlite.file() }))))
)
effectAdapters("sql (PostgreSQL)", Layer.suspend(() => layerPg({ url: postgres().url, keyPrefix: uniqueNamespace() })))
