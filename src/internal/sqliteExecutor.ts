/**
 * The SQL store's statements run on SQLite directly (`effect-kv/sqlite`), through better-sqlite3 or node:sqlite
 * (`sqliteDriver.ts`), prepared once per text.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type { BackendReason } from "../BaseKvStore.ts"
import { errorReason, type SqliteDatabase, type SqliteStatement } from "./sqliteDriver.ts"
import type { Executor, Statement } from "./sqlStore.ts"

/** Distinct statement texts kept prepared: one per operation and batch size in use. */
const STATEMENT_CACHE = 256

export const reasonOf = (cause: unknown): BackendReason => {
  // A closed database is a ConnectionError too: the store's layer has been closed.
  switch (errorReason(cause)._tag) {
    case "ConnectionError":
      return "Unavailable"
    case "LockTimeoutError":
      return "Timeout"
    default:
      return "Failure"
  }
}

export const sqliteExecutor = (db: SqliteDatabase): Executor => {
  const prepared = new Map<string, SqliteStatement>()
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
    describe: `SQLite (${db.name}, ${db.driver})`,
    classify: reasonOf,
    rows: ({ params, text }: Statement) =>
      Effect.try({ try: () => prepare(text).all(...params), catch: (cause) => cause }),
    deleted: ({ params, text }: Statement) =>
      Effect.try({ try: () => prepare(text).run(...params), catch: (cause) => cause }),
    execute: ({ params, text }: Statement) =>
      Effect.try({ try: () => void prepare(text).run(...params), catch: (cause) => cause })
  }
}
