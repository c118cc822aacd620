import { layerPg } from "effect-kv/sql"
import { conformance } from "effect-kv/testing"
import * as Layer from "effect/Layer"
import { uniqueNamespace } from "./support/fixtures.ts"
import { usePostgresServer } from "./support/sqlFixtures.ts"

const server = usePostgresServer()

// Each check builds the layer afresh: a pool of its own and a namespace of its own in one table.
conformance("sql (PostgreSQL)", Layer.suspend(() => layerPg({ url: server().url, keyPrefix: uniqueNamespace() })))
