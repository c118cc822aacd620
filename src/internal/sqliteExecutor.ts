/**
 * The SQL store's statements run on better-sqlite3 directly (`effect-kv/sqlite`), prepared once per text.
 *
 * @internal
 */
import type BetterSqlite3 from "better-sqlite3"
import * as Effect from "effect/Effect"
import * as SqlError from "effect/sql/SqlError"
import type { BackendReason } from "../BaseKvStore.ts"
import type { Executor, Row, Statement } from "./sqlStore.ts"

/** Distinct statement texts kept prepared: one per operation and batch size in use. */
const STATEMENT_CACHE = 256

export const reasonOf = (cause: unknown): BackendReason => {
  // better-sqlite3 throws a TypeError for a statement on a closed database: the store's layer has been closed.
  if (cause instanceof TypeError && /not open/.test(cause.message)) return "Unavailable"
  switch (SqlError.classifySqliteError(cause)._tag) {
    case "ConnectionError":
      return "Unavailable"
    case "LockTimeoutError":
      return "Timeout"
    default:
      return "Failure"
  }
}

const noRows: ReadonlyArray<Row> = []

export const sqliteExecutor = (db: BetterSqlite3.Database): Executor => {
  const prepared = new Map<string, BetterSqlite3.Statement>()
  const prepare = (text: string) => {
    let statement = prepared.get(text)
    if (statement === undefined) {
      if (prepared.size >= STATEMENT_CACHE) prepared.clear()
      statement = db.prepare(text)
      prepared.set(text, statement)
    }
    return statement
  }
  return {
    dialect: "sqlite",
    describe: `SQLite (${db.name})`,
    classify: reasonOf,
    rows: ({ params, text }: Statement) =>
      Effect.try({
        try: () => {
          const statement = prepare(text)
          // better-sqlite3 refuses `all` on a statement without result columns (an upsert without RETURNING).
          if (statement.reader) return statement.all(...params) as ReadonlyArray<Row>
          statement.run(...params)
          return noRows
        },
        catch: (cause) => cause
      }),
    deleted: ({ params, text }: Statement) =>
      Effect.try({ try: () => prepare(text).run(...params).changes, catch: (cause) => cause })
  }
}
