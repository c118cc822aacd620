/**
 * Upload benchmark child: starts every upload server (`support/uploadServers.ts`), each in a process of its own, and
 * drives them with one tus-js-client (Node), the same workload for every contender:
 *
 * - **large**: one file in 8 MB chunks, timed from the creation request to the last PATCH; MB/s of file bytes.
 * - **small**: one file in 16 KB chunks; PATCH requests per second.
 *
 * Every server is first warmed up to its steady rate (a server's request rate climbs for its first few thousand
 * PATCHes while V8 optimises its request path, an Effect server's for longer than @tus/server's), then the servers are
 * measured in rounds, one large and one small upload each per round, in an order that rotates: the samples of
 * effect-kv and of @tus/server it is compared with are taken seconds apart, so a slow spell of the shared machine falls
 * on both. Each upload is checked afterwards (the file on disk has the length and SHA-256 of what was sent), so a
 * server that drops bytes cannot post a figure. Emits one `UploadResult` per contender, its figures in round order.
 *
 * `node --import tsx bench/uploads.ts --contenders <name,name...> [--url <redis url>] [--quick]`
 */
import { type ChildProcess, spawn } from "node:child_process"
import { createHash, randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import * as tus from "tus-js-client"
import { emit } from "./support/measure.ts"
import type { UploadContender } from "./support/uploadContenders.ts"

export interface UploadResult {
  readonly contender: UploadContender
  /** MB/s (10^6 bytes) per large upload, one per round. */
  readonly largeMBps: ReadonlyArray<number>
  readonly largeBytes: number
  readonly largeChunk: number
  /** PATCH requests per second per small-chunk upload, one per round. */
  readonly smallRps: ReadonlyArray<number>
  /**
   * The server process's CPU time (user and system) per PATCH of each small-chunk upload, in microseconds, one per
   * round; empty where `/proc` cannot be read (not Linux). The client shares the machine, so a server's rate moves with
   * everything else that runs; its own CPU per request says what the server costs.
   */
  readonly smallCpuMicros: ReadonlyArray<number>
  readonly smallBytes: number
  readonly smallChunk: number
}

const SERVER = path.join(path.dirname(fileURLToPath(import.meta.url)), "support", "uploadServers.ts")

/** The servers still running, killed when this process exits: one listener for all of them, not one each. */
const children = new Set<ChildProcess>()
process.once("exit", () => {
  for (const child of children) child.kill("SIGKILL")
})

const startServer = (contender: string, dir: string, url: string | undefined) =>
  new Promise<{ url: string; pid: number; stop: () => void }>((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", SERVER, "--contender", contender, "--dir", dir, ...(url ? ["--url", url] : [])],
      { stdio: ["ignore", "pipe", "inherit"] }
    )
    children.add(child)
    let output = ""
    const onData = (chunk: Buffer) => {
      output += chunk
      const match = /listening (\S+)/.exec(output)
      if (match) {
        // The server's request log is part of its cost, but must not fill a pipe nobody reads.
        child.stdout.off("data", onData)
        child.stdout.resume()
        resolve({ url: match[1], pid: child.pid!, stop: () => child.kill("SIGKILL") })
      }
    }
    child.stdout.on("data", onData)
    child.once("exit", (code) => {
      children.delete(child)
      // After listening, the promise is settled and this changes nothing.
      reject(new Error(`${contender} server exited (${code}) before listening`))
    })
  })

/** Uploads `data` in `chunkSize` chunks; the milliseconds it took and the number of PATCHes. */
const timedUpload = (endpoint: string, data: Buffer, chunkSize: number) =>
  new Promise<{ ms: number; patches: number; url: string }>((resolve, reject) => {
    let patches = 0
    const started = performance.now()
    const upload = new tus.Upload(data, {
      endpoint,
      chunkSize,
      retryDelays: null,
      storeFingerprintForResuming: false,
      onBeforeRequest: (request) => {
        if (request.getMethod() === "PATCH") patches++
      },
      onError: reject,
      onSuccess: () => resolve({ ms: performance.now() - started, patches, url: upload.url! })
    })
    upload.start()
  })

/** Microseconds of CPU (user and system) a process has used, from `/proc`; `null` where it cannot be read. */
const cpuMicros = (pid: number): number | null => {
  try {
    // Fields 14 and 15 of /proc/<pid>/stat, in clock ticks (100 per second on Linux), counted after the command name.
    const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ")
    return (Number(fields[11]) + Number(fields[12])) * 10_000
  } catch {
    return null
  }
}

const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex")

/** The file the server wrote: @tus/file-store and effect-kv both name it by the id at the end of the URL. */
const verify = (dir: string, url: string, data: Buffer, contender: UploadContender) => {
  if (contender === "no-op server (client ceiling)") return
  const file = path.join(dir, new URL(url).pathname.split("/").pop()!)
  const written = fs.readFileSync(file)
  if (written.length !== data.length || sha256(written) !== sha256(data)) {
    throw new Error(`${url}: the server's file does not match what was uploaded`)
  }
  fs.rmSync(file)
}

const main = async () => {
  const { values } = parseArgs({
    options: { contenders: { type: "string" }, url: { type: "string" }, quick: { type: "boolean", default: false } }
  })
  const contenders = (values.contenders ?? "").split(",") as Array<UploadContender>
  const quick = values.quick === true
  const large = { bytes: (quick ? 32 : 200) * 1_000_000, chunk: 8 * 1024 * 1024 }
  const small = { bytes: (quick ? 4 : 16) * 1024 * 1024, chunk: 16 * 1024 }
  // Measured here (2026-12-05): effect-kv's server on Redis went 400, 560, 740, 1020, 1240 requests/s over its first
  // five 16 MB uploads in 16 KB chunks and then held about 1,300; @tus/server's levelled off after four.
  const warmUps = quick ? 1 : 6
  const rounds = quick ? 1 : 6

  const servers: Array<{ contender: UploadContender; dir: string; endpoint: string; pid: number; stop: () => void }> =
    []
  try {
    for (const contender of contenders) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-kv-bench-uploads-"))
      const server = await startServer(contender, dir, values.url).catch((error: unknown) => {
        fs.rmSync(dir, { recursive: true, force: true })
        throw error
      })
      servers.push({ contender, dir, endpoint: `${server.url}/files/`, pid: server.pid, stop: server.stop })
    }
    const largeData = randomBytes(large.bytes)
    const smallData = randomBytes(small.bytes)
    const upload = async (server: typeof servers[number], data: Buffer, chunk: number) => {
      const run = await timedUpload(server.endpoint, data, chunk)
      verify(server.dir, run.url, data, server.contender)
      return run
    }
    for (const server of servers) {
      process.stderr.write(`    warming up ${server.contender}\n`)
      await upload(server, largeData, large.chunk)
      for (let i = 0; i < warmUps; i++) await upload(server, smallData, small.chunk)
    }
    const results = servers.map((): { largeMBps: Array<number>; smallRps: Array<number>; smallCpu: Array<number> } => ({
      largeMBps: [],
      smallRps: [],
      smallCpu: []
    }))
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < servers.length; k++) {
        const index = (k + round) % servers.length
        const server = servers[index]
        const largeRun = await upload(server, largeData, large.chunk)
        const cpuBefore = cpuMicros(server.pid)
        const smallRun = await upload(server, smallData, small.chunk)
        const cpuAfter = cpuMicros(server.pid)
        results[index].largeMBps.push(large.bytes / 1e6 / (largeRun.ms / 1000))
        results[index].smallRps.push(smallRun.patches / (smallRun.ms / 1000))
        if (cpuBefore !== null && cpuAfter !== null) {
          results[index].smallCpu.push((cpuAfter - cpuBefore) / smallRun.patches)
        }
        process.stderr.write(
          `    round ${round + 1}/${rounds} ${server.contender}: ${results[index].largeMBps[round].toFixed(0)} MB/s, ${
            results[index].smallRps[round].toFixed(0)
          } requests/s\n`
        )
      }
    }
    emit(servers.map((server, i): UploadResult => ({
      contender: server.contender,
      largeMBps: results[i].largeMBps,
      largeBytes: large.bytes,
      largeChunk: large.chunk,
      smallRps: results[i].smallRps,
      smallCpuMicros: results[i].smallCpu,
      smallBytes: small.bytes,
      smallChunk: small.chunk
    })))
  } finally {
    for (const server of servers) {
      server.stop()
      fs.rmSync(server.dir, { recursive: true, force: true })
    }
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
    process.exit(1)
  }
)
