/**
 * Upload benchmark child: starts one upload server (`support/uploadServers.ts`) in its own process and drives it with
 * one tus-js-client (Node), the same workload for every contender:
 *
 * - **large**: one file in 8 MB chunks, timed from the creation request to the last PATCH; MB/s of file bytes.
 * - **small**: one file in 16 KB chunks; PATCH requests per second.
 *
 * Each upload is checked afterwards (the file on disk has the length and SHA-256 of what was sent), so a server that
 * drops bytes cannot post a figure. Emits `UploadResult` for the orchestrator.
 *
 * `node --import tsx bench/uploads.ts --contender <name> [--url <redis url>] [--quick]`
 */
import { spawn } from "node:child_process"
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
  /** MB/s (10^6 bytes) per large upload. */
  readonly largeMBps: ReadonlyArray<number>
  readonly largeBytes: number
  readonly largeChunk: number
  /** PATCH requests per second per small-chunk upload. */
  readonly smallRps: ReadonlyArray<number>
  readonly smallBytes: number
  readonly smallChunk: number
}

const SERVER = path.join(path.dirname(fileURLToPath(import.meta.url)), "support", "uploadServers.ts")

const startServer = (contender: string, dir: string, url: string | undefined) =>
  new Promise<{ url: string; stop: () => void }>((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", SERVER, "--contender", contender, "--dir", dir, ...(url ? ["--url", url] : [])],
      { stdio: ["ignore", "pipe", "inherit"] }
    )
    let output = ""
    const onData = (chunk: Buffer) => {
      output += chunk
      const match = /listening (\S+)/.exec(output)
      if (match) {
        // The server's request log is part of its cost, but must not fill a pipe nobody reads.
        child.stdout.off("data", onData)
        child.stdout.resume()
        resolve({ url: match[1], stop: () => child.kill("SIGKILL") })
      }
    }
    child.stdout.on("data", onData)
    child.once("exit", (code) => reject(new Error(`${contender} server exited (${code}) before listening`)))
    process.once("exit", () => child.kill("SIGKILL"))
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
    options: { contender: { type: "string" }, url: { type: "string" }, quick: { type: "boolean", default: false } }
  })
  const contender = values.contender as UploadContender
  const quick = values.quick === true
  const large = { bytes: (quick ? 32 : 200) * 1_000_000, chunk: 8 * 1024 * 1024, runs: quick ? 1 : 3 }
  const small = { bytes: (quick ? 4 : 16) * 1024 * 1024, chunk: 16 * 1024, runs: quick ? 1 : 3 }

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-kv-bench-uploads-"))
  const server = await startServer(contender, dir, values.url)
  try {
    const endpoint = `${server.url}/files/`
    // Warm-up: JIT, connections, the store's first commands.
    const warm = randomBytes(4 * 1024 * 1024)
    verify(dir, (await timedUpload(endpoint, warm, 64 * 1024)).url, warm, contender)

    const largeData = randomBytes(large.bytes)
    const largeMBps: Array<number> = []
    for (let i = 0; i < large.runs; i++) {
      const run = await timedUpload(endpoint, largeData, large.chunk)
      verify(dir, run.url, largeData, contender)
      largeMBps.push(large.bytes / 1e6 / (run.ms / 1000))
      process.stderr.write(`    large ${i + 1}/${large.runs}: ${largeMBps[i].toFixed(0)} MB/s\n`)
    }
    const smallData = randomBytes(small.bytes)
    const smallRps: Array<number> = []
    for (let i = 0; i < small.runs; i++) {
      const run = await timedUpload(endpoint, smallData, small.chunk)
      verify(dir, run.url, smallData, contender)
      smallRps.push(run.patches / (run.ms / 1000))
      process.stderr.write(`    small ${i + 1}/${small.runs}: ${smallRps[i].toFixed(0)} requests/s\n`)
    }
    const result: UploadResult = {
      contender,
      largeMBps,
      largeBytes: large.bytes,
      largeChunk: large.chunk,
      smallRps,
      smallBytes: small.bytes,
      smallChunk: small.chunk
    }
    emit(result)
  } finally {
    server.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
    process.exit(1)
  }
)
