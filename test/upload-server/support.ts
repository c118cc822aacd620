/**
 * Upload servers for the tests, on free loopback ports: in this process (a layer built in a scope, the store given
 * by the test) or as a child process running `apps/upload-server/src/main.ts` exactly as `npm start` does.
 * Clients are tus-js-client (Node) and `fetch`; every wait polls a condition with a deadline.
 */
import { afterAll, beforeAll } from "@effect/vitest"
import { type BaseKvStoreService, memoryKvStore } from "effect-kv"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as HttpServer from "effect/http/HttpServer"
import * as Layer from "effect/Layer"
import * as References from "effect/References"
import * as Scope from "effect/Scope"
import { type ChildProcess, spawn } from "node:child_process"
import { createHash, randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as tus from "tus-js-client"
import { inject } from "vitest"
import * as Authorization from "../../apps/upload-server/src/Authorization.ts"
import * as Config from "../../apps/upload-server/src/Config.ts"
import * as Hooks from "../../apps/upload-server/src/Hooks.ts"
import * as Server from "../../apps/upload-server/src/Server.ts"
import { type RedisServer, startRedisServer } from "../support/RedisServer.ts"

const ROOT = path.resolve(import.meta.dirname, "../..")

export interface RunningServer {
  readonly url: string
  readonly endpoint: string
  readonly dataDir: string
  readonly close: () => Promise<void>
}

/** A fresh temp directory, removed when the process exits. */
export const tempDir = (): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-kv-uploads-"))
  process.once("exit", () => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** The server in this process, on `store` (memory by default), listening on a free port. */
export const startServer = async (
  options: {
    readonly store?: Layer.Layer<BaseKvStoreService, unknown>
    readonly settings?: Partial<Config.ServerSettings>
    readonly authorization?: Layer.Layer<Authorization.Authorization>
    readonly hooks?: Layer.Layer<Hooks.Hooks>
    readonly heartbeat?: Duration.Input
  } = {}
): Promise<RunningServer> => {
  const dataDir = options.settings?.dataDir ?? tempDir()
  const scope = Scope.makeUnsafe()
  const layer = Server.layer({
    storeDescription: "test",
    authRequired: options.authorization !== undefined,
    heartbeat: options.heartbeat
  }).pipe(
    Layer.provide(options.store ?? memoryKvStore),
    Layer.provide(options.authorization ?? Authorization.layerAnonymous),
    Layer.provide(options.hooks ?? Hooks.layer()),
    Layer.provide(Config.layer({ port: 0, ...options.settings, dataDir })),
    // Request logs would drown the test output; warnings (store down, failed requests) still show.
    Layer.provide(Layer.succeed(References.MinimumLogLevel, "Warn"))
  )
  const context = await Effect.runPromise(Scope.provide(Layer.build(layer), scope))
  const url = HttpServer.formatAddress(Context.get(context, HttpServer.HttpServer).address)
  return {
    url,
    endpoint: `${url}/files/`,
    dataDir,
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

export interface ChildServer {
  readonly url: string
  readonly endpoint: string
  readonly process: ChildProcess
  readonly output: () => string
  /** Resolves with the exit code (or signal) once the process has exited. */
  readonly exited: Promise<number | string>
}

/**
 * How a child runs the program: `"tsx"` as `npm start` does, or `"bundle"`, the same sources bundled once for the run
 * (test/support/programs.ts), which starts on a third of the CPU. Outside vitest (the soak) there is no bundle.
 */
export type HowToRun = "tsx" | "bundle"

const serverArgs = (how: HowToRun): Array<string> => {
  if (how === "bundle") {
    try {
      return [inject("uploadServer")]
    } catch {
      // Not in a vitest worker.
    }
  }
  return ["--import", "tsx", "apps/upload-server/src/main.ts"]
}

/** `npm start` in a child process with `env` added; resolves once it prints where it listens. */
/** Runs `npm start` to its end (killed after 30 s) and gives its exit code and output. */
export const runServer = (env: Record<string, string>, how: HowToRun = "bundle") =>
  new Promise<{ code: number | null; output: string }>((resolve) => {
    const child = spawn(process.execPath, serverArgs(how), {
      cwd: ROOT,
      env: { ...process.env, PORT: "0", DATA_DIR: tempDir(), ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    child.stdout.on("data", (chunk) => output += chunk)
    child.stderr.on("data", (chunk) => output += chunk)
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000)
    child.once("exit", (code) => {
      clearTimeout(timer)
      resolve({ code, output })
    })
  })

export const spawnServer = (env: Record<string, string>, how: HowToRun = "bundle"): Promise<ChildServer> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, serverArgs(how), {
      cwd: ROOT,
      env: { ...process.env, PORT: "0", ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    const exited = new Promise<number | string>((done) => child.once("exit", (code, signal) => done(code ?? signal!)))
    process.once("exit", () => child.kill("SIGKILL"))
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`the server did not start within 60 s:\n${output}`))
    }, 60_000)
    const onData = (chunk: Buffer) => {
      output += chunk.toString("utf8")
      const match = /listening on (http:\/\/[^\s]+)\/files\//.exec(output)
      if (match) {
        clearTimeout(timer)
        child.stdout.off("data", onData)
        child.stdout.on("data", (more: Buffer) => output += more.toString("utf8"))
        resolve({ url: match[1], endpoint: `${match[1]}/files/`, process: child, output: () => output, exited })
      }
    }
    child.stdout.on("data", onData)
    child.stderr.on("data", (chunk: Buffer) => output += chunk.toString("utf8"))
    exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`the server exited (${code}) before listening:\n${output}`))
    })
  })

export const sha256 = (data: Uint8Array): string => createHash("sha256").update(data).digest("hex")

export const randomData = (size: number): Buffer => randomBytes(size)

/** A tus-js-client URL storage in memory, so `findPreviousUploads` works in Node. */
export const memoryUrlStorage = () => {
  const entries = new Map<string, { fingerprint: string; upload: any }>()
  let n = 0
  return {
    findAllUploads: async () => [...entries.values()].map((entry) => entry.upload),
    findUploadsByFingerprint: async (fingerprint: string) =>
      [...entries.values()].filter((entry) => entry.fingerprint === fingerprint).map((entry) => entry.upload),
    removeUpload: async (key: string) => {
      entries.delete(key)
    },
    addUpload: async (fingerprint: string, upload: any) => {
      const key = `upload-${n++}`
      entries.set(key, { fingerprint, upload: { ...upload, urlStorageKey: key } })
      return key
    }
  }
}

/** Uploads `data` with tus-js-client and resolves with the upload's URL. */
export const upload = (
  data: Buffer,
  options: tus.UploadOptions & { readonly onUpload?: (upload: tus.Upload) => void }
): Promise<string> =>
  new Promise((resolve, reject) => {
    const upload = new tus.Upload(data, {
      retryDelays: [0, 100, 300, 1000, 2000],
      ...options,
      onError: reject,
      onSuccess: () => resolve(upload.url!)
    })
    options.onUpload?.(upload)
    upload.start()
  })

/** Reads a finished upload back over HTTP. */
export const download = async (url: string): Promise<{ readonly response: Response; readonly body: Buffer }> => {
  const response = await fetch(url)
  return { response, body: Buffer.from(await response.arrayBuffer()) }
}

/** Polls `condition` every 20 ms until it holds, failing after `ms`. */
export const waitFor = async (what: string, condition: () => boolean | Promise<boolean>, ms = 10_000) => {
  const deadline = Date.now() + ms
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/**
 * A `redis-server` for the calling file's tests whose records survive a kill (append-only file, fsync on every write),
 * so an upload can go on after Redis comes back.
 */
export const useDurableRedis = (): () => RedisServer => {
  let redis: RedisServer | undefined
  const scope = Scope.makeUnsafe()
  beforeAll(async () => {
    redis = await Effect.runPromise(
      Scope.provide(startRedisServer({ args: ["--appendonly", "yes", "--appendfsync", "always"] }), scope)
    )
  })
  afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)))
  return () => {
    if (redis === undefined) throw new Error("the Redis server is used before it started")
    return redis
  }
}

/** The example's authorization rule (examples/mount.ts): `Bearer user:<name>` is owner `<name>`. */
export const userBearer = Authorization.layerBearer((token) =>
  token.startsWith("user:") && token.length > "user:".length
    ? Effect.succeed(token.slice("user:".length))
    : Effect.fail(new Authorization.Unauthorized({ status: 401, reason: "expected Bearer user:<name>" }))
)

/** The headers of a request by `name` under `userBearer`. */
export const as = (name: string) => ({ Authorization: `Bearer user:${name}` })

export const TUS = { "Tus-Resumable": "1.0.0" } as const
