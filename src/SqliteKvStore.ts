/**
 * The embedded durable backend: a `BaseKvStore` in one SQLite file, with no server.
 *
 * Provide `layerSqlite({ filename: "./data/kv.db" })` where the program used `memoryKvStore`. Keys survive a restart
 * of the process, and a crash: the file is in WAL mode with `synchronous = FULL`, so a write is in the file (and
 * flushed to the disk) before its effect succeeds, and a process killed with SIGKILL loses no acknowledged write.
 * Several processes on one machine may open the same file: readers never wait, and writers take turns (each waits up
 * to `busyTimeout` for the file's write lock). The file must be on a local disk: SQLite's locks do not work over NFS.
 *
 * The table, key encoding, listing as a range scan, expiry and the purge fiber are those of `effect-kv/sql`, which
 * documents them; only the driver differs. **Which driver:** better-sqlite3 12 when its native addon loads on the
 * running Node, else Node's built-in `node:sqlite` (Node 22.13+), chosen once per process. better-sqlite3 comes
 * first because it is the only one on Node 20, which has no `node:sqlite`, and because `node:sqlite` is still
 * experimental on 22 and 24 (Node prints an `ExperimentalWarning` when it loads). `node:sqlite` is there for a Node
 * the addon was not built for: `npm install` compiles it for the installing Node's ABI, so a `node_modules` installed
 * on Node 20 and run on 22 or 24 fails with "Module did not self-register", and rebuilding needs Node's headers
 * (a download). Both run the same statements on the same file format; connection errors name the driver.
 * `@effect/sql-sqlite-node` has only 4.x betas, which import modules effect 4.1 no longer has. The two drivers, and
 * the same statements through an Effect `SqlClient`, are compared in BENCHMARKS.md (Durable stores).
 *
 * **Blocking.** Both drivers are synchronous: each statement runs on the calling thread, which is what makes them
 * fast (no thread hop per statement). A statement that waits for another process's write lock blocks the event loop
 * for up to `busyTimeout` (default 5 seconds) and then fails with `KvBackendError` reason `"Timeout"`. Keep writes
 * from many processes to one file moderate, or use PostgreSQL.
 *
 * Requires the optional peer dependency `better-sqlite3` (`npm install better-sqlite3`) on Node 20; on Node 22.13+
 * it runs without it, on `node:sqlite`.
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import { type BaseKvStore, BaseKvStoreService, type KvStoreError } from "./BaseKvStore.ts"
import { checkOptions, describeCause, durationMillis, invalidOption } from "./internal/options.ts"
import { loadDriver } from "./internal/sqliteDriver.ts"
import { reasonOf, sqliteExecutor } from "./internal/sqliteExecutor.ts"
import { pruneChanges, sqliteSubscribe } from "./internal/sqliteWatch.ts"
import {
  backendError,
  makeStore,
  migrate,
  probe,
  purgeExpired,
  purgeOnce,
  schema,
  settings,
  type StoreOptions
} from "./internal/sqlStore.ts"

/**
 * Options of `layerSqlite`.
 *
 * @since 0.1.0
 * @category models
 */
export interface LayerSqliteOptions extends StoreOptions {
  /** The database file, created when missing; `":memory:"` for a store that lives as long as the layer. */
  readonly filename: string
  /** The table, created when missing: letters, digits and `_`. Default: `effect_kv`. */
  readonly table?: string | undefined
  /** Namespace prepended to every key; nothing outside it is read, listed or deleted. Default: none. */
  readonly keyPrefix?: string | undefined
  /** How long a write waits for another process's write lock before it fails with `"Timeout"`. Default: 5 seconds. */
  readonly busyTimeout?: Duration.Input | undefined
  /**
   * `"full"` (default): a write is flushed to the disk before it succeeds, so it survives a power loss too.
   * `"normal"`: a write is in the file (in the OS's cache) before it succeeds, so it survives a crash of the process
   * but the last writes before a power loss may be lost; writes are several times faster.
   */
  readonly synchronous?: "full" | "normal" | undefined
  /** How often expired rows are deleted. Default: 1 minute. */
  readonly purgeInterval?: Duration.Input | undefined
}

const open = (options: LayerSqliteOptions, busyTimeoutMs: number) =>
  Effect.gen(function*() {
    const driver = yield* Effect.tryPromise({
      try: () => loadDriver(),
      catch: (cause) => backendError("connect", undefined, "Failure", describeCause(cause), cause)
    })
    return yield* Effect.acquireRelease(
      Effect.try({
        try: () => {
          const db = driver.open(options.filename, { busyTimeoutMs })
          try {
            // WAL: readers do not block the writer, and a commit is one append to the log instead of two writes.
            db.exec("PRAGMA journal_mode = WAL")
            db.exec(`PRAGMA synchronous = ${options.synchronous === "normal" ? "NORMAL" : "FULL"}`)
          } catch (error) {
            db.close()
            throw error
          }
          return db
        },
        catch: (cause) =>
          backendError(
            "connect",
            undefined,
            reasonOf(cause) === "Timeout" ? "Timeout" : "Unavailable",
            `cannot open the SQLite file ${options.filename} (${driver.name}): ${describeCause(cause)}`,
            cause
          )
      }),
      (db) => Effect.sync(() => db.close())
    )
  })

/**
 * Opens the file (creating it and the table when missing), builds a store on it and forks the purge of expired rows
 * into the current scope; closing the scope closes the file. Fails with `KvInputError` (reason `"InvalidOption"`)
 * when an option is invalid, before the file is opened, and with `KvBackendError` (operation `"connect"`) when the
 * file cannot be opened.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeSqliteBaseKvStore = (
  options: LayerSqliteOptions
): Effect.Effect<BaseKvStore, KvStoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const { busyTimeoutMs, store } = yield* checkOptions(() => {
      if (typeof options?.filename !== "string" || options.filename === "") {
        throw invalidOption("sqlite", "filename", "a file path, or \":memory:\"", options?.filename)
      }
      if (options.synchronous !== undefined && options.synchronous !== "full" && options.synchronous !== "normal") {
        throw invalidOption("sqlite", "synchronous", "\"full\" or \"normal\"", options.synchronous)
      }
      return {
        busyTimeoutMs: durationMillis("sqlite", "busyTimeout", options.busyTimeout, "5 seconds"),
        // No statement deadline: a synchronous statement cannot be interrupted; busyTimeout bounds lock waits.
        store: settings(options, undefined, "sqlite")
      }
    })
    const db = yield* open(options, busyTimeoutMs)
    const executor = sqliteExecutor(db)
    yield* migrate(
      Effect.try({ try: () => db.prepare(probe(store.table).text).all(), catch: (cause) => cause }),
      Effect.try({
        try: () => db.transaction(() => schema("sqlite", store.table).forEach((statement) => db.exec(statement))),
        catch: (cause) => cause
      })
    ).pipe(
      Effect.mapError((cause) =>
        backendError(
          "connect",
          undefined,
          reasonOf(cause),
          `cannot create or read the table "${store.table}" in ${options.filename}: ${describeCause(cause)}`,
          cause
        )
      )
    )
    yield* purgeExpired(executor, store)
    // The change log of watches, if one was ever started on this table, is pruned with the expired rows.
    yield* pruneChanges(executor, store.table).pipe(
      Effect.repeat(Schedule.spaced(store.purgeIntervalMs)),
      Effect.forkScoped
    )
    return makeStore(
      executor,
      store,
      undefined,
      (read) =>
        sqliteSubscribe({
          executor,
          table: store.table,
          keyPrefix: store.keyPrefix,
          read,
          purge: purgeOnce(executor, store)
        })
    )
  })

/**
 * A `Layer` providing `BaseKvStoreService` in a SQLite file. The file opens while the layer builds and closes when its
 * scope closes. A bad option fails it with `KvInputError` (reason `"InvalidOption"`) before the file is opened.
 *
 * ```ts
 * program.pipe(Effect.provide(layerSqlite({ filename: "./data/kv.db" })))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSqlite = (options: LayerSqliteOptions): Layer.Layer<BaseKvStoreService, KvStoreError> =>
  Layer.effect(BaseKvStoreService, makeSqliteBaseKvStore(options))
