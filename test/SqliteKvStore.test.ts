import { layerSqlite } from "effect-kv/sqlite"
import { conformance } from "effect-kv/testing"
import * as Layer from "effect/Layer"
import { useSqliteDir } from "./support/sqlFixtures.ts"

const sqlite = useSqliteDir()

// Each check builds the layer afresh, on a file of its own.
conformance("sqlite", Layer.suspend(() => layerSqlite({ filename: sqlite.file() })))
