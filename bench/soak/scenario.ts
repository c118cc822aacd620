/**
 * One run of the fault soak: two `npm start` instances on one Redis (append-only, fsync always) and one `DATA_DIR`,
 * tus-js-client uploads spread over both, and three faults, each fired from a client's progress callback so that it
 * lands while PATCH bodies are in flight:
 *
 * 1. instance A is killed (SIGKILL) and started again on its port;
 * 2. Redis is killed and started again `redisDownMs` later;
 * 3. instance B is paused (SIGSTOP) for `pauseMs`, then resumed (SIGCONT).
 *
 * Afterwards every upload is downloaded and compared with what was sent, and the store and `DATA_DIR` are searched
 * for orphans: records or files of uploads other than the finished ones (an upload a client dropped and started
 * again, a record without its file, a file without its record). The run is bounded by `deadlineMs`.
 */
import { BaseKvStoreService } from "effect-kv"
import { layerRedis } from "effect-kv/redis"
import { layerPg } from "effect-kv/sql"
import { layerSqlite } from "effect-kv/sqlite"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as fs from "node:fs"
import * as path from "node:path"
import * as tus from "tus-js-client"
import { PREFIX } from "../../apps/upload-server/src/Uploads.ts"
import { startPostgresServer } from "../../test/support/PostgresServer.ts"
import { freePort, startRedisServer } from "../../test/support/RedisServer.ts"
import { type ChildServer, randomData, sha256, spawnServer, tempDir } from "../../test/upload-server/support.ts"

/** The store both instances share, and the fault it suffers: Redis and PostgreSQL restart, SQLite has no server. */
export type SoakStore = "redis" | "postgres" | "sqlite"

export interface SoakOptions {
  readonly store: SoakStore
  readonly uploads: number
  readonly size: number
  readonly chunkSize: number
  readonly redisDownMs: number
  readonly pauseMs: number
  readonly deadlineMs: number
}

export const FULL: SoakOptions = {
  store: "redis",
  uploads: 16,
  size: 24 * 1024 * 1024,
  chunkSize: 1024 * 1024,
  redisDownMs: 1500,
  pauseMs: 3000,
  deadlineMs: 180_000
}

export const SHORT: SoakOptions = {
  store: "redis",
  uploads: 6,
  size: 4 * 1024 * 1024,
  chunkSize: 256 * 1024,
  redisDownMs: 1500,
  pauseMs: 3000,
  deadlineMs: 45_000
}

export interface SoakResult {
  readonly uploads: number
  /** Finished, and the bytes read back equal the bytes sent. */
  readonly intact: number
  /** Creations beyond the first, per upload, summed: progress thrown away. */
  readonly restartsFromZero: number
  /** Requests tus-js-client retried. */
  readonly retries: number
  /** Responses with a 5xx status. */
  readonly serverErrors: number
  /** Records or files of uploads other than the finished ones. */
  readonly orphans: number
  readonly seconds: number
  /** When each fault fired, ms after the start, and what a client saw meanwhile. */
  readonly faults: ReadonlyArray<string>
  readonly errors: ReadonlyArray<string>
  /** The 5xx responses and the instances' error lines, for the report. */
  readonly notes: ReadonlyArray<string>
}

/** Client retry delays: long enough to outlast an instance's restart and a dead instance's lease (3 s). */
const RETRY_DELAYS = [0, 250, 500, 1000, 2000, 3000, 3000, 3000, 3000, 3000, 3000, 3000, 3000, 3000]

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Starts the store's server (if it has one) in `scope`: the instances' environment, its fault, its records. */
const setUpStore = async (options: SoakOptions, scope: Scope.Scope) => {
  const list = (layer: Layer.Layer<BaseKvStoreService, unknown>) => (): Promise<ReadonlyArray<string>> =>
    Effect.runPromise(
      Effect.gen(function*() {
        return yield* (yield* BaseKvStoreService).list(PREFIX)
      }).pipe(Effect.provide(layer))
    )
  switch (options.store) {
    case "redis": {
      const redis = await Effect.runPromise(
        Scope.provide(startRedisServer({ args: ["--appendonly", "yes", "--appendfsync", "always"] }), scope)
      )
      const keyPrefix = `soak-${process.pid}-${Date.now()}:`
      return {
        env: { REDIS_URL: redis.url, REDIS_KEY_PREFIX: keyPrefix },
        fault: {
          name: `Redis killed mid-PATCH, started again ${options.redisDownMs} ms later`,
          fire: async () => {
            await Effect.runPromise(redis.kill)
            await sleep(options.redisDownMs)
            await Effect.runPromise(redis.restart)
          }
        },
        records: list(layerRedis({ url: redis.url, keyPrefix }))
      }
    }
    case "postgres": {
      const postgres = await Effect.runPromise(Scope.provide(startPostgresServer(), scope))
      return {
        env: { DATABASE_URL: postgres.url },
        fault: {
          name: "PostgreSQL restarted (fast shutdown, started again) mid-PATCH",
          fire: () => Effect.runPromise(postgres.restart)
        },
        records: list(layerPg({ url: Redacted.make(postgres.url) }))
      }
    }
    case "sqlite": {
      const file = path.join(tempDir(), "kv.db")
      return { env: { SQLITE_FILE: file }, fault: null, records: list(layerSqlite({ filename: file })) }
    }
  }
}

export const runSoak = async (options: SoakOptions): Promise<SoakResult> => {
  const scope = Scope.makeUnsafe()
  const children: Array<ChildServer> = []
  let started = Date.now()
  try {
    const dataDir = tempDir()
    const store = await setUpStore(options, scope)
    const ports = await Effect.runPromise(Effect.all([freePort(false), freePort(false)]))
    const env = (port: number) => ({ ...store.env, DATA_DIR: dataDir, PORT: String(port) })
    const start = async (i: number) => {
      const child = await spawnServer(env(ports[i]))
      children.push(child)
      return child
    }
    const instances = [await start(0), await start(1)]
    const endpoints = ports.map((port) => `http://127.0.0.1:${port}/files/`)
    // Timed from here: the instances are up.
    started = Date.now()

    const datas = Array.from({ length: options.uploads }, () => randomData(options.size))
    const creations = datas.map(() => 0)
    let retries = 0
    let serverErrors = 0
    const errors: Array<string> = []
    const notes: Array<string> = []
    const faults: Array<string> = []
    const sent = datas.map(() => 0)
    const total = options.uploads * options.size
    const progress = () => sent.reduce((a, b) => a + b, 0) / total
    const at = () => `${((Date.now() - started) / 1000).toFixed(1)} s`

    // Each fault fires once, from a progress callback: a PATCH body is on its way when it does.
    const pending: Array<Promise<void>> = []
    const schedule = [
      {
        at: 0.15,
        fire: async () => {
          faults.push(`${at()}: instance A killed (SIGKILL) mid-PATCH, started again`)
          instances[0].process.kill("SIGKILL")
          await instances[0].exited
          instances[0] = await start(0)
        }
      },
      {
        at: 0.4,
        fire: store.fault === null
          ? async () => {
            faults.push(`${at()}: instance B killed (SIGKILL) mid-PATCH, started again`)
            instances[1].process.kill("SIGKILL")
            await instances[1].exited
            instances[1] = await start(1)
          }
          : async () => {
            faults.push(`${at()}: ${store.fault!.name}`)
            await store.fault!.fire()
          }
      },
      {
        at: 0.65,
        fire: async () => {
          faults.push(`${at()}: instance B paused (SIGSTOP) mid-PATCH for ${options.pauseMs} ms`)
          instances[1].process.kill("SIGSTOP")
          await sleep(options.pauseMs)
          instances[1].process.kill("SIGCONT")
        }
      }
    ]
    let next = 0
    let busy = false
    const onProgress = () => {
      // One fault at a time: the next waits until the previous one is over.
      if (next < schedule.length && progress() >= schedule[next].at && !busy) {
        busy = true
        pending.push(
          schedule[next++].fire().then(
            () => void (busy = false),
            (error) => void errors.push(`fault: ${String(error)}`)
          )
        )
      }
    }

    const finished = datas.map((data, i) =>
      new Promise<string | null>((resolve) => {
        const upload = new tus.Upload(data, {
          endpoint: endpoints[i % 2],
          chunkSize: options.chunkSize,
          retryDelays: RETRY_DELAYS,
          metadata: { filename: `soak-${i}.bin` },
          onBeforeRequest: (request) => {
            if (request.getMethod() === "POST") creations[i]++
          },
          onAfterResponse: (request, response) => {
            if (response.getStatus() >= 500) {
              serverErrors++
              notes.push(`${at()}: ${request.getMethod()} ${response.getStatus()} ${response.getBody()?.trim()}`)
            }
          },
          onShouldRetry: (error, attempt, opts) => {
            retries++
            const status = error.originalResponse?.getStatus() ?? 0
            // tus-js-client's own rule (not a 4xx, except 409 and 423), which this option replaces.
            return (status < 400 || status >= 500 || status === 409 || status === 423) &&
              attempt < (opts.retryDelays?.length ?? 0)
          },
          onProgress: (bytes) => {
            sent[i] = bytes
            onProgress()
          },
          onSuccess: () => resolve(upload.url),
          onError: (error) => {
            errors.push(`upload ${i}: ${String(error).slice(0, 300)}`)
            resolve(null)
          }
        })
        upload.start()
      })
    )
    const deadline = sleep(options.deadlineMs).then(() => "deadline" as const)
    const outcome = await Promise.race([Promise.all(finished), deadline])
    if (outcome === "deadline") errors.push(`not finished within ${options.deadlineMs} ms`)
    await Promise.all(pending)
    const seconds = (Date.now() - started) / 1000
    const urls = outcome === "deadline" ? datas.map(() => null) : outcome

    let intact = 0
    for (const [i, url] of urls.entries()) {
      if (url === null) continue
      const response = await fetch(new URL(url, endpoints[0]))
      const body = Buffer.from(await response.arrayBuffer())
      if (response.status === 200 && sha256(body) === sha256(datas[i])) intact++
      else errors.push(`upload ${i}: ${response.status}, ${body.length} bytes, not what was sent`)
    }

    // Orphans: anything stored under another id than the finished uploads'.
    const kept = new Set(urls.filter((url) => url !== null).map((url) => url.split("/").pop()!))
    const records = await store.records()
    const stray = new Set([...records, ...fs.readdirSync(dataDir)].filter((id) => !kept.has(id)))
    for (const id of stray) {
      errors.push(`orphan ${id}: record ${records.includes(id)}, file ${fs.existsSync(path.join(dataDir, id))}`)
    }

    return {
      uploads: options.uploads,
      intact,
      restartsFromZero: creations.reduce((sum, n) => sum + Math.max(0, n - 1), 0),
      retries,
      serverErrors,
      orphans: stray.size,
      seconds,
      faults,
      errors,
      notes: [
        ...notes,
        ...children.flatMap((child) =>
          child.output().split("\n").filter((line) => /ERROR|request failed|cleanup removed/.test(line))
        )
      ].slice(0, 20)
    }
  } finally {
    for (const child of children) {
      child.process.kill("SIGCONT")
      child.process.kill("SIGKILL")
    }
    await Promise.all(children.map((child) => child.exited))
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
}
