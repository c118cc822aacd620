/**
 * Runs one benchmark variant in a fresh Node process and reads back its result.
 *
 * A fresh process per variant means the garbage, heap size and JIT feedback of one store never bleed into the
 * next store's numbers (a million-key Keyv leaves hundreds of MB behind that the next collector would walk).
 */
import { spawn } from "node:child_process"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { parseEmitted } from "./measure.ts"

const BENCH_DIR = path.dirname(path.dirname(fileURLToPath(import.meta.url)))

/** Node flags of every child: a collector we can force, and room for a million-entry Keyv and its garbage. */
const NODE_FLAGS = ["--expose-gc", "--max-old-space-size=6144", "--import", "tsx"]

export class ChildError extends Error {}

/**
 * Runs `bench/<script>` with `args` and resolves with the result it emitted. Its progress lines go to our stderr.
 * Rejects with a `ChildError` when it exits non-zero, emits nothing or exceeds `timeoutMs`.
 */
export const runChild = (script: string, args: ReadonlyArray<string>, timeoutMs: number): Promise<unknown> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...NODE_FLAGS, path.join(BENCH_DIR, script), ...args], {
      cwd: path.dirname(BENCH_DIR),
      stdio: ["ignore", "pipe", "inherit"]
    })
    const chunks: Array<Buffer> = []
    child.stdout.on("data", (chunk: Buffer) => chunks.push(chunk))
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill("SIGKILL")
    }, timeoutMs)
    const describe = `${script} ${args.join(" ")}`
    child.once("error", (error) => {
      clearTimeout(timer)
      reject(new ChildError(`${describe}: could not start: ${error.message}`))
    })
    // "close", not "exit": a child's last output may still be in the pipe when it exits, and its result line (over
    // 200 KB for the memory contract suite) then arrived cut short.
    child.once("close", (code, signal) => {
      clearTimeout(timer)
      if (timedOut) return reject(new ChildError(`${describe}: killed after ${timeoutMs / 1000} s`))
      if (code !== 0) return reject(new ChildError(`${describe}: exited with ${signal ?? `code ${code}`}`))
      try {
        const result = parseEmitted(Buffer.concat(chunks).toString("utf8"))
        if (result === undefined) return reject(new ChildError(`${describe}: printed no result`))
        resolve(result)
      } catch (error) {
        reject(new ChildError(`${describe}: unreadable result: ${String(error)}`))
      }
    })
  })
