/**
 * The SQLite driver under `effect-kv/sqlite`: better-sqlite3 when its native addon loads on the running Node, else
 * Node's built-in `node:sqlite`. Both are synchronous and run SQLite in the calling thread; this module gives them one
 * shape (open, prepare, run, transaction, close, error reasons), so that the executor, the layer and the tests never
 * ask which one they have.
 *
 * Why better-sqlite3 first: it is the only one on Node 20 (which has no `node:sqlite`), and on 22 and 24
 * `node:sqlite` is still experimental (it prints an `ExperimentalWarning` when loaded). Why a fallback at all: the
 * addon is compiled for one Node ABI when it is installed, so a `node_modules` installed on Node 20 cannot load it on
 * Node 22 or 24 ("Module did not self-register"), and rebuilding it needs Node's headers, which a machine without
 * network access does not have.
 *
 * @internal
 */
import type BetterSqlite3 from "better-sqlite3"
import * as SqlError from "effect/sql/SqlError"
import type * as NodeSqlite from "node:sqlite"
import { describeCause } from "./options.ts"
import type { Row } from "./sqlStore.ts"

export type DriverName = "better-sqlite3" | "node:sqlite"

/** A prepared statement. */
export interface SqliteStatement {
  /** Runs the statement and returns its rows: none for a statement without result columns (an upsert). */
  readonly all: (...params: ReadonlyArray<unknown>) => ReadonlyArray<Row>
  /** Runs the statement and returns how many rows it inserted, updated or deleted. */
  readonly run: (...params: ReadonlyArray<unknown>) => number
}

/** An open database file. */
export interface SqliteDatabase {
  readonly driver: DriverName
  /** The file, as it was opened. */
  readonly name: string
  readonly prepare: (text: string) => SqliteStatement
  /** Runs one or more statements that return nothing (pragmas, DDL). */
  readonly exec: (sql: string) => void
  /** Runs `f` in `BEGIN IMMEDIATE` ... `COMMIT`, rolled back when it throws. */
  readonly transaction: <A>(f: () => A) => A
  readonly inTransaction: () => boolean
  readonly close: () => void
}

export interface OpenOptions {
  /** How long a statement waits for another connection's lock before it fails with SQLITE_BUSY. Default: 0. */
  readonly busyTimeoutMs?: number | undefined
  readonly readonly?: boolean | undefined
}

export interface SqliteDriver {
  readonly name: DriverName
  /** Opens (and, unless read-only, creates) the file; throws the driver's error. */
  readonly open: (filename: string, options?: OpenOptions) => SqliteDatabase
}

const transactionOf = (exec: (sql: string) => void) => <A>(f: () => A): A => {
  // IMMEDIATE: the write lock is taken (waiting up to the busy timeout) before the first statement, so a transaction
  // never fails half-way with SQLITE_BUSY when it upgrades a read lock.
  exec("BEGIN IMMEDIATE")
  try {
    const result = f()
    exec("COMMIT")
    return result
  } catch (error) {
    try {
      exec("ROLLBACK")
    } catch {
      // SQLite rolls back by itself after some errors (SQLITE_FULL, SQLITE_IOERR): then there was nothing to undo.
    }
    throw error
  }
}

const noRows: ReadonlyArray<Row> = []

const betterSqlite3 = (Database: typeof BetterSqlite3): SqliteDriver => ({
  name: "better-sqlite3",
  open: (filename, options = {}) => {
    const db = new Database(filename, { timeout: options.busyTimeoutMs ?? 0, readonly: options.readonly ?? false })
    const exec = (sql: string) => void db.exec(sql)
    const inTransaction = () => db.inTransaction
    return {
      driver: "better-sqlite3",
      name: filename,
      prepare: (text) => {
        const statement = db.prepare(text)
        // better-sqlite3 refuses `all` on a statement without result columns (an upsert without RETURNING).
        return {
          all: statement.reader
            ? (...params) => statement.all(...params) as ReadonlyArray<Row>
            : (...params) => (statement.run(...params), noRows),
          run: (...params) => statement.run(...params).changes
        }
      },
      exec,
      transaction: transactionOf(exec),
      inTransaction,
      close: () => db.close()
    }
  }
})

const nodeSqlite = ({ DatabaseSync }: typeof NodeSqlite): SqliteDriver => ({
  name: "node:sqlite",
  open: (filename, options = {}) => {
    const db = new DatabaseSync(filename, { readOnly: options.readonly ?? false })
    const exec = (sql: string) => db.exec(sql)
    // `isTransaction` is Node 22.16+ (and 24); on 22.13 to 22.15 it is missing and this says false.
    const inTransaction = () => db.isTransaction === true
    try {
      // A pragma rather than the `timeout` option, which Node 22 has only from 22.16.
      exec(`PRAGMA busy_timeout = ${Math.trunc(options.busyTimeoutMs ?? 0)}`)
    } catch (error) {
      db.close()
      throw error
    }
    return {
      driver: "node:sqlite",
      name: filename,
      prepare: (text) => {
        const statement: NodeSqlite.StatementSync = db.prepare(text)
        // `all` on a statement without result columns runs it and returns []; blobs come back as Uint8Array.
        return {
          all: (...params) => statement.all(...params as Array<NodeSqlite.SQLInputValue>) as ReadonlyArray<Row>,
          run: (...params) => Number(statement.run(...params as Array<NodeSqlite.SQLInputValue>).changes)
        }
      },
      exec,
      transaction: transactionOf(exec),
      inTransaction,
      close: () => db.close()
    }
  }
})

/** better-sqlite3 when it loads and opens a database here, else node:sqlite; rejects when neither is available. */
const choose = async (): Promise<SqliteDriver> => {
  let betterSqlite3Failure: string
  try {
    const driver = betterSqlite3((await import("better-sqlite3")).default)
    // The addon is loaded by the first `new Database`, not by the import: open one to know that it loads.
    driver.open(":memory:").close()
    return driver
  } catch (cause) {
    betterSqlite3Failure = describeCause(cause)
  }
  // Never imported statically, so that Node 20, which has no node:sqlite, can load this module.
  const builtin = process.getBuiltinModule?.("node:sqlite") as typeof NodeSqlite | undefined
  if (builtin !== undefined) return nodeSqlite(builtin)
  throw new Error(
    `no SQLite driver: better-sqlite3 did not load (${betterSqlite3Failure}), and Node ${process.version} has no ` +
      `node:sqlite (Node 22.13+); install better-sqlite3 for this Node: npm install better-sqlite3`
  )
}

let chosen: Promise<SqliteDriver> | undefined

/**
 * The driver for this process, chosen on the first call: which one loads cannot change while the process runs, and a
 * failed attempt to load the addon costs a search of its paths each time.
 */
export const loadDriver = (): Promise<SqliteDriver> => {
  if (chosen === undefined) {
    chosen = choose()
    // A failure (neither driver) is not remembered: `npm install better-sqlite3` may fix it without a restart.
    chosen.catch(() => chosen = undefined)
  }
  return chosen
}

/** node:sqlite's errors carry Node's code "ERR_SQLITE_ERROR" and SQLite's result code as the number `errcode`. */
const nodeSqliteResultCode = (cause: unknown): number | undefined =>
  typeof cause === "object" && cause !== null && (cause as any).code === "ERR_SQLITE_ERROR" &&
    typeof (cause as any).errcode === "number"
    ? (cause as any).errcode
    : undefined

/** A statement on a closed database: better-sqlite3 throws a TypeError, node:sqlite an ERR_INVALID_STATE error. */
const isClosed = (cause: unknown): boolean =>
  (cause instanceof TypeError && /not open/.test(cause.message)) ||
  (cause instanceof Error && (cause as any).code === "ERR_INVALID_STATE" &&
    /not open|finalized/.test(cause.message))

/**
 * Effect's SQL error reason for a driver's error: `LockTimeoutError` for SQLITE_BUSY / SQLITE_LOCKED,
 * `ConnectionError` for a file that cannot be opened or a closed database, and so on. better-sqlite3's errors name
 * SQLite's code (`code: "SQLITE_BUSY"`), which `SqlError.classifySqliteError` reads; a node:sqlite error is classified
 * by its numeric `errcode`, handed over as `errno`, the name Effect's classifier reads numbers from.
 */
export const errorReason = (
  cause: unknown,
  options: { readonly operation?: string } = {}
): SqlError.SqlErrorReason => {
  if (isClosed(cause)) return new SqlError.ConnectionError({ cause, message: "the database is closed", ...options })
  const resultCode = nodeSqliteResultCode(cause)
  return SqlError.classifySqliteError(
    resultCode === undefined
      ? cause
      : Object.assign(new Error(describeCause(cause), { cause }), { errno: resultCode }),
    options
  )
}
