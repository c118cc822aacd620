/**
 * A separate process on a SQL store, for the tests that need two processes or a killed one. Run with
 * `node --import tsx test/support/sqlChild.ts <command> <store> ...`, where `<store>` is a SQLite file path or a
 * `postgres://` URL and `<table>` the table.
 *
 * - `write <store> <table>`: sets `k<i>` to `v<i>` for i = 0, 1, ... and prints `ack <i>` after each write succeeded,
 *   until it is killed.
 * - `increment <store> <table> <key> <times>`: `modify`s `key` to its number plus one, `times` times; prints `done`.
 */
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import { type BaseKvStoreService, BaseKvStoreService as Store, type KvStoreError } from "../../src/BaseKvStore.ts"
import { layerSqlite } from "../../src/SqliteKvStore.ts"
import { layerPg } from "../../src/SqlKvStore.ts"

const [command, target, table, ...rest] = process.argv.slice(2)

const layer: Layer.Layer<BaseKvStoreService, KvStoreError> = target.startsWith("postgres://")
  ? layerPg({ url: target, table })
  : layerSqlite({ filename: target, table })

const write = Effect.gen(function*() {
  const store = yield* Store
  for (let i = 0;; i++) {
    yield* store.set(`k${i}`, `v${i}`)
    process.stdout.write(`ack ${i}\n`)
  }
})

const increment = Effect.gen(function*() {
  const store = yield* Store
  const [key, times] = rest
  for (let i = 0; i < Number(times); i++) {
    yield* store.modify(key, (current) => String(Number(current ?? "0") + 1))
  }
  process.stdout.write("done\n")
})

const program = command === "write" ? write : command === "increment" ? increment : Effect.die(`unknown ${command}`)

Effect.runPromise(Effect.provide(program, layer)).then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`${String(error)}\n`)
    process.exit(1)
  }
)
