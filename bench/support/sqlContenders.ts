/**
 * The contenders of the durable-store suite behind one shape: `get`, `set`, `list(prefix)` and `compareAndSet`,
 * returning an Effect or a Promise. effect-kv on each backend (memory and Redis for scale), and on PostgreSQL and
 * SQLite the peers on the same database: Keyv's `@keyv/postgres` and `@keyv/sqlite`, and Effect's own
 * `KeyValueStore.layerSql`. Each runs with its defaults, as its users get it; a peer without an operation has none.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import KeyvPostgres from "@keyv/postgres"
import KeyvSqlite from "@keyv/sqlite"
import { type BaseKvStore, BaseKvStoreService, memoryKvStore } from "effect-kv"
import { layerRedis } from "effect-kv/redis"
import { layerPg, layerSql } from "effect-kv/sql"
import { layerSqlite } from "effect-kv/sqlite"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as KeyValueStore from "effect/persistence/KeyValueStore"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import type * as SqlClient from "effect/sql/SqlClient"
import Keyv from "keyv"
import * as path from "node:path"
import * as SqliteClient from "../../test/support/SqliteClient.ts"

export const SQL_CONTENDERS = [
  "memory",
  "redis",
  "sqlite",
  "sqlite-normal",
  "sql-sqlite",
  "keyv-sqlite",
  "effect-sqlite",
  "pg",
  "keyv-postgres",
  "effect-pg"
] as const
export type SqlContenderName = typeof SQL_CONTENDERS[number]

export const isSqlContenderName = (name: string): name is SqlContenderName =>
  (SQL_CONTENDERS as ReadonlyArray<string>).includes(name)

/** Display names, as the tables use them. */
export const sqlContenderLabel: Record<SqlContenderName, string> = {
  "memory": "effect-kv memoryKvStore",
  "redis": "effect-kv layerRedis",
  "sqlite": "effect-kv layerSqlite (synchronous FULL)",
  "sqlite-normal": "effect-kv layerSqlite (synchronous NORMAL)",
  "sql-sqlite": "effect-kv layerSql over a SQLite SqlClient",
  "keyv-sqlite": "Keyv @keyv/sqlite",
  "effect-sqlite": "Effect KeyValueStore.layerSql (SQLite)",
  "pg": "effect-kv layerPg",
  "keyv-postgres": "Keyv @keyv/postgres",
  "effect-pg": "Effect KeyValueStore.layerSql (PostgreSQL)"
}

/** The database each contender is on: ratios compare a peer with effect-kv on the same one. */
export const databaseOf: Record<SqlContenderName, "memory" | "redis" | "sqlite" | "pg"> = {
  "memory": "memory",
  "redis": "redis",
  "sqlite": "sqlite",
  "sqlite-normal": "sqlite",
  "sql-sqlite": "sqlite",
  "keyv-sqlite": "sqlite",
  "effect-sqlite": "sqlite",
  "pg": "pg",
  "keyv-postgres": "pg",
  "effect-pg": "pg"
}

export interface Ops<X> {
  readonly get: (key: string) => X
  readonly set: (key: string, value: string) => X
  /** The keys under the prefix, stripped and sorted, as effect-kv's `list` returns them. */
  readonly list: (prefix: string) => X
  /** `undefined`: the store has no compare-and-set. */
  readonly compareAndSet: ((key: string, expected: string, next: string) => X) | undefined
  readonly fill: (entries: ReadonlyArray<readonly [string, string]>) => X
}

interface Common {
  readonly name: SqlContenderName
  /** How `list` is done, for the table. */
  readonly listHow: string
  readonly close: () => Promise<void>
}

export type SqlContender =
  | Common & { readonly kind: "effect"; readonly ops: Ops<Effect.Effect<unknown, unknown>> }
  | Common & { readonly kind: "promise"; readonly ops: Ops<Promise<unknown>> }

export interface Where {
  readonly pgUrl: string
  readonly redisUrl: string
  /** A directory for the SQLite files; each contender has its own. */
  readonly dir: string
}

const stripSorted = (keys: Iterable<string>, prefix: string): Array<string> => {
  const found: Array<string> = []
  for (const key of keys) if (key.startsWith(prefix)) found.push(key.slice(prefix.length))
  return found.sort()
}

const built = async <I, S>(layer: Layer.Layer<I, unknown>, tag: Context.Key<I, S>) => {
  const scope = Scope.makeUnsafe()
  const context = await Effect.runPromise(Scope.provide(Layer.build(layer), scope))
  return { service: Context.get(context, tag), close: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
}

const effectKv = async (
  name: SqlContenderName,
  layer: Layer.Layer<BaseKvStoreService, unknown>
): Promise<SqlContender> => {
  const { close, service: store } = await built<BaseKvStoreService, BaseKvStore>(layer, BaseKvStoreService)
  return {
    name,
    kind: "effect",
    listHow: name === "memory" ? "B+ tree range" : name === "redis" ? "SCAN" : "primary-key range",
    close,
    ops: {
      get: store.get,
      set: store.set,
      list: store.list,
      compareAndSet: store.compareAndSet,
      fill: (entries) =>
        Effect.forEach(
          Array.from({ length: Math.ceil(entries.length / 5000) }, (_, i) => entries.slice(i * 5000, (i + 1) * 5000)),
          (chunk) => store.setMany(chunk),
          { discard: true }
        )
    }
  }
}

const effectKeyValueStore = async (
  name: SqlContenderName,
  client: Layer.Layer<SqlClient.SqlClient, unknown>
): Promise<SqlContender> => {
  const { close, service: store } = await built(
    KeyValueStore.layerSql({ table: "bench_effect" }).pipe(Layer.provide(client)),
    KeyValueStore.KeyValueStore
  )
  return {
    name,
    kind: "effect",
    listHow: "keys (every key) + filter",
    close,
    ops: {
      get: store.get,
      set: store.set,
      list: (prefix) => Effect.map(store.keys, (keys) => stripSorted(keys, prefix)),
      compareAndSet: undefined,
      fill: (entries) => Effect.forEach(entries, ([key, value]) => store.set(key, value), { discard: true })
    }
  }
}

const keyv = (name: SqlContenderName, keyv: Keyv<string>): SqlContender => ({
  name,
  kind: "promise",
  listHow: "iterator (every entry) + filter",
  close: () => keyv.disconnect(),
  ops: {
    get: (key) => keyv.get(key),
    set: (key, value) => keyv.set(key, value),
    list: async (prefix) => {
      const keys: Array<string> = []
      for await (const [key] of keyv.iterator!(undefined)) keys.push(key as string)
      return stripSorted(keys, prefix)
    },
    compareAndSet: undefined,
    fill: async (entries) => {
      for (let i = 0; i < entries.length; i += 1000) {
        await keyv.setMany(entries.slice(i, i + 1000).map(([key, value]) => ({ key, value })))
      }
    }
  }
})

export const makeSqlContender = async (name: SqlContenderName, where: Where): Promise<SqlContender> => {
  const file = path.join(where.dir, `${name}.db`)
  switch (name) {
    case "memory":
      return effectKv(name, memoryKvStore)
    case "redis":
      return effectKv(name, layerRedis({ url: where.redisUrl, keyPrefix: "bench:" }))
    case "sqlite":
      return effectKv(name, layerSqlite({ filename: file }))
    case "sqlite-normal":
      return effectKv(name, layerSqlite({ filename: file, synchronous: "normal" }))
    case "sql-sqlite":
      return effectKv(name, layerSql().pipe(Layer.provide(SqliteClient.layer({ filename: file }))))
    case "pg":
      return effectKv(name, layerPg({ url: where.pgUrl, table: "bench_effect_kv" }))
    case "effect-sqlite":
      return effectKeyValueStore(name, SqliteClient.layer({ filename: file }))
    case "effect-pg":
      return effectKeyValueStore(name, PgClient.layer({ url: Redacted.make(where.pgUrl) }))
    case "keyv-sqlite":
      return keyv(name, new Keyv<string>({ store: new KeyvSqlite({ uri: `sqlite://${file}` }) }))
    case "keyv-postgres":
      return keyv(name, new Keyv<string>({ store: new KeyvPostgres({ uri: where.pgUrl, table: "bench_keyv" }) }))
  }
}
