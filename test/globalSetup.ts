/**
 * Once per test run, before any test file: the programs the tests start as child processes, bundled (see
 * `support/programs.ts`), and their paths handed to the test files.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import type { TestProject } from "vitest/node"
import { bundle, BUNDLE_DIR } from "./support/programs.ts"

declare module "vitest" {
  export interface ProvidedContext {
    /** `apps/upload-server/src/main.ts`, bundled: what `npm start` runs. */
    readonly uploadServer: string
    /** `test/support/sqlChild.ts`, bundled. */
    readonly sqlChild: string
  }
}

const ROOT = path.dirname(import.meta.dirname)

export default async function setup(project: TestProject) {
  // A directory per run, so that two runs in one checkout never overwrite each other's bundles.
  fs.mkdirSync(BUNDLE_DIR, { recursive: true })
  const dir = fs.mkdtempSync(path.join(BUNDLE_DIR, "run-"))
  const [uploadServer, sqlChild] = await Promise.all([
    bundle(path.join(ROOT, "apps/upload-server/src/main.ts"), path.join(dir, "upload-server.mjs")),
    bundle(path.join(ROOT, "test/support/sqlChild.ts"), path.join(dir, "sqlChild.mjs"))
  ])
  project.provide("uploadServer", uploadServer)
  project.provide("sqlChild", sqlChild)
  return () => fs.rmSync(dir, { recursive: true, force: true })
}
