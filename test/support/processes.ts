/**
 * Child processes on a SQL store (`sqlChild.ts`), for the tests that kill one or run two at once.
 */
import * as Effect from "effect/Effect"
import { type ChildProcess, spawn } from "node:child_process"
import { inject } from "vitest"

const start = (args: ReadonlyArray<string>): ChildProcess =>
  spawn(process.execPath, [inject("sqlChild"), ...args], { stdio: ["ignore", "pipe", "pipe"] })

const exited = (child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode })
    } else child.once("exit", (code, signal) => resolve({ code, signal }))
  })

/**
 * Starts a writer on `store`, waits until it acknowledged at least `acks` writes, SIGKILLs it while it keeps writing,
 * and succeeds with the highest index it acknowledged.
 */
export const writeThenKill = (store: string, table: string, acks: number): Effect.Effect<number> =>
  Effect.promise(async () => {
    const child = start(["write", store, table])
    let last = -1
    let buffered = ""
    let stderr = ""
    child.stderr!.on("data", (chunk: Buffer) => stderr += chunk.toString())
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on("data", (chunk: Buffer) => {
        buffered += chunk.toString()
        const lines = buffered.split("\n")
        buffered = lines.pop()!
        for (const line of lines) last = Number(line.slice("ack ".length))
        if (last + 1 >= acks) resolve()
      })
      child.once("exit", (code) => reject(new Error(`the writer exited (${code}) after ${last + 1} acks: ${stderr}`)))
    })
    child.kill("SIGKILL")
    const { signal } = await exited(child)
    if (signal !== "SIGKILL") throw new Error(`the writer was not killed: ${signal}`)
    // An ack the pipe delivered between the kill and the exit still counts: the write it reports had succeeded.
    for (const line of buffered.split("\n")) if (line.startsWith("ack ")) last = Number(line.slice(4))
    return last
  })

/** Runs `processes` children at once, each `modify`ing `key` to its number plus one `times` times. */
export const incrementConcurrently = (
  store: string,
  table: string,
  key: string,
  processes: number,
  times: number
): Effect.Effect<void> =>
  Effect.promise(() =>
    Promise.all(Array.from({ length: processes }, async () => {
      const child = start(["increment", store, table, key, String(times)])
      let output = ""
      child.stdout!.on("data", (chunk: Buffer) => output += chunk.toString())
      child.stderr!.on("data", (chunk: Buffer) => output += chunk.toString())
      const { code } = await exited(child)
      if (code !== 0 || !output.includes("done")) throw new Error(`an incrementing process failed (${code}): ${output}`)
    }))
  ).pipe(Effect.asVoid)
