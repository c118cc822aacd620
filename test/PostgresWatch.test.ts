/**
 * watch on PostgreSQL, beyond the conformance suite (SqlPostgres.test.ts runs it, watch checks included): writes from
 * another pool, the trigger installed by the first watch only, and a lost LISTEN session.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import { assert, describe, it } from "@effect/vitest"
import type { WatchEvent } from "effect-kv"
import { layerPg } from "effect-kv/sql"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as SqlClient from "effect/sql/SqlClient"
import * as Stream from "effect/Stream"
import { buildStore, eventually, holds } from "./support/fixtures.ts"
import { uniqueTable, usePostgresServer } from "./support/sqlFixtures.ts"

const server = usePostgresServer()

/** A client of its own, to look at the database from outside the store. */
const pgClient = Effect.suspend(() =>
  Effect.map(
    Layer.build(PgClient.layer({ url: Redacted.make(server().url) })),
    (context) => Context.get(context, SqlClient.SqlClient).withoutTransforms()
  )
).pipe(Effect.orDie)

/** Runs a watch in the background, recording its events. */
const recording = (stream: Stream.Stream<WatchEvent, unknown>) =>
  Effect.gen(function*() {
    const events: Array<WatchEvent> = []
    yield* Effect.forkScoped(Stream.runForEach(stream, (event) => Effect.sync(() => events.push(event))))
    return events
  })

const sawSet = (events: ReadonlyArray<WatchEvent>, key: string) =>
  holds(Effect.sync(() => events.some((event) => event._tag === "Set" && event.key === key)))

describe("sql backend on PostgreSQL: watch", () => {
  it.live(
    "sees writes from another pool, and installs its trigger only when a watch starts",
    () =>
      Effect.gen(function*() {
        const table = uniqueTable()
        const sql = yield* pgClient
        const triggers = Effect.map(
          sql.unsafe<{ n: number }>(
            `SELECT CAST(count(*) AS INTEGER) AS n FROM pg_trigger WHERE tgrelid = '"${table}"'::regclass`
          ),
          (rows) => rows[0].n
        )
        const watcher = yield* buildStore(layerPg({ url: server().url, table }))
        const writer = yield* buildStore(layerPg({ url: server().url, table }))
        yield* writer.set("job:0", "before any watch")
        assert.strictEqual(yield* triggers, 0, "writes pay for NOTIFY only once someone watches")
        const events = yield* recording(watcher.watch("job:"))
        yield* eventually(
          "the watch goes live",
          10_000,
          Effect.andThen(writer.set("job:probe", ""), sawSet(events, "probe"))
        )
        assert.strictEqual(yield* triggers, 1)
        yield* writer.set("job:1", "queued")
        yield* sql.unsafe(`DELETE FROM "${table}" WHERE key = $1`, [Buffer.from("job:1", "utf16le").swap16()])
        yield* eventually(
          "a delete made with plain SQL arrives",
          10_000,
          holds(Effect.sync(() => events.some((event) => event._tag === "Delete" && event.key === "1")))
        )
        const relevant = events.filter((event) => event._tag === "Resync" || event.key === "1")
        // The value is read when the notification arrives: a set already deleted again by then is left out.
        assert.deepStrictEqual(relevant.at(-1), { _tag: "Delete", key: "1" })
        for (const event of relevant.slice(0, -1)) {
          assert.deepStrictEqual(event, { _tag: "Set", key: "1", value: "queued" })
        }
      }).pipe(Effect.scoped),
    30_000
  )

  it.live("a lost LISTEN session yields Resync, then the stream goes on", () =>
    Effect.gen(function*() {
      const table = uniqueTable()
      const sql = yield* pgClient
      const store = yield* buildStore(layerPg({ url: server().url, table }))
      const events = yield* recording(store.watch(""))
      yield* eventually(
        "the watch goes live",
        10_000,
        Effect.andThen(store.set("before", ""), sawSet(events, "before"))
      )
      const killed = yield* sql.unsafe<{ ok: boolean }>(
        "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE query LIKE 'LISTEN %' AND pid <> pg_backend_pid()"
      )
      assert.isAtLeast(killed.length, 1, "the listening session was found and terminated")
      yield* eventually(
        "a write after the new LISTEN arrives",
        15_000,
        Effect.andThen(store.set("after", ""), sawSet(events, "after"))
      )
      const resync = events.findIndex((event) => event._tag === "Resync")
      const after = events.findIndex((event) => event._tag === "Set" && event.key === "after")
      assert.isAtLeast(resync, 0, `a Resync: ${JSON.stringify(events)}`)
      assert.isBelow(resync, after, "the Resync comes before the changes after it")
    }).pipe(Effect.scoped), 30_000)
})
