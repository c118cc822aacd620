import { assert, describe, it } from "@effect/vitest"
import { type BaseKvStore, KvInputError } from "effect-kv"
import { layerSqlConfig } from "effect-kv/sql"
import { layerSqlite, type LayerSqliteOptions } from "effect-kv/sqlite"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Fs from "node:fs"
import { loadDriver, type SqliteDatabase } from "../src/internal/sqliteDriver.ts"
import { sqliteExecutor } from "../src/internal/sqliteExecutor.ts"
import { makeStore, settings, type Statement } from "../src/internal/sqlStore.ts"
import { buildStore, eventually, holds } from "./support/fixtures.ts"
import { incrementConcurrently, writeThenKill } from "./support/processes.ts"
import { checkPrefixesEndingInFF, longCjkKey } from "./support/sqlChecks.ts"
import { useSqliteDir } from "./support/sqlFixtures.ts"

const sqlite = useSqliteDir()

// The driver effect-kv/sqlite uses on this Node: better-sqlite3, or node:sqlite where its addon does not load.
const driver = await loadDriver()

/** Reads the file as another connection would: what is on disk, expired rows included. */
const withFile = <A>(filename: string, f: (db: SqliteDatabase) => A): A => {
  const db = driver.open(filename, { readonly: true })
  try {
    return f(db)
  } finally {
    db.close()
  }
}

const rowCount = (filename: string, table = "effect_kv") =>
  withFile(filename, (db) => (db.prepare(`SELECT count(*) AS n FROM "${table}"`).all()[0] as { n: number }).n)

/** The single value a pragma returns. */
const pragma = (filename: string, name: string) =>
  withFile(filename, (db) => Object.values(db.prepare(`PRAGMA ${name}`).all()[0])[0])

const getAll = (store: BaseKvStore, keys: ReadonlyArray<string>) =>
  Effect.map(
    Effect.forEach(
      Array.from({ length: Math.ceil(keys.length / 5000) }, (_, i) => keys.slice(i * 5000, (i + 1) * 5000)),
      (chunk) => store.getMany(chunk)
    ),
    (chunks) => chunks.flat()
  )

describe("sqlite backend", () => {
  it.live("the driver: better-sqlite3 on Node 20, node:sqlite only on a Node where the addon does not load", () =>
    Effect.gen(function*() {
      const addonLoads = yield* Effect.promise(async () => {
        try {
          new (await import("better-sqlite3")).default(":memory:").close()
          return true
        } catch {
          return false
        }
      })
      const major = Number(process.versions.node.split(".")[0])
      // Node 20 has no node:sqlite: there the addon must load (npm ci builds it for the installing Node).
      if (major < 22) assert.isTrue(addonLoads, `better-sqlite3 does not load on Node ${process.version}`)
      assert.strictEqual(driver.name, addonLoads ? "better-sqlite3" : "node:sqlite", `Node ${process.version}`)
      // The layer opens its file with that driver, and names it in its errors.
      const exit = yield* Effect.exit(Effect.scoped(buildStore(layerSqlite({ filename: "/nonexistent-dir/kv.db" }))))
      assert.include(String((exit as any).cause?.reasons?.[0]?.error?.message), `(${driver.name})`)
    }))

  it.live(
    "every write acknowledged before the process was SIGKILLed is in the file when it is reopened",
    () =>
      Effect.gen(function*() {
        const filename = sqlite.file()
        const last = yield* writeThenKill(filename, "effect_kv", 300)
        assert.isAtLeast(last, 299)
        const keys = Array.from({ length: last + 1 }, (_, i) => `k${i}`)
        const values = yield* Effect.scoped(
          Effect.flatMap(buildStore(layerSqlite({ filename })), (store) => getAll(store, keys))
        )
        const missing = keys.filter((_, i) => values[i] !== `v${i}`)
        assert.deepStrictEqual(missing, [], `${missing.length} of ${keys.length} acknowledged writes were lost`)
        assert.strictEqual(pragma(filename, "integrity_check"), "ok")
      }),
    60_000
  )

  it.live("two processes modifying one key lose no update", () =>
    Effect.gen(function*() {
      const filename = sqlite.file()
      yield* incrementConcurrently(filename, "effect_kv", "counter", 2, 300)
      const value = yield* Effect.scoped(Effect.flatMap(buildStore(layerSqlite({ filename })), (s) => s.get("counter")))
      assert.strictEqual(value, "600")
    }), 60_000)

  it.live(
    "expired rows stay in the file until a purge runs; the purge fiber deletes them, again and again",
    () =>
      Effect.gen(function*() {
        const filename = sqlite.file()
        // A store whose only purge ran when it started, on an empty file.
        const writer = yield* buildStore(layerSqlite({ filename, purgeInterval: "1 hour" }))
        const writeExpiring = (store: BaseKvStore) =>
          store.setMany(Array.from({ length: 2500 }, (_, i) => [`short:${i}`, "x"] as const), { ttl: "30 millis" })
        yield* writeExpiring(writer)
        yield* writer.set("long", "y")
        yield* eventually("the keys expired", 10_000, holds(Effect.map(writer.count(""), (n) => n === 1)))
        assert.strictEqual(rowCount(filename), 2501, "reads skip expired rows, but the rows are still there")
        // More than one purge batch (1000 rows): a purge loops until none is left, and runs every purgeInterval.
        const purging = yield* buildStore(layerSqlite({ filename, purgeInterval: "50 millis" }))
        yield* eventually("expired rows purged", 10_000, holds(Effect.sync(() => rowCount(filename) === 1)))
        yield* writeExpiring(purging)
        yield* eventually("expired rows purged again", 10_000, holds(Effect.sync(() => rowCount(filename) === 1)))
        assert.strictEqual(yield* purging.get("long"), "y")
      }).pipe(Effect.scoped),
    30_000
  )

  it.live("no purge fiber runs after the layer's scope closed", () =>
    Effect.gen(function*() {
      const filename = sqlite.file()
      yield* Effect.scoped(
        Effect.flatMap(
          buildStore(layerSqlite({ filename, purgeInterval: "20 millis" })),
          (store) => store.set("gone", "x", { ttl: "1 millis" })
        )
      )
      // The file is closed with the scope, so a purge that still ran would fail on it or delete the row.
      yield* Effect.sleep("200 millis")
      assert.strictEqual(rowCount(filename), 1)
    }), 10_000)

  it.live("a second start finds the table and changes no schema; the data is still there", () =>
    Effect.gen(function*() {
      const filename = sqlite.file()
      yield* Effect.scoped(Effect.flatMap(buildStore(layerSqlite({ filename })), (store) => store.set("a", "1")))
      const version = pragma(filename, "schema_version")
      const value = yield* Effect.scoped(Effect.flatMap(buildStore(layerSqlite({ filename })), (s) => s.get("a")))
      assert.strictEqual(value, "1")
      assert.strictEqual(pragma(filename, "schema_version"), version)
      assert.strictEqual(pragma(filename, "journal_mode"), "wal")
    }))

  it.live("a table of another shape or a missing directory fail the layer with KvBackendError", () =>
    Effect.gen(function*() {
      const filename = sqlite.file()
      const db = driver.open(filename)
      db.exec(`CREATE TABLE other (id TEXT PRIMARY KEY, value BLOB NOT NULL, value_type INTEGER NOT NULL)`)
      db.close()
      for (const options of [{ filename, table: "other" }, { filename: "/nonexistent-dir/kv.db" }]) {
        const exit = yield* Effect.exit(Effect.scoped(buildStore(layerSqlite(options))))
        assert.isTrue(Exit.isFailure(exit), JSON.stringify(options))
        const error = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
        assert.strictEqual((error as any)?.error?._tag, "KvBackendError", JSON.stringify(options))
      }
      assert.strictEqual(rowCount(filename, "other"), 0)
    }))

  it.live("a bad option fails the layer with KvInputError naming it, before the file is opened", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [LayerSqliteOptions, string, string]> = [
        [{ filename: sqlite.file(), table: "bad name\"; DROP TABLE other; --" }, "table", "an identifier"],
        [{ filename: sqlite.file(), synchronous: "off" as never }, "synchronous", "received \"off\""],
        [{ filename: sqlite.file(), busyTimeout: "0 millis" }, "busyTimeout", "a duration from 1 ms"],
        [{ filename: sqlite.file(), purgeInterval: "2 secs" as never }, "purgeInterval", "received \"2 secs\""],
        [{ filename: sqlite.file(), keyPrefix: "\uD800" }, "keyPrefix", "without lone surrogates"],
        [{ filename: "" }, "filename", "a file path"]
      ]
      for (const [options, option, mentions] of cases) {
        const error = yield* Effect.flip(Effect.scoped(buildStore(layerSqlite(options))))
        assert.instanceOf(error, KvInputError, option)
        assert.deepInclude(error, { operation: "options", argument: option, reason: "InvalidOption" })
        assert.match(error.message, new RegExp(`^effect-kv sqlite: ${option} must be`))
        assert.include(error.message, mentions)
        assert.isFalse(options.filename !== "" && Fs.existsSync(options.filename), `${option}: no file was created`)
      }
    }))

  it.live("a write behind another connection's write lock fails with Timeout; a closed store with Unavailable", () =>
    Effect.gen(function*() {
      const filename = sqlite.file()
      const failureOf = (exit: Exit.Exit<unknown, unknown>) => Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
      const store = yield* buildStore(layerSqlite({ filename, busyTimeout: "50 millis" }))
      yield* store.set("a", "1")
      const holder = driver.open(filename, { busyTimeoutMs: 50 })
      holder.exec("BEGIN IMMEDIATE")
      const locked = yield* Effect.exit(store.set("a", "2"))
      holder.exec("ROLLBACK")
      holder.close()
      assert.deepInclude((failureOf(locked) as any)?.error, { _tag: "KvBackendError", reason: "Timeout" })
      assert.strictEqual(yield* store.get("a"), "1")

      const closed = yield* Effect.scoped(buildStore(layerSqlite({ filename })))
      const exit = yield* Effect.exit(closed.get("a"))
      assert.deepInclude((failureOf(exit) as any)?.error, { _tag: "KvBackendError", reason: "Unavailable" })
    }).pipe(Effect.scoped))

  it.live(
    "listPage over 1,000,000 keys reads one page: a primary-key range search, not a scan",
    () =>
      Effect.gen(function*() {
        const filename = sqlite.file()
        const db = yield* Effect.acquireRelease(
          Effect.sync(() => driver.open(filename)),
          (db) => Effect.sync(() => db.close())
        )
        db.exec("PRAGMA journal_mode = WAL")
        const setup = yield* buildStore(layerSqlite({ filename, synchronous: "normal" }))
        const pad = (i: number) => String(i).padStart(7, "0")
        for (let batch = 0; batch < 100; batch++) {
          yield* setup.setMany(
            Array.from({ length: 10_000 }, (_, i) => [`key:${pad(batch * 10_000 + i)}`, "v"] as const)
          )
        }
        assert.strictEqual(yield* setup.count("key:"), 1_000_000)

        // The store on the same file, with the statements it runs recorded, to ask SQLite how it runs them.
        const seen: Array<Statement> = []
        const executor = sqliteExecutor(db)
        const store = makeStore({
          ...executor,
          rows: (statement) => Effect.suspend(() => (seen.push(statement), executor.rows(statement)))
        }, settings({}, undefined))
        const first = yield* store.listPage("key:05", { limit: 100 })
        assert.deepStrictEqual(first.keys, Array.from({ length: 100 }, (_, i) => pad(500_000 + i).slice(2)))
        const second = yield* store.listPage("key:05", { limit: 100, cursor: first.cursor })
        assert.deepStrictEqual(second.keys, Array.from({ length: 100 }, (_, i) => pad(500_100 + i).slice(2)))
        assert.strictEqual(seen.length, 2)
        for (const { params, text } of seen) {
          const plan = db.prepare(`EXPLAIN QUERY PLAN ${text}`).all(...params) as Array<{ detail: string }>
          const details = plan.map((row) => row.detail).join("; ")
          assert.match(details, /SEARCH effect_kv USING PRIMARY KEY \(key>\? AND key<\?\)/, details)
          assert.notMatch(details, /SCAN|TEMP B-TREE/, details)
          assert.match(text, /LIMIT/)
        }
      }).pipe(Effect.scoped),
    240_000
  )

  it.live("layerSqlConfig: SQLITE_FILE, KV_TABLE and KV_KEY_PREFIX configure the store; without a target it fails", () =>
    Effect.gen(function*() {
      const filename = sqlite.file()
      const fromEnv = (env: Record<string, string>) =>
        Layer.provide(layerSqlConfig(), ConfigProvider.layer(ConfigProvider.fromEnv({ env })))
      yield* Effect.scoped(
        Effect.flatMap(
          buildStore(fromEnv({ SQLITE_FILE: filename, KV_TABLE: "configured", KV_KEY_PREFIX: "app:" })),
          (store) => store.set("a", "1")
        )
      )
      const rows = withFile(filename, (db) => db.prepare(`SELECT key FROM configured`).all() as Array<{ key: Buffer }>)
      assert.deepStrictEqual(rows.map((row) => Buffer.from(row.key).swap16().toString("utf16le")), ["app:a"])
      for (
        const [env, option] of [[{}, "DATABASE_URL"], [{ DATABASE_URL: "mysql://u:secret@db/app" }, "url"]] as const
      ) {
        const error = yield* Effect.flip(Effect.scoped(buildStore(fromEnv(env))))
        assert.instanceOf(error, KvInputError, JSON.stringify(env))
        assert.deepInclude(error, { operation: "options", argument: option, reason: "InvalidOption" })
        assert.notInclude(error.message, "secret")
      }
    }))

  it.live("layerSqlConfig takes a Config of its own, as a record of Configs or one Config", () =>
    Effect.gen(function*() {
      const filename = sqlite.file()
      const provider = ConfigProvider.layer(
        ConfigProvider.fromEnv({ env: { KV_FILE: filename, SQLITE_FILE: "/nonexistent-dir/kv.db" } })
      )
      yield* Effect.scoped(
        Effect.flatMap(
          buildStore(Layer.provide(
            layerSqlConfig({ filename: Config.String("KV_FILE"), table: Config.succeed("custom") }),
            provider
          )),
          (store) => store.set("a", "1")
        )
      )
      const value = yield* Effect.scoped(
        Effect.flatMap(
          buildStore(Layer.provide(
            layerSqlConfig(Config.map(Config.String("KV_FILE"), (file) => ({ filename: file, table: "custom" }))),
            provider
          )),
          (store) => store.get("a")
        )
      )
      assert.strictEqual(value, "1", "the same file and table, read through a whole Config")
      assert.strictEqual(rowCount(filename, "custom"), 1)
      for (
        const [config, option] of [
          [{ filename: Config.String("KV_FILE"), purgeInterval: Config.succeed(0) }, "purgeInterval"],
          [{ filename: Config.String("KV_FILE"), url: Config.succeed("postgres://db/app") }, "filename"],
          [{ table: Config.succeed("custom") }, "url"]
        ] as const
      ) {
        const error = yield* Effect.flip(Effect.scoped(buildStore(Layer.provide(layerSqlConfig(config), provider))))
        assert.instanceOf(error, KvInputError, option)
        assert.deepInclude(error, { operation: "options", argument: option, reason: "InvalidOption" })
      }
    }))

  it.live(
    "a key of MAX_KEY_LENGTH random CJK characters is stored; prefixes ending in 0xFF bytes list exactly",
    () =>
      Effect.gen(function*() {
        const store = yield* buildStore(layerSqlite({ filename: sqlite.file(), keyPrefix: "ns:" }))
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
