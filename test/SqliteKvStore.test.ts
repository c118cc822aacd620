import { layerSql } from "effect-kv/sql"
import { layerSqlite } from "effect-kv/sqlite"
import { conformance } from "effect-kv/testing"
import * as Layer from "effect/Layer"
import { useSqliteDir } from "./support/sqlFixtures.ts"
import * as SqliteClient from "./support/SqliteClient.ts"

const sqlite = useSqliteDir()

// Each check builds the layer afresh, on a file of its own.
// watch on SQL backends is not done yet: their streams fail with KvBackendError (issue 15).
conformance("sqlite", Layer.suspend(() => layerSqlite({ filename: sqlite.file() })), { watch: false })

// The same store through Effect's SqlClient, as a program that already has a SQLite client would run it.
conformance(
  "sql (SQLite through SqlClient)",
  Layer.suspend(() => layerSql().pipe(Layer.provide(SqliteClient.layer({ filename: sqlite.file() })))),
  { watch: false }
)
