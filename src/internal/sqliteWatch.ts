/**
 * `watch` on SQLite: the store's `subscribe` primitive, on a change-log table that triggers fill and watches poll.
 *
 * SQLite has no notifications between connections, and `PRAGMA data_version` does not change for a connection's own
 * writes, so triggers on the table append every change to `<table>_changes` (`s`, `d` or `x`: a set, a delete, an
 * expired row deleted or overwritten), whatever connection or process writes the file. Writers take turns on the
 * file, so the log's `AUTOINCREMENT` order is commit order. A watch starts at the log's end (from then on it misses
 * nothing) and reads what follows every `POLL_INTERVAL`: one indexed range read, a few microseconds when nothing
 * changed. The value of a set is read when the watch reads the log: the value written or a later one.
 *
 * The triggers are installed by the first watch of a table, so writes pay for the log only once someone watches.
 * Entries older than `LOG_RETENTION` are deleted (by every watch, and by the store's purge); a watch that finds entries
 * missing after its position emits `Resync`. While a watch runs, expired rows are deleted every second, which is how
 * their `Expire` arrives without reads.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type { KvStoreError, WatchSink } from "../BaseKvStore.ts"
import { backendError } from "./backendError.ts"
import { describeCause } from "./options.ts"
import { decodeKey, type Executor, type TableWatchOptions } from "./sqlStore.ts"

/** How often a watch reads the log: the bound on its latency, at a few microseconds per read. */
const POLL_INTERVAL = Duration.millis(50)

/** How long log entries are kept: a watch further behind than this gets `Resync`. */
const LOG_RETENTION_MS = 60_000

/** How often a watch deletes expired rows, so that their `Expire` arrives without reads. */
const EXPIRE_INTERVAL = Duration.seconds(1)

/** Log entries read per poll. */
const BATCH = 1000

/** SQLite's clock in epoch milliseconds, the machine's, as the store's `Date.now()` is. */
const NOW = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"

const logOf = (table: string) => `"${table}_changes"`

const installStatements = (table: string): ReadonlyArray<string> => {
  const log = logOf(table)
  const expired = (row: string) => `${row}.expires_at IS NOT NULL AND ${row}.expires_at <= ${NOW}`
  const append = (op: string, key: string) => `INSERT INTO ${log} (op, key, at) VALUES (${op}, ${key}, ${NOW});`
  return [
    `CREATE TABLE IF NOT EXISTS ${log} (seq INTEGER PRIMARY KEY AUTOINCREMENT, op TEXT NOT NULL, key BLOB NOT NULL, ` +
    `at INTEGER NOT NULL)`,
    `CREATE TRIGGER IF NOT EXISTS "${table}_watch_insert" AFTER INSERT ON "${table}" BEGIN ${
      append("'s'", "NEW.key")
    } END`,
    `CREATE TRIGGER IF NOT EXISTS "${table}_watch_update" AFTER UPDATE ON "${table}" BEGIN ` +
    `INSERT INTO ${log} (op, key, at) SELECT 'x', OLD.key, ${NOW} WHERE ${expired("OLD")}; ${
      append("'s'", "NEW.key")
    } END`,
    `CREATE TRIGGER IF NOT EXISTS "${table}_watch_delete" AFTER DELETE ON "${table}" BEGIN ${
      append(`CASE WHEN ${expired("OLD")} THEN 'x' ELSE 'd' END`, "OLD.key")
    } END`
  ]
}

/** Deletes log entries past their retention; nothing when no watch ever created the log. */
export const pruneChanges = (executor: Executor, table: string): Effect.Effect<void> =>
  Effect.ignore(
    executor.deleted({ text: `DELETE FROM ${logOf(table)} WHERE at < ${NOW} - ?`, params: [LOG_RETENTION_MS] })
  )

export interface SqliteWatchOptions extends TableWatchOptions {
  readonly executor: Executor
}

/** The `subscribe` primitive of a SQLite store. */
export const sqliteSubscribe = (options: SqliteWatchOptions) => {
  const { executor, keyPrefix, purge, read, table } = options
  const log = logOf(table)
  const failed = (what: string) => (cause: unknown) =>
    backendError("watch", undefined, executor.classify(cause), `${what}: ${describeCause(cause)}`, cause)

  const install = Effect.forEach(installStatements(table), (text) => executor.execute({ text, params: [] }), {
    discard: true
  }).pipe(Effect.mapError(failed(`cannot install the change log of "${table}"`)))

  const end = Effect.map(
    executor.rows({ text: `SELECT COALESCE(MAX(seq), 0) AS seq FROM ${log}`, params: [] }),
    (rows) => Number(rows[0].seq)
  )

  return (_prefix: string, sink: WatchSink): Effect.Effect<void, KvStoreError, Scope.Scope> =>
    Effect.gen(function*() {
      yield* install
      // From here on every commit appends after `position`: the subscription is live.
      let position = yield* Effect.mapError(end, failed("cannot read the change log"))
      const poll: Effect.Effect<void, unknown> = Effect.gen(function*() {
        const rows = yield* executor.rows({
          text: `SELECT seq, op, key FROM ${log} WHERE seq > ? ORDER BY seq LIMIT ?`,
          params: [position, BATCH]
        })
        if (rows.length === 0) return
        // Entries are never skipped, only pruned: a hole after the position means some were pruned unread.
        if (Number(rows[0].seq) !== position + 1) sink.emit({ _tag: "Resync" })
        for (const row of rows) {
          position = Number(row.seq)
          const full = decodeKey(row.key)
          if (!full.startsWith(keyPrefix) || full.length === keyPrefix.length) continue
          const key = full.slice(keyPrefix.length)
          if (row.op !== "s") {
            sink.emit({ _tag: row.op === "x" ? "Expire" : "Delete", key })
            continue
          }
          const value = yield* Effect.result(read(key))
          if (value._tag === "Failure") sink.emit({ _tag: "Resync" })
          else if (value.success !== null) sink.emit({ _tag: "Set", key, value: value.success })
        }
        if (rows.length === BATCH) yield* poll
      })
      yield* poll.pipe(
        Effect.catchCause(() => Effect.sync(() => sink.emit({ _tag: "Resync" }))),
        Effect.repeat(Schedule.spaced(POLL_INTERVAL)),
        Effect.forkScoped
      )
      yield* Effect.andThen(purge, pruneChanges(executor, table)).pipe(
        Effect.ignore,
        Effect.repeat(Schedule.spaced(EXPIRE_INTERVAL)),
        Effect.forkScoped
      )
    })
}
