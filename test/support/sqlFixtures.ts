/**
 * Databases for the SQL backends' tests: a PostgreSQL server per test file (or the one `EFFECT_KV_TEST_DATABASE_URL`
 * points at: the tests write only under tables and namespaces of their own, but use a disposable database all the
 * same), and SQLite files in a temp dir deleted when the file's tests end.
 */
import { afterAll, beforeAll } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { type PostgresServer, startPostgresServer } from "./PostgresServer.ts"

const externalDatabase = process.env.EFFECT_KV_TEST_DATABASE_URL

/** A PostgreSQL server for the tests of the calling file. */
export const usePostgresServer = (): () => PostgresServer => {
  if (externalDatabase !== undefined) {
    return () => ({
      url: externalDatabase,
      port: Number(new URL(externalDatabase).port || 5432),
      restart: Effect.die(new Error("an external database (EFFECT_KV_TEST_DATABASE_URL) is not restarted by the tests"))
    })
  }
  let server: PostgresServer | undefined
  const scope = Scope.makeUnsafe()
  beforeAll(async () => {
    server = await Effect.runPromise(Scope.provide(startPostgresServer(), scope))
  })
  afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)))
  return () => {
    if (server === undefined) throw new Error("the PostgreSQL fixture is used before it started")
    return server
  }
}

/** A temp dir for the calling file's SQLite databases; `file()` names a new database in it. */
export const useSqliteDir = (): { readonly dir: () => string; readonly file: (name?: string) => string } => {
  let dir: string | undefined
  let files = 0
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-kv-sqlite-"))
  })
  afterAll(() => {
    if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true })
  })
  const current = () => {
    if (dir === undefined) throw new Error("the SQLite fixture is used before it started")
    return dir
  }
  return { dir: current, file: (name) => path.join(current(), name ?? `kv-${files++}.db`) }
}

let tables = 0

/** A table name no other test of this process uses. */
export const uniqueTable = (): string => `kv_${process.pid}_${tables++}`
