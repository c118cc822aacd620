import { describe } from "@effect/vitest"
import { layerSql } from "effect-kv/sql"
import { layerSqlite } from "effect-kv/sqlite"
import { conformance } from "effect-kv/testing"
import * as Layer from "effect/Layer"
import { useSqliteDir } from "./support/sqlFixtures.ts"
import * as SqliteClient from "./support/SqliteClient.ts"

const sqlite = useSqliteDir()

// The configurations run side by side (each build has a namespace of its own); the checks of each, in turn.
describe.concurrent("conformance on sqlite", () => {
  // Each check builds the layer afresh, on a file of its own.
  conformance("sqlite", Layer.suspend(() => layerSqlite({ filename: sqlite.file() })))

  // The same store through Effect's SqlClient, as a program that already has a SQLite client would run it.
  conformance(
    "sql (SQLite through SqlClient)",
    Layer.suspend(() => layerSql().pipe(Layer.provide(SqliteClient.layer({ filename: sqlite.file() }))))
  )
})
