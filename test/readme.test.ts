/**
 * Every ```ts block of README.md is a complete program: this test type-checks each one with the repository's
 * tsconfig, and runs each one (bundled by esbuild, as tsx would transform it) against a Redis server of its own, with `redis://localhost:6379` in the block
 * pointed at that server. A block opened with ```ts no-run is type-checked only: for snippets that need a cluster, a
 * vitest run or files this test does not have. A block whose first line names a file (`// my-store.ts`) is written
 * under that name, so that another block can import it. New README sections are picked up as they are written.
 */
import { assert, beforeAll, describe, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { canKillServers, useRedisServer } from "./support/fixtures.ts"
import { bundle } from "./support/programs.ts"

const ROOT = path.dirname(import.meta.dirname)
const DIR = path.join(ROOT, ".readme-snippets")

interface Snippet {
  readonly line: number
  readonly run: boolean
  readonly code: string
}

const snippets = (markdown: string): Array<Snippet> => {
  const found: Array<Snippet> = []
  const lines = markdown.split("\n")
  for (let i = 0; i < lines.length; i++) {
    const open = /^```ts(?:\s+(.*))?$/.exec(lines[i])
    if (open === null) continue
    const start = i
    const body: Array<string> = []
    for (i++; i < lines.length && lines[i] !== "```"; i++) body.push(lines[i])
    found.push({ line: start + 1, run: !(open[1] ?? "").split(/\s+/).includes("no-run"), code: body.join("\n") })
  }
  return found
}

const all = snippets(fs.readFileSync(path.join(ROOT, "README.md"), "utf8"))
/** A block whose first line is a comment naming a file (`// my-store.ts`) is written under that name, for others to import. */
const fileOf = (snippet: Snippet) =>
  path.join(DIR, /^\/\/ ([\w.-]+\.ts)\b/.exec(snippet.code)?.[1] ?? `readme-line-${snippet.line}.ts`)

const exec = (file: string, args: ReadonlyArray<string>, env: NodeJS.ProcessEnv = {}) =>
  new Promise<{ readonly code: number; readonly output: string }>((resolve) => {
    execFile(
      file,
      args,
      { cwd: ROOT, env: { ...process.env, ...env }, timeout: 60_000 },
      (error, stdout, stderr) =>
        resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, output: stdout + stderr })
    )
  })

const bin = (name: string) => path.join(ROOT, "node_modules", ".bin", name)

const server = useRedisServer()

describe("README.md snippets", () => {
  beforeAll(() => {
    fs.rmSync(DIR, { recursive: true, force: true })
    fs.mkdirSync(DIR, { recursive: true })
    fs.writeFileSync(
      path.join(DIR, "tsconfig.json"),
      JSON.stringify({ extends: "../tsconfig.json", include: ["*.ts"], compilerOptions: { noUnusedLocals: false } })
    )
  })

  it("there are snippets to check", () => {
    assert.isAtLeast(all.length, 5)
  })

  it("every ```ts block type-checks as a module of its own", async () => {
    for (const snippet of all) fs.writeFileSync(fileOf(snippet), `${snippet.code}\n`)
    const { code, output } = await exec(bin("tsc"), ["--noEmit", "-p", path.join(DIR, "tsconfig.json")])
    assert.strictEqual(code, 0, `README snippets do not type-check (file names give the README line):\n${output}`)
  }, 120_000)

  for (const snippet of all.filter((snippet) => snippet.run)) {
    it.skipIf(!canKillServers)(`README.md line ${snippet.line} runs`, async () => {
      const url = server().url
      const file = fileOf(snippet)
      fs.writeFileSync(file, `${snippet.code.replaceAll(/redis:\/\/(localhost|127\.0\.0\.1):6379/g, url)}\n`)
      // Bundled, then run by Node (test/support/programs.ts): the transform tsx would apply, on a third of the CPU.
      const program = await bundle(file, file.replace(/\.ts$/, ".mjs"), { tsconfig: path.join(DIR, "tsconfig.json") })
      const { code, output } = await exec(process.execPath, [program], { REDIS_URL: url })
      assert.strictEqual(code, 0, `README.md line ${snippet.line} failed:\n${output}`)
    }, 60_000)
  }
})
