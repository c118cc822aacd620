/**
 * The SQL store itself: the table, the statements and the key encoding shared by `effect-kv/sql` (over Effect's
 * `SqlClient`) and `effect-kv/sqlite` (over better-sqlite3 or node:sqlite). A driver supplies an `Executor` that runs
 * one statement; everything else (what each primitive means in SQL, expiry, error classification, deadlines, the
 * purge fiber) is here once. Blobs come back as `Buffer` from better-sqlite3 and as plain `Uint8Array` from
 * node:sqlite and Effect's clients: the decoders take either.
 *
 * **Keys are bytes.** A key is stored as a BYTEA / BLOB holding its UTF-16 code units, big-endian. Byte order of
 * that encoding is exactly JavaScript string order, so the primary key's own order is the contract's: a prefix is the
 * range `[prefix, successor(prefix))`, `ORDER BY key LIMIT n` is a page, and nothing is sorted after the database.
 * (UTF-8 text under `COLLATE "C"` would order `"\u{1F600}"` after `"\uFF5E"`, the reverse of JavaScript, so a page
 * read in byte order could skip keys.) Bytes also admit `"\0"`, which PostgreSQL's `text` refuses.
 *
 * @internal
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import {
  type BackendReason,
  type BaseKvStore,
  type Expiry,
  type KvStoreError,
  make,
  type MakeOptions,
  type Operation
} from "../BaseKvStore.ts"
import { backendError } from "./backendError.ts"
import { describeCause, durationMillis, invalidOption, namespace } from "./options.ts"
import type { Telemetry } from "./tracing.ts"

/** The dialects the store has statements for. */
/** What a SQL store's watch takes beside its connection: the table, the namespace and two of the store's operations. */
export interface TableWatchOptions {
  readonly table: string
  readonly keyPrefix: string
  /** The store's own `get`, for the value of a set. */
  readonly read: (key: string) => Effect.Effect<string | null, KvStoreError>
  /** One round of deleting expired rows. */
  readonly purge: Effect.Effect<void, unknown>
}

export type Dialect = "pg" | "sqlite"

/** One statement: its text with the dialect's placeholders, and its parameters. */
export interface Statement {
  readonly text: string
  readonly params: ReadonlyArray<unknown>
}

export type Row = Readonly<Record<string, unknown>>

/** How a driver runs statements. Failures carry the driver's own error, which `classify` turns into a reason. */
export interface Executor {
  readonly dialect: Dialect
  /** Runs a statement and succeeds with its rows. */
  readonly rows: (statement: Statement) => Effect.Effect<ReadonlyArray<Row>, unknown>
  /** Runs a DELETE and succeeds with the number of rows it deleted. */
  readonly deleted: (statement: Statement) => Effect.Effect<number, unknown>
  /** Runs a statement that returns no rows and counts none: DDL such as `CREATE TRIGGER`. */
  readonly execute: (statement: Statement) => Effect.Effect<void, unknown>
  /** Why a statement failed, from the driver's error. */
  readonly classify: (cause: unknown) => BackendReason
  /** What the store is talking to, for messages: "PostgreSQL", "SQLite (/data/kv.db)". */
  readonly describe: string
}

export interface Settings {
  readonly table: string
  readonly keyPrefix: string
  /** Deadline of each statement, in milliseconds; `undefined`: none (a synchronous driver cannot be interrupted). */
  readonly timeoutMs: number | undefined
  readonly purgeIntervalMs: number
  /** Rows one purge statement deletes at most, so a purge never holds the table's write lock for long. */
  readonly purgeBatch: number
}

export const DEFAULT_TABLE = "effect_kv"
export const DEFAULT_TIMEOUT: Duration.Input = "5 seconds"
export const DEFAULT_PURGE_INTERVAL: Duration.Input = "1 minute"
const PURGE_BATCH = 1000

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/

/** The options every SQL store takes. */
export interface StoreOptions {
  readonly table?: string | undefined
  readonly keyPrefix?: string | undefined
  readonly purgeInterval?: Duration.Input | undefined
}

/** The options every SQL store takes, checked: throws `KvInputError` naming the first bad one. */
export const settings = (
  options: StoreOptions,
  timeoutMs: number | undefined,
  backend: "sql" | "sqlite" = "sql"
): Settings => {
  const table = options.table ?? DEFAULT_TABLE
  // The name is spliced into statements, so only plain identifiers are accepted: no quoting rules to get wrong.
  if (typeof table !== "string" || !IDENTIFIER.test(table)) {
    throw invalidOption(
      backend,
      "table",
      "an identifier of letters, digits and _ (at most 63, not starting with a digit)",
      options.table
    )
  }
  return {
    table,
    keyPrefix: namespace(backend, "keyPrefix", options.keyPrefix ?? ""),
    timeoutMs,
    purgeIntervalMs: durationMillis(backend, "purgeInterval", options.purgeInterval, DEFAULT_PURGE_INTERVAL),
    purgeBatch: PURGE_BATCH
  }
}

/**
 * Creates the table when it is missing. A table that exists is only probed, so a second start changes nothing. Two
 * processes starting at once may both find it missing; the loser's `CREATE` fails and the probe then decides. A
 * table of that name but another shape survives `CREATE ... IF NOT EXISTS`: the probe after it refuses it.
 */
export const migrate = <E>(
  probe: Effect.Effect<unknown, E>,
  create: Effect.Effect<unknown, E>
): Effect.Effect<void, E> =>
  Effect.catch(probe, () =>
    Effect.matchEffect(create, {
      onFailure: (error) => Effect.catch(Effect.asVoid(probe), () => Effect.fail(error)),
      onSuccess: () => Effect.asVoid(probe)
    }))

// --- keys as bytes ---

/**
 * UTF-16 big-endian: comparing the bytes compares the code units, as JavaScript's `<` does. Two bytes per code unit
 * also bound a key of `MAX_KEY_LENGTH` to 2 KiB whatever its script, within PostgreSQL's index entry limit (about
 * 2.7 KB; UTF-8 takes up to 3 KiB for 1024 CJK characters, and a random CJK key that long fails to insert).
 */
export const encodeKey = (key: string): Uint8Array => Buffer.from(key, "utf16le").swap16()

const asBuffer = (bytes: Uint8Array): Buffer =>
  Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

export const decodeKey = (raw: unknown): string => Buffer.from(asBuffer(raw as Uint8Array)).swap16().toString("utf16le")

const encodeValue = (value: string): Uint8Array => Buffer.from(value, "utf8")

const decodeValue = (raw: unknown): string => asBuffer(raw as Uint8Array).toString("utf8")

/**
 * The first byte string after every string that starts with `bytes`: trailing 0xFF bytes dropped, the last byte left
 * plus one. `undefined` for no bound (the empty prefix, or one of 0xFF bytes only).
 */
const successor = (bytes: Uint8Array): Uint8Array | undefined => {
  let end = bytes.length
  while (end > 0 && bytes[end - 1] === 0xFF) end--
  if (end === 0) return undefined
  const next = Buffer.from(bytes.subarray(0, end))
  next[end - 1]++
  return next
}

// --- statements ---

/** Collects parameters while a statement's text is written. */
class Builder {
  readonly params: Array<unknown> = []
  constructor(readonly dialect: Dialect) {}
  p(value: unknown): string {
    this.params.push(value)
    return this.dialect === "pg" ? `$${this.params.length}` : "?"
  }
  /**
   * The current time in epoch milliseconds. PostgreSQL's own clock, so that application servers whose clocks differ
   * agree on expiry (the statement's start: one value for the whole statement); on SQLite, the machine's clock, which
   * every process on the file shares.
   */
  now(): string {
    return this.dialect === "pg"
      ? "CAST(EXTRACT(EPOCH FROM statement_timestamp()) * 1000 AS BIGINT)"
      : this.p(Date.now())
  }
  done(text: string): Statement {
    return { text, params: this.params }
  }
}

export const makeStore = (
  executor: Executor,
  settings: Settings,
  telemetry?: Telemetry,
  /** The backend's `subscribe`, built on the store's own `get` (PostgreSQL's `LISTEN`, SQLite's change log). */
  watch?: (read: (key: string) => Effect.Effect<string | null, KvStoreError>) => MakeOptions["subscribe"]
): BaseKvStore => {
  const { dialect } = executor
  const { keyPrefix, timeoutMs } = settings
  const t = `"${settings.table}"`
  const full = (key: string) => encodeKey(keyPrefix + key)
  const stripLength = (prefix: string) => keyPrefix.length + prefix.length

  const alive = (b: Builder) => `(expires_at IS NULL OR expires_at > ${b.now()})`
  const expiresAt = (b: Builder, expiry: number | null) => expiry === null ? "NULL" : `${b.now()} + ${b.p(expiry)}`
  /** The expiry a key keeps on an overwrite with `"keep"`: its own while it lives, none once it expired. */
  const kept = (b: Builder) => `CASE WHEN ${t}.expires_at > ${b.now()} THEN ${t}.expires_at ELSE NULL END`

  const range = (b: Builder, prefix: string, after: string | null) => {
    const lower = encodeKey(keyPrefix + prefix)
    const upper = successor(lower)
    const from = after === null ? `key >= ${b.p(lower)}` : `key > ${b.p(encodeKey(keyPrefix + prefix + after))}`
    return upper === undefined ? from : `${from} AND key < ${b.p(upper)}`
  }

  const fail = (operation: Operation, key: string | undefined) => (cause: unknown) => {
    const reason = executor.classify(cause)
    return backendError(
      operation,
      key,
      reason,
      `${executor.describe} ${reason === "Unavailable" ? "is unavailable" : "failed"}: ${describeCause(cause)}`,
      cause
    )
  }

  const bounded = <A>(operation: Operation, key: string | undefined, effect: Effect.Effect<A, unknown>) => {
    const classified = Effect.mapError(effect, fail(operation, key))
    return timeoutMs === undefined ? classified : Effect.timeoutOrElse(classified, {
      duration: timeoutMs,
      orElse: () =>
        Effect.fail(
          backendError(operation, key, "Timeout", `${executor.describe} did not answer within ${timeoutMs} ms`)
        )
    })
  }

  /** Builds the statement when the effect runs: `now` must be the time of the run, not of the call. */
  const rows = (operation: Operation, key: string | undefined, statement: (b: Builder) => Statement) =>
    bounded(operation, key, Effect.suspend(() => executor.rows(statement(new Builder(dialect)))))

  const deleted = (operation: Operation, key: string | undefined, statement: (b: Builder) => Statement) =>
    bounded(operation, key, Effect.suspend(() => executor.deleted(statement(new Builder(dialect)))))

  const upsert = (b: Builder, values: string, expiry: Expiry) =>
    `INSERT INTO ${t} (key, value, expires_at) VALUES ${values} ON CONFLICT (key) DO UPDATE SET ` +
    `value = excluded.value, expires_at = ${expiry === "keep" ? kept(b) : "excluded.expires_at"}`

  const insertIfAbsent = (b: Builder, key: string, value: string, expiry: Expiry) =>
    b.done(
      `INSERT INTO ${t} (key, value, expires_at) VALUES (${b.p(full(key))}, ${b.p(encodeValue(value))}, ${
        expiresAt(b, typeof expiry === "number" ? expiry : null)
      }) ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at ` +
        `WHERE ${t}.expires_at IS NOT NULL AND ${t}.expires_at <= ${b.now()} RETURNING 1 AS won`
    )

  const exists = (operation: Operation, key: string) =>
    Effect.map(
      rows(operation, key, (b) => b.done(`SELECT 1 AS found FROM ${t} WHERE key = ${b.p(full(key))} AND ${alive(b)}`)),
      (found) => found.length > 0
    )

  const keysOf = (prefix: string, found: ReadonlyArray<Row>) => {
    const strip = stripLength(prefix)
    return found.map((row) => decodeKey(row.key).slice(strip))
  }

  const listAfter = (operation: Operation, prefix: string, after: string | null, limit: number | undefined) =>
    Effect.map(
      rows(operation, prefix, (b) =>
        b.done(
          `SELECT key FROM ${t} WHERE ${range(b, prefix, after)} AND ${alive(b)} ORDER BY key${
            limit === undefined ? "" : ` LIMIT ${b.p(limit)}`
          }`
        )),
      (found) => keysOf(prefix, found)
    )

  const inList = (b: Builder, keys: ReadonlyArray<string>) => keys.map((key) => b.p(full(key))).join(", ")

  const store: BaseKvStore = make({
    telemetry: telemetry ?? { system: dialect === "pg" ? "postgresql" : "sqlite", collection: settings.table },
    // Reads through the store itself, so a value is decoded and checked as any `get`.
    subscribe: watch?.((key) => store.get(key)),
    get: (key) =>
      Effect.map(
        rows(
          "get",
          key,
          (b) => b.done(`SELECT value FROM ${t} WHERE key = ${b.p(full(key))} AND ${alive(b)}`)
        ),
        (found) => found.length === 0 ? null : decodeValue(found[0].value)
      ),
    set: (key, value, expiry) =>
      Effect.asVoid(rows("set", key, (b) =>
        b.done(
          upsert(
            b,
            `(${b.p(full(key))}, ${b.p(encodeValue(value))}, ${
              expiresAt(b, typeof expiry === "number" ? expiry : null)
            })`,
            expiry
          )
        ))),
    delete: (key) =>
      Effect.asVoid(deleted("delete", key, (b) => b.done(`DELETE FROM ${t} WHERE key = ${b.p(full(key))}`))),
    list: (prefix) => listAfter("list", prefix, null, undefined),
    listAfter: (prefix, after, limit) => listAfter("listPage", prefix, after, limit + 1),
    has: (key) => exists("has", key),
    ttl: (key) =>
      Effect.map(
        rows("ttl", key, (b) =>
          b.done(
            `SELECT CAST(expires_at - ${b.now()} AS DOUBLE PRECISION) AS remaining FROM ${t} WHERE key = ${
              b.p(full(key))
            } AND ${alive(b)}`
          )),
        (found) => found.length === 0 ? null : found[0].remaining === null ? Infinity : Number(found[0].remaining)
      ),
    setIfAbsent: (key, value, expiry) =>
      Effect.map(rows("setIfAbsent", key, (b) => insertIfAbsent(b, key, value, expiry)), (won) => won.length > 0),
    compareAndSet: (key, expected, next, expiry) => {
      if (expected === null) {
        return next === null
          ? Effect.map(exists("compareAndSet", key), (found) => !found)
          : Effect.map(rows("compareAndSet", key, (b) => insertIfAbsent(b, key, next, expiry)), (won) => won.length > 0)
      }
      // One statement: PostgreSQL re-checks the WHERE on the latest row version after waiting for a concurrent
      // writer's lock, and SQLite runs it under the database's write lock, so of racing callers one wins.
      return Effect.map(
        next === null
          ? deleted("compareAndSet", key, (b) =>
            b.done(
              `DELETE FROM ${t} WHERE key = ${b.p(full(key))} AND value = ${b.p(encodeValue(expected))} AND ${alive(b)}`
            ))
          : Effect.map(
            rows("compareAndSet", key, (b) =>
              b.done(
                `UPDATE ${t} SET value = ${b.p(encodeValue(next))}${
                  expiry === "keep" ? "" : `, expires_at = ${expiresAt(b, expiry)}`
                } WHERE key = ${b.p(full(key))} AND value = ${b.p(encodeValue(expected))} AND ${
                  alive(b)
                } RETURNING 1 AS won`
              )),
            (won) => won.length
          ),
        (changed) => changed > 0
      )
    },
    getMany: (keys) =>
      Effect.map(
        rows("getMany", keys[0], (b) =>
          b.done(`SELECT key, value FROM ${t} WHERE key IN (${inList(b, [...new Set(keys)])}) AND ${alive(b)}`)),
        (found) => {
          const values = new Map<string, string>()
          for (const row of found) {
            values.set(decodeKey(row.key).slice(keyPrefix.length), decodeValue(row.value))
          }
          return keys.map((key) =>
            values.get(key) ?? null
          )
        }
      ),
    setMany: (entries, expiry) => {
      // One statement may not touch a row twice (PostgreSQL refuses it): the last entry for a key wins.
      const last = new Map<string, string>()
      for (const [key, value] of entries) last.set(key, value)
      return Effect.asVoid(rows("setMany", entries[0][0], (b) => {
        const values = [...last].map(([key, value]) =>
          `(${b.p(full(key))}, ${b.p(encodeValue(value))}, ${expiresAt(b, typeof expiry === "number" ? expiry : null)})`
        ).join(", ")
        return b.done(upsert(b, values, expiry))
      }))
    },
    deleteMany: (keys) =>
      Effect.asVoid(
        deleted(
          "deleteMany",
          keys[0],
          (b) => b.done(`DELETE FROM ${t} WHERE key IN (${inList(b, [...new Set(keys)])})`)
        )
      ),
    count: (prefix) =>
      Effect.map(
        rows("count", prefix, (b) =>
          b.done(`SELECT CAST(count(*) AS INTEGER) AS n FROM ${t} WHERE ${range(b, prefix, null)} AND ${alive(b)}`)),
        (found) =>
          Number(found[0].n)
      ),
    // Expired rows in the range are left to the purge: they are no keys, so they are not counted.
    clear: (prefix) =>
      deleted("clear", prefix, (b) => b.done(`DELETE FROM ${t} WHERE ${range(b, prefix, null)} AND ${alive(b)}`))
  })
  return store
}

// --- schema and purge ---

/** The statements that create the table and its expiry index, each idempotent. */
export const schema = (dialect: Dialect, table: string): ReadonlyArray<string> => {
  const bytes = dialect === "pg" ? "BYTEA" : "BLOB"
  return [
    // WITHOUT ROWID: SQLite keeps rows in the primary key's b-tree, so a prefix range reads rows in key order.
    `CREATE TABLE IF NOT EXISTS "${table}" (key ${bytes} PRIMARY KEY, value ${bytes} NOT NULL, expires_at BIGINT)${
      dialect === "sqlite" ? " WITHOUT ROWID" : ""
    }`,
    // Partial: keys without expiry, usually most, cost the index nothing.
    `CREATE INDEX IF NOT EXISTS "${table}_expires_at" ON "${table}" (expires_at) WHERE expires_at IS NOT NULL`
  ]
}

/** Succeeds when the table exists with the columns the store reads; the check is a statement that reads no row. */
export const probe = (table: string): Statement => ({
  text: `SELECT key, value, expires_at FROM "${table}" WHERE 1 = 0`,
  params: []
})

/**
 * Deletes expired rows, a batch at a time until none is left, then again every `purgeIntervalMs`: reads already skip
 * them, so this only returns their space. Forked into the layer's scope; a failed round is logged and retried at the
 * next interval.
 */
export const purgeExpired = (
  executor: Executor,
  settings: Settings
): Effect.Effect<void, never, Scope.Scope> =>
  purgeOnce(executor, settings).pipe(
    Effect.catchCause((cause) =>
      Effect.logWarning(`effect-kv: purging expired keys from ${executor.describe} failed`, cause)
    ),
    Effect.repeat(Schedule.spaced(settings.purgeIntervalMs)),
    Effect.asVoid,
    Effect.forkScoped,
    Effect.asVoid
  )

/** Deletes the expired rows, a batch at a time until none is left (a watch runs it every second). */
export const purgeOnce = (executor: Executor, settings: Settings): Effect.Effect<void, unknown> => {
  const t = `"${settings.table}"`
  const round = (): Effect.Effect<void, unknown> =>
    Effect.suspend(() => {
      const b = new Builder(executor.dialect)
      const now = b.now()
      const statement = b.done(
        `DELETE FROM ${t} WHERE key IN (SELECT key FROM ${t} WHERE expires_at <= ${now} LIMIT ${
          b.p(settings.purgeBatch)
        })`
      )
      return Effect.flatMap(executor.deleted(statement), (n) => n >= settings.purgeBatch ? round() : Effect.void)
    })
  return round()
}

export { backendError }
