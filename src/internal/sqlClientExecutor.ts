/**
 * The SQL store's statements run through an Effect `SqlClient` (`effect-kv/sql`).
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type * as SqlClient from "effect/sql/SqlClient"
import * as SqlError from "effect/sql/SqlError"
import type { BackendReason } from "../BaseKvStore.ts"
import type { Dialect, Executor } from "./sqlStore.ts"

/**
 * SQLSTATEs of a server that cannot serve now but will: class 08 (connection exception), 57P01 admin_shutdown,
 * 57P02 crash_shutdown, 57P03 cannot_connect_now ("the database system is shutting down / starting up", which a
 * restart answers for a second or two). `@effect/sql-pg` reports them as `UnknownError`.
 */
const UNAVAILABLE_SQLSTATE = /^(08...|57P0[123])$/

const sqlState = (reason: unknown): string | undefined => {
  const code = (reason as { cause?: { code?: unknown } }).cause?.code
  return typeof code === "string" ? code : undefined
}

export const reasonOf = (cause: unknown): BackendReason => {
  if (!SqlError.isSqlError(cause)) return "Failure"
  if (UNAVAILABLE_SQLSTATE.test(sqlState(cause.reason) ?? "")) return "Unavailable"
  switch (cause.reason._tag) {
    case "ConnectionError":
      return "Unavailable"
    case "StatementTimeoutError":
    case "LockTimeoutError":
      return "Timeout"
    default:
      return "Failure"
  }
}

export const sqlClientExecutor = (sql: SqlClient.SqlClient, dialect: Dialect): Executor => ({
  dialect,
  describe: dialect === "pg" ? "PostgreSQL" : "SQLite",
  classify: reasonOf,
  rows: (statement) => sql.unsafe<Record<string, unknown>>(statement.text, statement.params),
  // The client reports no affected-row count, so the statement returns what it deleted and the database counts it.
  deleted: (statement) =>
    dialect === "pg"
      ? Effect.map(
        sql.unsafe<{ n: number }>(
          `WITH deleted AS (${statement.text} RETURNING 1) SELECT CAST(count(*) AS INTEGER) AS n FROM deleted`,
          statement.params
        ),
        (rows) => Number(rows[0].n)
      )
      : Effect.map(sql.unsafe(`${statement.text} RETURNING 1 AS deleted`, statement.params), (rows) => rows.length),
  execute: (statement) => Effect.asVoid(sql.unsafe(statement.text, statement.params))
})
