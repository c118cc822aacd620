/**
 * An Effect `SqlClient` over the SQLite driver `effect-kv/sqlite` uses (better-sqlite3, or node:sqlite where its addon
 * does not load), for the tests and benchmarks of `layerSql` on SQLite (and of Effect's own `KeyValueStore.layerSql`).
 * `@effect/sql-sqlite-node` would be the real one, but its only 4.x releases are betas that import
 * `effect/unstable/...` modules effect 4.1 no longer has, and it needs `node:sqlite` (Node 22.5+).
 *
 * One connection behind a semaphore, as Effect's SQLite clients do (`SqlClient.makeSqliteAcquirers`).
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Reactivity from "effect/reactivity/Reactivity"
import * as Semaphore from "effect/Semaphore"
import * as SqlClient from "effect/sql/SqlClient"
import type * as SqlConnection from "effect/sql/SqlConnection"
import { SqlError } from "effect/sql/SqlError"
import * as Statement from "effect/sql/Statement"
import * as Stream from "effect/Stream"
import { errorReason, loadDriver, type SqliteStatement } from "../../src/internal/sqliteDriver.ts"

export interface SqliteClientOptions {
  readonly filename: string
  readonly synchronous?: "FULL" | "NORMAL" | undefined
}

const make = (options: SqliteClientOptions) =>
  Effect.gen(function*() {
    const driver = yield* Effect.promise(() => loadDriver())
    const db = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const db = driver.open(options.filename, { busyTimeoutMs: 5_000 })
        db.exec("PRAGMA journal_mode = WAL")
        db.exec(`PRAGMA synchronous = ${options.synchronous ?? "FULL"}`)
        return db
      }),
      (db) => Effect.sync(() => db.close())
    )
    const prepared = new Map<string, SqliteStatement>()
    const fail = (cause: unknown) => new SqlError({ reason: errorReason(cause, { operation: "execute" }) })
    const execute = (sql: string, params: ReadonlyArray<unknown>) =>
      Effect.try({
        try: () => {
          let statement = prepared.get(sql)
          if (statement === undefined) {
            statement = db.prepare(sql)
            prepared.set(sql, statement)
          }
          return statement.all(...params) as ReadonlyArray<any>
        },
        catch: fail
      })
    const connection: SqlConnection.Connection = {
      execute: (sql, params, transformRows) =>
        transformRows ? Effect.map(execute(sql, params), transformRows) : execute(sql, params),
      executeRaw: (sql, params) => execute(sql, params),
      executeValues: (sql, params) =>
        Effect.map(execute(sql, params), (rows) => rows.map((row: object) => Object.values(row))),
      executeValuesUnprepared: (sql, params) =>
        Effect.map(execute(sql, params), (rows) => rows.map((row: object) => Object.values(row))),
      executeUnprepared: (sql, params, transformRows) =>
        transformRows ? Effect.map(execute(sql, params), transformRows) : execute(sql, params),
      executeStream: () => Stream.die("executeStream is not implemented")
    }
    const semaphore = yield* Semaphore.make(1)
    const acquirers = SqlClient.makeSqliteAcquirers({
      connection: Effect.succeed(connection),
      semaphore,
      isTransaction: () => db.inTransaction()
    })
    return yield* SqlClient.make({
      ...acquirers,
      compiler: Statement.makeCompilerSqlite(),
      driver: driver.name,
      spanAttributes: [["db.system.name", "sqlite"]]
    })
  })

/** A `SqlClient` on one SQLite file, closed with the layer's scope. */
export const layer = (options: SqliteClientOptions): Layer.Layer<SqlClient.SqlClient> =>
  Layer.effect(SqlClient.SqlClient, make(options)).pipe(Layer.provide(Reactivity.layer))
