/**
 * The SQL backend: a `BaseKvStore` in one table of a PostgreSQL or SQLite database, through Effect's `SqlClient`.
 *
 * Provide `layerSql()` where the program used `memoryKvStore`, with the `SqlClient` your program already has
 * (`PgClient.layer` from `@effect/sql-pg`, or any SQLite client); or `layerPg({ url })`,
 * which builds its own pool, or `layerSqlConfig()`, which reads `DATABASE_URL` / `SQLITE_FILE`. The store shares the
 * client's connections and transactions with the rest of the program. For an embedded store without a server, see
 * `effect-kv/sqlite`, which runs the same statements on better-sqlite3 (or node:sqlite) directly, in about half the
 * time.
 *
 * **The table** (default `effect_kv`) is created when missing, with an index on the expiry column; on later starts
 * the layer only checks that the table has its columns, so it runs with a role that may not create tables. Keys are
 * stored as bytes in an encoding whose byte order is JavaScript string order (see below), values as UTF-8 bytes.
 *
 * **Listing** is a range scan of the primary key: `list`, `count`, `clear` and `listPage` read only the keys under
 * the prefix, O(log n + k), and `listPage` reads one page, whatever the table holds. Keys are stored as UTF-16
 * big-endian bytes, so the database's byte order is the contract's order: no page can skip a key, as one could under
 * `COLLATE "C"`, where `"\u{1F600}"` sorts after `"\uFF5E"` but JavaScript sorts it before.
 *
 * **Expiry** is a column in epoch milliseconds, on PostgreSQL's clock (so application servers whose clocks differ
 * agree) and on the machine's clock on SQLite. Every read skips expired rows; a fiber of the layer deletes them every
 * `purgeInterval` (default 1 minute), a thousand rows per statement.
 *
 * **Atomicity.** Every operation is one statement: `setIfAbsent` is `INSERT ... ON CONFLICT DO UPDATE ... WHERE`
 * the old row expired, `compareAndSet` an `UPDATE` / `DELETE ... WHERE value = $expected`, batches one statement each.
 * They are atomic across connections and processes, and `modify` (get, then compare-and-set, retried) with them.
 *
 * **Failures.** A lost or refused connection fails with `KvBackendError` reason `"Unavailable"`, a statement past its
 * deadline with `"Timeout"`, anything else with `"Failure"`. `layerPg` gives its sessions PostgreSQL's own
 * `statement_timeout` (`timeout`, default 5 seconds): the server cancels a statement that runs or waits for a lock
 * too long, at no cost per statement. Over a client of your own, set `statement_timeout` on it the same way
 * (`startupParameters`); `layerSql`'s `timeout` adds a deadline of effect-kv's own instead, which also covers a
 * connection that stopped answering, for a few microseconds of CPU per statement (a timer and a fiber).
 *
 * **Watching.** `watch` on PostgreSQL is `LISTEN`/`NOTIFY` on a session of its own (with a `PgClient`); on SQLite it is
 * the change log of `effect-kv/sqlite`, installed and polled through the client, so writes of other connections and
 * processes to the file are seen (see the README's table).
 *
 * **Limits.** A value of `MAX_VALUE_LENGTH` is up to 48 MiB as UTF-8: give a `PgClient` of your own
 * `maxMessageSize: 64 * 1024 * 1024` (its default refuses rows above 16 MiB; `layerPg` does this). PostgreSQL indexes
 * at most about 2700 bytes per key, two per UTF-16 code unit: any key the contract allows fits beside a `keyPrefix`
 * of up to about 300 characters. MySQL and SQL Server are not supported: the layer fails at once on them.
 *
 * @since 0.2.0
 */
import * as Config from "effect/Config"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Reactivity from "effect/reactivity/Reactivity"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as SqlClient from "effect/sql/SqlClient"
import { type BaseKvStore, BaseKvStoreService, type KvBackendError, type Telemetry } from "./BaseKvStore.ts"
import { canListen, pgSubscribe } from "./internal/pgWatch.ts"
import { reasonOf, sqlClientExecutor } from "./internal/sqlClientExecutor.ts"
import { pruneChanges, sqliteSubscribe } from "./internal/sqliteWatch.ts"
import {
  backendError,
  DEFAULT_TABLE,
  DEFAULT_TIMEOUT,
  describeCause,
  type Dialect,
  makeStore,
  millis,
  probe,
  purgeExpired,
  purgeOnce,
  schema,
  settings,
  type StoreOptions
} from "./internal/sqlStore.ts"
import { layerSqlite } from "./SqliteKvStore.ts"

/**
 * Options of the SQL store.
 *
 * @since 0.2.0
 * @category models
 */
export interface SqlStoreOptions extends StoreOptions {
  /** The table, created when missing: letters, digits and `_`. Default: `effect_kv`. */
  readonly table?: string | undefined
  /** Namespace prepended to every key; nothing outside it is read, listed or deleted. Default: none. */
  readonly keyPrefix?: string | undefined
  /** A deadline of effect-kv's own on each statement (interrupting it cancels the query). Default: none. */
  readonly timeout?: Duration.Input | undefined
  /** How often expired rows are deleted. Default: 1 minute. */
  readonly purgeInterval?: Duration.Input | undefined
}

/**
 * Creates the table when it is missing. A table that exists is only probed, so a second start changes nothing. Two
 * processes starting at once may both find it missing; the loser's `CREATE` fails and the probe then decides.
 */
const migrate = (sql: SqlClient.SqlClient, dialect: Dialect, table: string) => {
  const check = sql.unsafe(probe(table).text)
  return Effect.catch(
    check,
    () =>
      Effect.forEach(schema(dialect, table), (statement) => sql.unsafe(statement), { discard: true }).pipe(
        sql.withTransaction,
        Effect.catch((error) => Effect.catch(check, () => Effect.fail(error))),
        // A table of that name but another shape survives CREATE ... IF NOT EXISTS: the probe refuses it.
        Effect.andThen(check),
        Effect.asVoid
      )
  )
}

/** The spans' database and server, from the connection URL (never its credentials). */
const pgTelemetry = (url: string, table: string): Telemetry => {
  const parsed = new URL(url)
  const database = decodeURIComponent(parsed.pathname.slice(1)) || decodeURIComponent(parsed.username) || "postgres"
  return {
    system: "postgresql",
    namespace: database,
    collection: table,
    serverAddress: parsed.hostname || "localhost",
    serverPort: Number(parsed.port || 5432)
  }
}

/**
 * Builds a store over the `SqlClient` in the context, creating its table when missing, and forks the purge of expired
 * rows into the current scope. Fails with `KvBackendError` (operation `"connect"`) when the options are invalid, the
 * dialect is not PostgreSQL or SQLite, or the table cannot be created.
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeSqlBaseKvStore = (
  options: SqlStoreOptions = {}
): Effect.Effect<BaseKvStore, KvBackendError, SqlClient.SqlClient | Scope.Scope> => makeWith(options, undefined)

const makeWith = (
  options: SqlStoreOptions,
  telemetry: Telemetry | undefined
): Effect.Effect<BaseKvStore, KvBackendError, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function*() {
    const store = yield* Effect.try({
      try: () =>
        settings(options, options.timeout === undefined ? undefined : millis("timeout", options.timeout, "5 seconds")),
      catch: (cause) => backendError("connect", undefined, "Failure", `invalid options: ${describeCause(cause)}`, cause)
    })
    const client = yield* SqlClient.SqlClient
    const sql = client.withoutTransforms()
    const dialect = sql.onDialectOrElse<Dialect | undefined, Dialect, Dialect>({
      pg: () => "pg",
      sqlite: () => "sqlite",
      orElse: () => undefined
    })
    if (dialect === undefined) {
      return yield* backendError(
        "connect",
        undefined,
        "Failure",
        "effect-kv sql supports PostgreSQL and SQLite; this SqlClient is neither"
      )
    }
    const executor = sqlClientExecutor(sql, dialect)
    yield* migrate(sql, dialect, store.table).pipe(
      Effect.mapError((cause) =>
        backendError(
          "connect",
          undefined,
          reasonOf(cause),
          `cannot create or read the table "${store.table}": ${describeCause(cause)}`,
          cause
        )
      )
    )
    yield* purgeExpired(executor, store)
    if (dialect === "sqlite") {
      // The change log of watches, if one was ever started on this table, is pruned with the expired rows.
      yield* pruneChanges(executor, store.table).pipe(
        Effect.repeat(Schedule.spaced(store.purgeIntervalMs)),
        Effect.forkScoped
      )
    }
    const watchOptions = { table: store.table, keyPrefix: store.keyPrefix, purge: purgeOnce(executor, store) }
    return makeStore(
      executor,
      store,
      telemetry,
      dialect === "sqlite"
        // SQLite has no notifications: the same change log as layerSqlite's, read through the client.
        ? (read) => sqliteSubscribe({ ...watchOptions, executor, read })
        : canListen(client)
        ? (read) => pgSubscribe({ ...watchOptions, client, read })
        : undefined
    )
  })

/**
 * A `Layer` providing `BaseKvStoreService` over the `SqlClient` it is given. The table is created while the layer
 * builds; the purge fiber stops when its scope closes. The client's connections are the client layer's to close.
 *
 * ```ts
 * const kv = layerSql({ table: "uploads_kv" }).pipe(Layer.provide(PgClient.layer({ url: Redacted.make(url) })))
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layerSql = (
  options: SqlStoreOptions = {}
): Layer.Layer<BaseKvStoreService, KvBackendError, SqlClient.SqlClient> =>
  Layer.effect(BaseKvStoreService, makeSqlBaseKvStore(options))

/**
 * Options of `layerPg`.
 *
 * @since 0.2.0
 * @category models
 */
export interface LayerPgOptions extends Omit<SqlStoreOptions, "timeout"> {
  /** `postgres://user:password@host:port/database`. */
  readonly url: string | Redacted.Redacted
  /** PostgreSQL's `statement_timeout` for the pool's sessions. Default: 5 seconds. */
  readonly timeout?: Duration.Input | undefined
  /** Connections in the pool. Default: `@effect/sql-pg`'s. */
  readonly maxConnections?: number | undefined
}

/** Bytes of the largest reply: a row holding a value of `MAX_VALUE_LENGTH` code units, 3 UTF-8 bytes each. */
const MAX_MESSAGE_SIZE = 64 * 1024 * 1024

/** The URL without its password, for messages. */
const redactUrl = (url: string): string => url.replace(/\/\/([^:@/]*):[^@/]*@/, "//$1:***@")

/**
 * `layerSql` on a PostgreSQL pool of its own, from `@effect/sql-pg` (install it: `npm install @effect/sql-pg`). The
 * pool connects while the layer builds and closes with the layer's scope; a server that cannot be reached fails the
 * layer with `KvBackendError` reason `"Unavailable"`.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerPg = (options: LayerPgOptions): Layer.Layer<BaseKvStoreService, KvBackendError> =>
  Layer.effect(
    BaseKvStoreService,
    Effect.gen(function*() {
      const { maxConnections, timeout, url, ...store } = options
      const statementTimeout = yield* Effect.try({
        try: () => millis("timeout", timeout, DEFAULT_TIMEOUT),
        catch: (cause) =>
          backendError("connect", undefined, "Failure", `invalid options: ${describeCause(cause)}`, cause)
      })
      const PgClient = yield* Effect.tryPromise({
        try: () => import("@effect/sql-pg/PgClient"),
        catch: (cause) =>
          backendError(
            "connect",
            undefined,
            "Failure",
            `cannot load @effect/sql-pg; install it: npm install @effect/sql-pg (${describeCause(cause)})`,
            cause
          )
      })
      const redacted = Redacted.isRedacted(url) ? url : Redacted.make(url)
      const client = yield* PgClient.make({
        url: redacted,
        // A value of MAX_VALUE_LENGTH is up to 48 MiB as UTF-8; the client refuses replies above 16 MiB by default.
        maxMessageSize: MAX_MESSAGE_SIZE,
        // The server's deadline costs nothing per statement, and it cancels the statement itself (57014: Timeout).
        startupParameters: { statement_timeout: String(statementTimeout) },
        ...(maxConnections === undefined ? {} : { maxConnections })
      }).pipe(
        Effect.provide(Reactivity.layer),
        Effect.mapError((cause) =>
          backendError(
            "connect",
            undefined,
            reasonOf(cause),
            `cannot connect to ${redactUrl(Redacted.value(redacted))}: ${describeCause(cause)}`,
            cause
          )
        )
      )
      return yield* Effect.provideService(
        makeWith(store, pgTelemetry(Redacted.value(redacted), store.table ?? DEFAULT_TABLE)),
        SqlClient.SqlClient,
        client
      )
    })
  )

/**
 * The store a program configured from the environment runs on (through Effect `Config`, so any `ConfigProvider`
 * works):
 *
 * | variable          | meaning                                                               |
 * | ----------------- | --------------------------------------------------------------------- |
 * | `DATABASE_URL`    | `postgres://...`: `layerPg` on that server                            |
 * | `SQLITE_FILE`     | a file path: `layerSqlite` from `effect-kv/sqlite` (when no URL)      |
 * | `KV_TABLE`        | the table (default `effect_kv`)                                       |
 * | `KV_KEY_PREFIX`   | namespace                                                             |
 *
 * With neither `DATABASE_URL` nor `SQLITE_FILE` the layer fails with `KvBackendError`: fall back to another layer
 * with `Layer.catch` if the program can run without a durable store.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerSqlConfig = (): Layer.Layer<BaseKvStoreService, KvBackendError | Config.ConfigError> =>
  Layer.unwrap(Effect.gen(function*() {
    const config = yield* Config.all({
      url: Config.option(Config.Redacted("DATABASE_URL")),
      file: Config.option(Config.String("SQLITE_FILE")),
      table: Config.option(Config.String("KV_TABLE")),
      keyPrefix: Config.option(Config.String("KV_KEY_PREFIX"))
    })
    const store = { table: Option.getOrUndefined(config.table), keyPrefix: Option.getOrUndefined(config.keyPrefix) }
    if (Option.isSome(config.url)) {
      if (!/^postgres(ql)?:\/\//.test(Redacted.value(config.url.value))) {
        return yield* backendError("connect", undefined, "Failure", "DATABASE_URL must be a postgres:// URL")
      }
      return layerPg({ ...store, url: config.url.value })
    }
    if (Option.isSome(config.file)) {
      return layerSqlite({ ...store, filename: config.file.value })
    }
    return yield* backendError("connect", undefined, "Failure", "set DATABASE_URL (PostgreSQL) or SQLITE_FILE (SQLite)")
  }))
