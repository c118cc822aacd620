/**
 * Runs one benchmark variant in a fresh Node process and reads back its result.
 *
 * A fresh process per variant means the garbage, heap size and JIT feedback of one store never bleed into the
 * next store's numbers (a million-key Keyv leaves hundreds of MB behind that the next collector would walk).
 */
import { spawn } from "node:child_process"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { bundle } from "../../test/support/programs.ts"
import { parseEmitted } from "./measure.ts"

const BENCH_DIR = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
const ROOT = path.dirname(BENCH_DIR)

/** Node flags of every child: a collector we can force, and room for a million-entry Keyv and its garbage. */
const NODE_FLAGS = ["--expose-gc", "--max-old-space-size=6144", "--import", "tsx"]

export class ChildError extends Error {}

interface Exited {
  readonly stdout: string
  readonly stderr: string
}

/**
 * Runs `command` and resolves with what it printed; its stderr goes to ours unless `captureStderr`. Rejects with a
 * `ChildError` when it exits non-zero or exceeds `timeoutMs`.
 */
const run = (
  command: string,
  argv: ReadonlyArray<string>,
  describe: string,
  timeoutMs: number,
  captureStderr: boolean
): Promise<Exited> =>
  new Promise((resolve, reject) => {
    const child = spawn(command, argv, { cwd: ROOT, stdio: ["ignore", "pipe", captureStderr ? "pipe" : "inherit"] })
    const stdout: Array<Buffer> = []
    const stderr: Array<Buffer> = []
    child.stdout?.on("data", (chunk: Buffer) => stdout.push(chunk))
    child.stderr?.on("data", (chunk: Buffer) => stderr.push(chunk))
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill("SIGKILL")
    }, timeoutMs)
    child.once("error", (error) => {
      clearTimeout(timer)
      reject(new ChildError(`${describe}: could not start: ${error.message}`))
    })
    // "close", not "exit": a child's last output may still be in the pipe when it exits, and its result line (over
    // 200 KB for the memory contract suite) then arrived cut short.
    child.once("close", (code, signal) => {
      clearTimeout(timer)
      const err = Buffer.concat(stderr).toString("utf8")
      if (timedOut) return reject(new ChildError(`${describe}: killed after ${timeoutMs / 1000} s`))
      if (code !== 0) {
        return reject(
          new ChildError(
            `${describe}: exited with ${signal ?? `code ${code}`}${captureStderr ? `\n${err.slice(-2000)}` : ""}`
          )
        )
      }
      resolve({ stdout: Buffer.concat(stdout).toString("utf8"), stderr: err })
    })
  })

const resultOf = (describe: string, stdout: string): unknown => {
  let result: unknown
  try {
    result = parseEmitted(stdout)
  } catch (error) {
    throw new ChildError(`${describe}: unreadable result: ${String(error)}`)
  }
  if (result === undefined) throw new ChildError(`${describe}: printed no result`)
  return result
}

/**
 * Runs `bench/<script>` with `args` and resolves with the result it emitted. Its progress lines go to our stderr.
 * Rejects with a `ChildError` when it exits non-zero, emits nothing or exceeds `timeoutMs`.
 */
export const runChild = async (script: string, args: ReadonlyArray<string>, timeoutMs: number): Promise<unknown> => {
  const describe = `${script} ${args.join(" ")}`
  const { stdout } = await run(
    process.execPath,
    [...NODE_FLAGS, path.join(BENCH_DIR, script), ...args],
    describe,
    timeoutMs,
    false
  )
  return resultOf(describe, stdout)
}

/**
 * `bench/<script>` and everything it imports in one file under bench/results/ (ignored by git), for `runCounted`.
 * Under valgrind, tsx's loader costs about a minute per run, the bundle about 20 s; and with the packages loaded from
 * node_modules, two identical runs counted millions of instructions apart, in one file a few hundred.
 */
export const bundleChild = (script: string): Promise<string> =>
  bundle(path.join(BENCH_DIR, script), path.join(BENCH_DIR, "results", "bundles", `${path.parse(script).name}.mjs`), {
    packages: "bundle",
    // mitata imports it only under Bun.
    external: ["bun:jsc"]
  })

/** Whether valgrind is on this machine, for `runCounted`. */
export const hasValgrind = (): Promise<boolean> =>
  run("valgrind", ["--version"], "valgrind --version", 30_000, true).then(() => true, () => false)

/**
 * Runs a bundle (`bundleChild`) with `args` under valgrind's instruction counter (cachegrind without its cache
 * simulation) and resolves with its result and the instructions the process executed. V8's `--predictable` runs the
 * JIT and the collector on the main thread and schedules them by work done, not by time, so that two identical runs
 * count the same to within a few hundred instructions (with `--single-threaded` alone they differed by millions).
 */
export const runCounted = async (
  bundle: string,
  args: ReadonlyArray<string>,
  timeoutMs: number
): Promise<{ readonly result: unknown; readonly instructions: number }> => {
  const describe = `valgrind ${path.basename(bundle)} ${args.join(" ")}`
  const { stderr, stdout } = await run(
    "valgrind",
    [
      "--tool=cachegrind",
      "--cache-sim=no",
      "--cachegrind-out-file=/dev/null",
      process.execPath,
      "--predictable",
      bundle,
      ...args
    ],
    describe,
    timeoutMs,
    true
  )
  // "==123== I   refs:      1,967,583,878"
  const refs = /I\s+refs:\s+([\d,]+)/.exec(stderr)
  if (refs === null) throw new ChildError(`${describe}: valgrind printed no instruction count`)
  return { result: resultOf(describe, stdout), instructions: Number(refs[1].replaceAll(",", "")) }
}
