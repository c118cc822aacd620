import * as PgClient from "@effect/sql-pg/PgClient"
import { assert, describe, it } from "@effect/vitest"
import type { BaseKvStore } from "effect-kv"
import { layerPg, layerSql } from "effect-kv/sql"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as SqlClient from "effect/sql/SqlClient"
import { sqlClientExecutor } from "../src/internal/sqlClientExecutor.ts"
import { makeStore, settings, type Statement } from "../src/internal/sqlStore.ts"
import { buildStore, eventually, holds } from "./support/fixtures.ts"
import { incrementConcurrently } from "./support/processes.ts"
import { checkPrefixesEndingInFF, longCjkKey } from "./support/sqlChecks.ts"
import { uniqueTable, usePostgresServer } from "./support/sqlFixtures.ts"

const server = usePostgresServer()

/** A client of its own, to look at the tables from outside the store. */
const pgClient = Effect.suspend(() =>
  Effect.map(
    Layer.build(PgClient.layer({ url: Redacted.make(server().url) })),
    (context) => Context.get(context, SqlClient.SqlClient).withoutTransforms()
  )
).pipe(Effect.orDie)

const withSql = <A, E>(f: (sql: SqlClient.SqlClient) => Effect.Effect<A, E>) =>
  Effect.scoped(Effect.flatMap(pgClient, f))

const rowCount = (table: string) =>
  withSql((sql) =>
    Effect.map(sql.unsafe<{ n: number }>(`SELECT CAST(count(*) AS INTEGER) AS n FROM "${table}"`), (rows) => rows[0].n)
  )

const failureOf = (exit: Exit.Exit<unknown, unknown>) =>
  Exit.isFailure(exit) ? (exit.cause.reasons[0] as { error?: { _tag: string; reason: string } }).error : undefined

describe("sql backend on PostgreSQL", () => {
  it.live("two processes modifying one key lose no update", () =>
    Effect.gen(function*() {
      const table = uniqueTable()
      yield* incrementConcurrently(server().url, table, "counter", 2, 150)
      const store = yield* buildStore(layerPg({ url: server().url, table }))
      assert.strictEqual(yield* store.get("counter"), "300")
    }).pipe(Effect.scoped), 60_000)

  it.live(
    "expired rows stay in the table until a purge runs; the purge fiber deletes them, again and again",
    () =>
      Effect.gen(function*() {
        const table = uniqueTable()
        // A store whose only purge ran when it started, on an empty table.
        const writer = yield* buildStore(layerPg({ url: server().url, table, purgeInterval: "1 hour" }))
        const writeExpiring = (store: BaseKvStore) =>
          store.setMany(Array.from({ length: 2500 }, (_, i) => [`short:${i}`, "x"] as const), { ttl: "50 millis" })
        yield* writeExpiring(writer)
        yield* writer.set("long", "y")
        yield* eventually("the keys expired", 10_000, holds(Effect.map(writer.count(""), (n) => n === 1)))
        assert.strictEqual(yield* rowCount(table), 2501, "reads skip expired rows, but the rows are still there")
        // More than one purge batch (1000 rows): a purge loops until none is left, and runs every purgeInterval.
        const purging = yield* buildStore(layerPg({ url: server().url, table, purgeInterval: "50 millis" }))
        yield* eventually("expired rows purged", 10_000, holds(Effect.map(rowCount(table), (n) => n === 1)))
        yield* writeExpiring(purging)
        yield* eventually("expired rows purged again", 10_000, holds(Effect.map(rowCount(table), (n) => n === 1)))
        assert.strictEqual(yield* purging.get("long"), "y")
      }).pipe(Effect.scoped),
    30_000
  )

  it.live(
    "a second start only reads the table, so a role that may not create tables can run it",
    () =>
      Effect.gen(function*() {
        const table = uniqueTable()
        const role = `${table}_user`
        yield* Effect.scoped(
          Effect.flatMap(buildStore(layerPg({ url: server().url, table })), (store) => store.set("a", "1"))
        )
        yield* withSql((sql) =>
          Effect.andThen(
            sql.unsafe(`CREATE ROLE "${role}" LOGIN`),
            sql.unsafe(`GRANT SELECT, INSERT, UPDATE, DELETE ON "${table}" TO "${role}"`)
          )
        )
        const url = new URL(server().url)
        url.username = role
        const value = yield* Effect.scoped(
          Effect.flatMap(buildStore(layerPg({ url: url.href, table })), (store) => store.get("a"))
        )
        assert.strictEqual(value, "1")
        // The same role cannot create a table, so a start on a missing one fails, and says why.
        const exit = yield* Effect.exit(Effect.scoped(buildStore(layerPg({ url: url.href, table: `${table}_new` }))))
        assert.strictEqual(failureOf(exit)?._tag, "KvBackendError")
        assert.match(String((failureOf(exit) as any)?.message), /cannot create or read the table/)
      }),
    30_000
  )

  it.live(
    "a server that cannot be reached fails the layer with Unavailable; a bad table name with KvInputError",
    () =>
      Effect.gen(function*() {
        const closed = yield* Effect.exit(
          Effect.scoped(buildStore(layerPg({ url: "postgres://postgres@127.0.0.1:1/postgres" })))
        )
        assert.deepInclude(failureOf(closed), { _tag: "KvBackendError", reason: "Unavailable" })
        const badName = yield* Effect.exit(Effect.scoped(buildStore(layerPg({ url: server().url, table: "a-b" }))))
        assert.deepInclude(failureOf(badName) as object, {
          _tag: "KvInputError",
          operation: "options",
          argument: "table",
          reason: "InvalidOption"
        })
      }),
    30_000
  )

  it.live.skipIf(process.env.EFFECT_KV_TEST_DATABASE_URL !== undefined)(
    "a restarting server (shutting down, starting up: SQLSTATE 57P03) is Unavailable, never Failure",
    () =>
      Effect.gen(function*() {
        const store = yield* buildStore(layerPg({ url: server().url, table: uniqueTable() }))
        yield* store.set("a", "1")
        const restart = yield* Effect.forkChild(server().restart)
        const reasons = new Set<string>()
        while (restart.pollUnsafe() === undefined) {
          const exit = yield* Effect.exit(store.get("a"))
          const failure = failureOf(exit) as { reason?: string; message?: string } | undefined
          if (failure !== undefined) reasons.add(`${failure.reason}: ${failure.message}`)
          yield* Effect.sleep("10 millis")
        }
        yield* Fiber.join(restart)
        assert.strictEqual(yield* eventually("the store answers again", 10_000, store.get("a")), "1")
        assert.isAbove(reasons.size, 0, "the restart was never seen")
        for (const reason of reasons) assert.match(reason, /^(Unavailable|Timeout):/)
      }),
    60_000
  )

  const timeoutLayers = {
    "layerPg: PostgreSQL's statement_timeout": (table: string) =>
      layerPg({ url: server().url, table, timeout: "300 millis" }),
    "layerSql: effect-kv's own deadline": (table: string) =>
      layerSql({ table, timeout: "300 millis" }).pipe(
        Layer.provide(PgClient.layer({ url: Redacted.make(server().url) }))
      )
  }
  for (const [name, layerOf] of Object.entries(timeoutLayers)) {
    it.live(`a statement past the timeout fails with Timeout (${name})`, () =>
      Effect.gen(function*() {
        const table = uniqueTable()
        const store = yield* buildStore(layerOf(table))
        yield* store.set("a", "1")
        const locked = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        // Another connection holds the table's strongest lock, so the store's next statement waits behind it.
        const holder = yield* withSql((sql) =>
          sql.withTransaction(
            sql.unsafe(`LOCK TABLE "${table}" IN ACCESS EXCLUSIVE MODE`).pipe(
              Effect.andThen(Deferred.succeed(locked, undefined)),
              Effect.andThen(Deferred.await(release))
            )
          )
        ).pipe(Effect.forkChild)
        yield* Deferred.await(locked)
        const exit = yield* Effect.exit(store.get("a"))
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(holder)
        assert.deepInclude(failureOf(exit), { _tag: "KvBackendError", reason: "Timeout" })
        assert.strictEqual(yield* store.get("a"), "1")
      }).pipe(Effect.scoped), 30_000)
  }

  it.live(
    "listPage over 1,000,000 keys reads one page: an index range scan of the primary key",
    () =>
      Effect.gen(function*() {
        const table = uniqueTable()
        // The layer creates the table; the rows go in with one statement, as keys the store wrote would look.
        yield* Effect.scoped(buildStore(layerPg({ url: server().url, table })))
        yield* withSql((sql) =>
          Effect.andThen(
            sql.unsafe(
              // UTF-16 big-endian, as the store encodes keys: a zero byte before each ASCII byte.
              `INSERT INTO "${table}" (key, value) SELECT decode(regexp_replace(encode(convert_to(` +
                `'key:' || lpad(i::text, 7, '0'), 'UTF8'), 'hex'), '(..)', '00\\1', 'g'), 'hex'), ` +
                `convert_to('v', 'UTF8') FROM generate_series(0, 999999) AS i`
            ),
            sql.unsafe(`ANALYZE "${table}"`)
          )
        )
        const sql = yield* pgClient
        yield* Effect.scoped(
          Effect.flatMap(
            buildStore(layerSql({ table }).pipe(Layer.provide(Layer.succeed(SqlClient.SqlClient, sql)))),
            (store) => Effect.map(store.count("key:"), (n) => assert.strictEqual(n, 1_000_000))
          )
        )

        // The store with the statements it runs recorded, to ask PostgreSQL how it ran them.
        const seen: Array<Statement> = []
        const executor = sqlClientExecutor(sql, "pg")
        const store = makeStore({
          ...executor,
          rows: (statement) => Effect.suspend(() => (seen.push(statement), executor.rows(statement)))
        }, settings({ table }, 5_000))
        const pad = (i: number) => String(i).padStart(7, "0")
        const first = yield* store.listPage("key:05", { limit: 100 })
        assert.deepStrictEqual(first.keys, Array.from({ length: 100 }, (_, i) => pad(500_000 + i).slice(2)))
        const second = yield* store.listPage("key:05", { limit: 100, cursor: first.cursor })
        assert.deepStrictEqual(second.keys, Array.from({ length: 100 }, (_, i) => pad(500_100 + i).slice(2)))
        assert.strictEqual(seen.length, 2)
        for (const { params, text } of seen) {
          const [row] = yield* sql.unsafe<{ "QUERY PLAN": unknown }>(
            `EXPLAIN (ANALYZE, FORMAT JSON) ${text}`,
            params
          )
          const plan = JSON.stringify(row["QUERY PLAN"])
          const nodes = [...plan.matchAll(/"Node Type":"([^"]+)"/g)].map((match) => match[1])
          assert.notInclude(nodes, "Seq Scan", plan)
          assert.notInclude(nodes, "Sort", plan)
          assert.match(plan, new RegExp(`"Index Name":"${table}_pkey"`), plan)
          // What the index scan returned: one page and the key that tells whether another follows.
          const scanned = [...plan.matchAll(/"Node Type":"Index (?:Only )?Scan".*?"Actual Rows":(\d+)/g)]
          assert.strictEqual(scanned.length, 1, plan)
          assert.isAtMost(Number(scanned[0][1]), 101, plan)
        }
      }).pipe(Effect.scoped),
    240_000
  )

  it.live(
    "a key of MAX_KEY_LENGTH random CJK characters is stored; prefixes ending in 0xFF bytes list exactly",
    () =>
      Effect.gen(function*() {
        const store = yield* buildStore(layerPg({ url: server().url, table: uniqueTable(), keyPrefix: "ns:" }))
        const key = longCjkKey()
        yield* store.set(key, "long")
        assert.strictEqual(yield* store.get(key), "long")
        assert.deepStrictEqual(yield* store.list(key.slice(0, 10)), [key.slice(10)])
        yield* store.delete(key)
        yield* checkPrefixesEndingInFF(store)
      }).pipe(Effect.scoped),
    30_000
  )
})
