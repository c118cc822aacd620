/**
 * The SQL backend: a `BaseKvStore` in one table of a PostgreSQL or SQLite database, through Effect's `SqlClient`.
 *
 * Provide `layerSql()` where the program used `memoryKvStore`, with the `SqlClient` your program already has
 * (`PgClient.layer` from `@effect/sql-pg`, or any SQLite client); or `layerPg({ url })`,
 * which builds its own pool, or `layerSqlConfig()`, which reads `DATABASE_URL` / `SQLITE_FILE`. A bad option fails
 * the layer with `KvInputError` (reason `"InvalidOption"`) before it touches the database. The store shares the
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
 * @since 0.1.0
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
import {
  type BaseKvStore,
  BaseKvStoreService,
  type KvInputError,
  type KvStoreError,
  type Telemetry
} from "./BaseKvStore.ts"
import {
  checkOptions,
  describeCause,
  durationMillis,
  invalidOption,
  optionError,
  positiveInteger,
  redactUrl
} from "./internal/options.ts"
import { canListen, pgSubscribe } from "./internal/pgWatch.ts"
import { reasonOf, sqlClientExecutor } from "./internal/sqlClientExecutor.ts"
import { pruneChanges, sqliteSubscribe } from "./internal/sqliteWatch.ts"
import {
  backendError,
  DEFAULT_TIMEOUT,
  type Dialect,
  makeStore,
  migrate,
  probe,
  purgeExpired,
  purgeOnce,
  schema,
  type Settings,
  settings,
  type StoreOptions
} from "./internal/sqlStore.ts"
import { layerSqlite } from "./SqliteKvStore.ts"

/**
 * Options of the SQL store.
 *
 * @since 0.1.0
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
 * rows into the current scope. Fails with `KvInputError` (reason `"InvalidOption"`) when an option is invalid, before
 * any statement, and with `KvBackendError` (operation `"connect"`) when the dialect is not PostgreSQL or SQLite or the
 * table cannot be created.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeSqlBaseKvStore = (
  options: SqlStoreOptions = {}
): Effect.Effect<BaseKvStore, KvStoreError, SqlClient.SqlClient | Scope.Scope> =>
  Effect.flatMap(checkOptions(() => storeSettings(options)), (store) => makeWith(store, undefined))

const storeSettings = (options: SqlStoreOptions) =>
  settings(
    options,
    options.timeout === undefined ? undefined : durationMillis("sql", "timeout", options.timeout, DEFAULT_TIMEOUT)
  )

const makeWith = (
  store: Settings,
  telemetry: Telemetry | undefined
): Effect.Effect<BaseKvStore, KvStoreError, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function*() {
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
    const check = sql.unsafe(probe(store.table).text)
    const create = Effect.forEach(schema(dialect, store.table), (statement) => sql.unsafe(statement), { discard: true })
    yield* migrate(check, sql.withTransaction(create)).pipe(
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
 * @since 0.1.0
 * @category layers
 */
export const layerSql = (
  options: SqlStoreOptions = {}
): Layer.Layer<BaseKvStoreService, KvStoreError, SqlClient.SqlClient> =>
  Layer.effect(BaseKvStoreService, makeSqlBaseKvStore(options))

/**
 * Options of `layerPg`.
 *
 * @since 0.1.0
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

/** The pool's URL, kept `Redacted`: a `postgres://` or `postgresql://` URL, given as a string or `Redacted`. */
const pgUrl = (url: unknown): Redacted.Redacted => {
  const value = Redacted.isRedacted(url) ? Redacted.value(url) : url
  if (typeof value !== "string" || !/^postgres(ql)?:\/\//.test(value)) {
    throw invalidOption(
      "sql",
      "url",
      "a postgres:// or postgresql:// URL",
      typeof value === "string" ? redactUrl(value) : value
    )
  }
  return Redacted.isRedacted(url) ? url as Redacted.Redacted : Redacted.make(value)
}

/**
 * `layerSql` on a PostgreSQL pool of its own, from `@effect/sql-pg` (install it: `npm install @effect/sql-pg`). The
 * pool connects while the layer builds and closes with the layer's scope; a server that cannot be reached fails the
 * layer with `KvBackendError` reason `"Unavailable"`. A bad option (a `url` that is not `postgres://` or
 * `postgresql://` among them) fails it with `KvInputError` (reason `"InvalidOption"`) before it connects.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerPg = (options: LayerPgOptions): Layer.Layer<BaseKvStoreService, KvStoreError> =>
  Layer.effect(
    BaseKvStoreService,
    Effect.gen(function*() {
      const { maxConnections, redacted, statementTimeout, store } = yield* checkOptions(() => ({
        redacted: pgUrl(options.url),
        statementTimeout: durationMillis("sql", "timeout", options.timeout, DEFAULT_TIMEOUT),
        store: settings(options, undefined),
        maxConnections: options.maxConnections === undefined
          ? undefined
          : positiveInteger("sql", "maxConnections", options.maxConnections)
      }))
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
        makeWith(store, pgTelemetry(Redacted.value(redacted), store.table)),
        SqlClient.SqlClient,
        client
      )
    })
  )

/**
 * Options of `layerSqlConfig`: which database, and the store options.
 *
 * @since 0.1.0
 * @category models
 */
export interface SqlConfigOptions extends Omit<SqlStoreOptions, "timeout"> {
  /** PostgreSQL: `layerPg` on this `postgres://` URL. */
  readonly url?: string | Redacted.Redacted | undefined
  /** SQLite: `layerSqlite` from `effect-kv/sqlite` on this file. Give `url` or `filename`, not both. */
  readonly filename?: string | undefined
}

/** The options `layerSqlConfig` reads from the environment when it is not given a `Config`. */
const fromEnvironment: Effect.Effect<SqlConfigOptions, Config.ConfigError | KvInputError> = Effect.gen(function*() {
  const config = yield* Config.all({
    url: Config.option(Config.Redacted("DATABASE_URL")),
    filename: Config.option(Config.String("SQLITE_FILE")),
    table: Config.option(Config.String("KV_TABLE")),
    keyPrefix: Config.option(Config.String("KV_KEY_PREFIX"))
  })
  if (Option.isNone(config.url) && Option.isNone(config.filename)) {
    return yield* optionError("sql", "DATABASE_URL", "set DATABASE_URL (PostgreSQL) or SQLITE_FILE (SQLite)")
  }
  return {
    table: Option.getOrUndefined(config.table),
    keyPrefix: Option.getOrUndefined(config.keyPrefix),
    // DATABASE_URL wins when both are set, as it always has.
    ...(Option.isSome(config.url) ? { url: config.url.value } : { filename: Option.getOrUndefined(config.filename) })
  }
})

const layerFor = ({
  filename,
  url,
  ...store
}: SqlConfigOptions): Effect.Effect<Layer.Layer<BaseKvStoreService, KvStoreError>, KvInputError> =>
  url !== undefined && filename !== undefined
    ? Effect.fail(optionError("sql", "filename", "give url (PostgreSQL) or filename (SQLite), not both"))
    : url !== undefined
    ? Effect.succeed(layerPg({ ...store, url }))
    : filename !== undefined
    ? Effect.succeed(layerSqlite({ ...store, filename }))
    : Effect.fail(optionError("sql", "url", "give url (PostgreSQL) or filename (SQLite)"))

/**
 * `layerPg` or `layerSqlite` with their options from a `Config` (any `ConfigProvider` works), as `@effect/sql-pg`'s
 * `PgClient.layerConfig`: a record of `Config`s, one per option, or one `Config` of all of them.
 *
 * ```ts
 * layerSqlConfig({ url: Config.Redacted("UPLOADS_DB"), table: Config.succeed("uploads_kv") })
 * ```
 *
 * Without an argument it reads these variables:
 *
 * | variable        | option      | meaning                                                                   |
 * | --------------- | ----------- | ------------------------------------------------------------------------- |
 * | `DATABASE_URL`  | `url`       | `postgres://...`: `layerPg` on that server                                |
 * | `SQLITE_FILE`   | `filename`  | a file path: `layerSqlite` from `effect-kv/sqlite` (when no URL)          |
 * | `KV_TABLE`      | `table`     | the table (default `effect_kv`)                                           |
 * | `KV_KEY_PREFIX` | `keyPrefix` | namespace                                                                 |
 *
 * A variable that does not parse fails the layer with `ConfigError`; neither `DATABASE_URL` nor `SQLITE_FILE`, a URL
 * that is not `postgres://`, or an option out of range, with `KvInputError` (reason `"InvalidOption"`), before
 * anything is opened: fall back to another layer with `Layer.catch` if the program can run without a durable store.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSqlConfig = (
  config?: Config.Wrap<SqlConfigOptions>
): Layer.Layer<BaseKvStoreService, KvStoreError | Config.ConfigError> =>
  Layer.unwrap(Effect.flatMap(config === undefined ? fromEnvironment : Config.unwrap(config), layerFor))
