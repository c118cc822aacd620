/**
 * The durable-store suite's table (`bench/sql.ts`): PostgreSQL and SQLite contenders beside effect-kv's memory and
 * Redis stores, each row's ratio to effect-kv on the same database.
 */
import type { SqlOp } from "../sql.ts"
import { databaseOf, SQL_CONTENDERS, sqlContenderLabel, type SqlContenderName } from "../support/sqlContenders.ts"
import { count, duration, ratio, spread, type Summary, table } from "../support/stats.ts"
import { pool, type Results, type Section } from "./results.ts"

const sqlSummary = (results: Results, contender: SqlContenderName, op: SqlOp): Summary | undefined =>
  pool(
    (results.sql ?? []).filter((result) => result.contender === contender).flatMap((result) =>
      result.rows.filter((row) => row.op === op && row.stats !== null).map((row) => row.stats!)
    )
  )

const SQL_OPS: ReadonlyArray<readonly [SqlOp, string]> = [
  ["get", "get (hit)"],
  ["set", "set (overwrite)"],
  ["compareAndSet", "compareAndSet"],
  ["list", "list 100 keys"]
]

/** effect-kv's own contender on each database: the peers' ratios are to it. */
const SQL_REFERENCE = { memory: "memory", redis: "redis", sqlite: "sqlite", pg: "pg" } as const

const sqlTable = (results: Results): string => {
  const rows: Array<Array<string>> = []
  const listHow = (contender: SqlContenderName) =>
    (results.sql ?? []).find((result) => result.contender === contender)?.listHow ?? ""
  for (const [op, label] of SQL_OPS) {
    SQL_CONTENDERS.forEach((contender, i) => {
      const summary = sqlSummary(results, contender, op)
      const reference = sqlSummary(results, SQL_REFERENCE[databaseOf[contender]], op)
      const measured = (results.sql ?? []).some((result) => result.contender === contender)
      rows.push([
        i === 0 ? label : "",
        op === "list" && listHow(contender) !== ""
          ? `${sqlContenderLabel[contender]}: ${listHow(contender)}`
          : sqlContenderLabel[contender],
        ...(summary === undefined
          ? [measured ? "no such operation" : "—", "", ""]
          : [duration(summary.median), spread(summary), count(Math.round(1e9 / summary.median))]),
        summary === undefined || reference === undefined ? "—" : ratio(summary.median / reference.median)
      ])
    })
  }
  return table(
    ["operation", "contender", "median / op", "p25 – p75", "ops/s", "× effect-kv on the same database"],
    rows,
    ["l", "l", "r", "r", "r", "r"]
  )
}

export const sqlSections = (results: Results): Array<Section> => {
  const sql = results.sql ?? []
  if (sql.length === 0) return []
  return [{
    title: `Durable stores: PostgreSQL and SQLite beside memory and Redis, ${count(sql[0].size)} keys, 1 in flight`,
    body: sqlTable(results)
  }]
}
