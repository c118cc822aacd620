/**
 * watch on SQLite, beyond the conformance suite (SqliteKvStore.test.ts runs it, watch checks included): writes from
 * another connection and another process, the change log installed by the first watch only, and the same watch
 * through an Effect `SqlClient` (`layerSql`).
 */
import { assert, describe, it } from "@effect/vitest"
import type { WatchEvent } from "effect-kv"
import { layerSql } from "effect-kv/sql"
import { layerSqlite } from "effect-kv/sqlite"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { loadDriver } from "../src/internal/sqliteDriver.ts"
import { buildStore, eventually, holds } from "./support/fixtures.ts"
import { incrementConcurrently } from "./support/processes.ts"
import { uniqueTable, useSqliteDir } from "./support/sqlFixtures.ts"
import * as SqliteClient from "./support/SqliteClient.ts"

const sqlite = useSqliteDir()

// The driver effect-kv/sqlite uses on this Node, to look at the file from outside the store.
const driver = await loadDriver()

/** Runs a watch in the background, recording its events. */
const recording = (stream: Stream.Stream<WatchEvent, unknown>) =>
  Effect.gen(function*() {
    const events: Array<WatchEvent> = []
    yield* Effect.forkScoped(Stream.runForEach(stream, (event) => Effect.sync(() => events.push(event))))
    return events
  })

const sawSet = (events: ReadonlyArray<WatchEvent>, key: string, value?: string) =>
  holds(
    Effect.sync(() =>
      events.some((event) =>
        event._tag === "Set" && event.key === key && (value === undefined || event.value === value)
      )
    )
  )

describe("sqlite backend: watch", () => {
  it.live(
    "sees another connection's writes, and installs its triggers only when a watch starts",
    () =>
      Effect.gen(function*() {
        const filename = sqlite.file()
        const table = uniqueTable()
        const watcher = yield* buildStore(layerSqlite({ filename, table }))
        const writer = yield* buildStore(layerSqlite({ filename, table }))
        const triggers = Effect.sync(() => {
          const db = driver.open(filename, { readonly: true })
          try {
            return (db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?")
              .all(table)[0] as { n: number }).n
          } finally {
            db.close()
          }
        })
        yield* writer.set("job:0", "before any watch")
        assert.strictEqual(yield* triggers, 0, "writes pay for the change log only once someone watches")
        const events = yield* recording(watcher.watch("job:"))
        yield* eventually(
          "the watch goes live",
          10_000,
          Effect.andThen(writer.set("job:probe", ""), sawSet(events, "probe"))
        )
        assert.strictEqual(yield* triggers, 3)
        yield* writer.set("job:1", "queued")
        yield* writer.delete("job:1")
        yield* eventually(
          "the other connection's delete arrives",
          10_000,
          holds(Effect.sync(() => events.some((event) => event._tag === "Delete" && event.key === "1")))
        )
        const relevant = events.filter((event) => event._tag === "Resync" || event.key === "1")
        // The value is read when the watch reads the log: a set already deleted again by then is left out.
        assert.deepStrictEqual(relevant.at(-1), { _tag: "Delete", key: "1" })
        for (const event of relevant.slice(0, -1)) {
          assert.deepStrictEqual(event, { _tag: "Set", key: "1", value: "queued" })
        }
      }).pipe(Effect.scoped),
    30_000
  )

  it.live("sees the writes of other processes on the same file", () =>
    Effect.gen(function*() {
      const filename = sqlite.file()
      const table = uniqueTable()
      const store = yield* buildStore(layerSqlite({ filename, table }))
      const events = yield* recording(store.watch(""))
      yield* eventually("the watch goes live", 10_000, Effect.andThen(store.set("probe", ""), sawSet(events, "probe")))
      yield* incrementConcurrently(filename, table, "counter", 2, 25)
      yield* eventually("the last increment arrives", 10_000, sawSet(events, "counter", "50"))
      const values = events.flatMap((event) =>
        event._tag === "Set" && event.key === "counter" ? [Number(event.value)] : []
      )
      assert.deepStrictEqual(values, [...values].sort((a, b) => a - b), "in commit order")
      assert.isAtLeast(values.length, 2)
    }).pipe(Effect.scoped), 60_000)

  it.live(
    "through a SqlClient (layerSql), sees the writes of another connection, on either layer, to the same file",
    () =>
      Effect.gen(function*() {
        const filename = sqlite.file()
        const table = uniqueTable()
        const overClient = () => layerSql({ table }).pipe(Layer.provide(SqliteClient.layer({ filename })))
        const watcher = yield* buildStore(overClient())
        const writers = [yield* buildStore(overClient()), yield* buildStore(layerSqlite({ filename, table }))]
        const events = yield* recording(watcher.watch("job:"))
        yield* eventually(
          "the watch goes live",
          10_000,
          Effect.andThen(writers[0].set("job:probe", ""), sawSet(events, "probe"))
        )
        for (const [i, writer] of writers.entries()) {
          yield* writer.set(`job:${i}`, `queued by ${i}`)
          yield* writer.delete(`job:${i}`)
          yield* eventually(
            `the delete of writer ${i} arrives`,
            10_000,
            holds(Effect.sync(() => events.some((event) => event._tag === "Delete" && event.key === String(i))))
          )
          const relevant = events.filter((event) => event._tag === "Resync" || event.key === String(i))
          assert.deepStrictEqual(relevant.at(-1), { _tag: "Delete", key: String(i) })
          for (const event of relevant.slice(0, -1)) {
            assert.deepStrictEqual(event, { _tag: "Set", key: String(i), value: `queued by ${i}` })
          }
        }
      }).pipe(Effect.scoped),
    30_000
  )
})
