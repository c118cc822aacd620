/**
 * Test and benchmark harness that runs a real PostgreSQL server: `initdb` into a temp dir, then `postgres` on a free
 * loopback port, owned by a `Scope`. It uses Debian's binaries (`/usr/lib/postgresql/<version>/bin`, or
 * `POSTGRES_BIN_DIR`), and runs them as the `postgres` OS user when this process is root, since `initdb` refuses root.
 *
 * The server is a child of this process (not daemonized by `pg_ctl start`) so that it dies with it: `setpriv
 * --pdeathsig` covers a vitest worker SIGKILLed after a timeout, exit and signal hooks the rest. The scope stops it
 * with `pg_ctl stop`. Waits poll `pg_isready` on real timers with a deadline, never a fixed sleep.
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { type ChildProcess, execFile, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Ports from "./ports.ts"

export interface PostgresServer {
  readonly port: number
  /** `postgres://postgres@127.0.0.1:<port>/postgres`, trust authentication. */
  readonly url: string
  /** Stops the server (fast shutdown) and starts it again on the same port and data; resolves once it is ready. */
  readonly restart: Effect.Effect<void, PostgresServerError>
}

export class PostgresServerError extends Data.TaggedError("PostgresServerError")<{
  readonly message: string
  readonly cause?: unknown
}> {}

const HOST = "127.0.0.1"
const START_TIMEOUT_MS = 30_000
const BIND_ATTEMPTS = 5
const LOG_TAIL_CHARS = 8_192

const REGISTRY: unique symbol = Symbol.for("effect-kv/test/PostgresServer/registry")

// One set of hooks per process: vitest re-evaluates this module for every test file in a worker.
const children: Set<ChildProcess> = (() => {
  const global = globalThis as { [REGISTRY]?: Set<ChildProcess> }
  if (global[REGISTRY] !== undefined) return global[REGISTRY]
  const created = new Set<ChildProcess>()
  global[REGISTRY] = created
  process.on("exit", () => created.forEach((child) => child.kill("SIGKILL")))
  return created
})()

const isExecutable = (file: string): boolean => {
  try {
    fs.accessSync(file, fs.constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** The directory of `initdb`, `postgres`, `pg_ctl` and `pg_isready`: `POSTGRES_BIN_DIR`, else Debian's newest. */
const binDir = (): Effect.Effect<string, PostgresServerError> =>
  Effect.suspend(() => {
    const wanted = process.env.POSTGRES_BIN_DIR
    const candidates = wanted !== undefined && wanted !== "" ? [wanted] : (() => {
      const root = "/usr/lib/postgresql"
      const versions = fs.existsSync(root) ? fs.readdirSync(root).filter((v) => /^\d+$/.test(v)) : []
      return versions.sort((a, b) => Number(b) - Number(a)).map((v) => path.join(root, v, "bin"))
    })()
    const found = candidates.find((dir) =>
      ["initdb", "postgres", "pg_ctl", "pg_isready"].every((bin) => isExecutable(path.join(dir, bin)))
    )
    return found !== undefined ? Effect.succeed(found) : Effect.fail(
      new PostgresServerError({
        message: "PostgreSQL binaries not found (set POSTGRES_BIN_DIR); install Debian's: apt-get install postgresql"
      })
    )
  })

const isRoot = process.getuid?.() === 0

/** `[command, args]` running `bin` as the `postgres` user when this process is root. */
const asPostgres = (bin: string, args: ReadonlyArray<string>): [string, Array<string>] =>
  isRoot ? ["runuser", ["-u", "postgres", "--", bin, ...args]] : [bin, [...args]]

const run = (bin: string, args: ReadonlyArray<string>, timeoutMs = START_TIMEOUT_MS) =>
  Effect.callback<string, PostgresServerError>((resume) => {
    const [command, commandArgs] = asPostgres(bin, args)
    const child = execFile(command, commandArgs, { timeout: timeoutMs }, (error, stdout, stderr) => {
      resume(
        error === null ? Effect.succeed(stdout) : Effect.fail(
          new PostgresServerError({
            message: `${path.basename(bin)} ${args.join(" ")} failed: ${error.message}\n${stdout}${stderr}`.trim(),
            cause: error
          })
        )
      )
    })
    return Effect.sync(() => child.kill("SIGKILL"))
  })

const freePort = (): Effect.Effect<number, PostgresServerError> =>
  Effect.tryPromise({
    try: () => Ports.freePort(),
    catch: (cause) => new PostgresServerError({ message: `could not find a free port: ${String(cause)}`, cause })
  })

/** Sleeps on a real timer: `Effect.sleep` follows `TestClock` inside `it.effect` and would never wake up. */
const delay = (ms: number): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    const timer = setTimeout(() => resume(Effect.void), ms)
    return Effect.sync(() => clearTimeout(timer))
  })

const isReady = (bin: string, port: number) =>
  Effect.map(
    Effect.result(run(path.join(bin, "pg_isready"), ["-h", HOST, "-p", String(port), "-d", "postgres", "-q"], 2_000)),
    (result) => result._tag === "Success"
  )

/**
 * Scoped: a fresh cluster in a temp dir, served on a free loopback port until the scope closes; then the server is
 * stopped and the dir deleted. Durability settings are off (`fsync=off`): the tests check the store, not the disk.
 */
export const startPostgresServer = (): Effect.Effect<PostgresServer, PostgresServerError, Scope.Scope> =>
  Effect.gen(function*() {
    const bin = yield* binDir()
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-kv-pg-"))
        if (isRoot) {
          const { gid, uid } = postgresIds()
          fs.chownSync(dir, uid, gid)
        }
        return dir
      }),
      (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
    )
    const data = path.join(dir, "data")
    yield* run(path.join(bin, "initdb"), ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])

    /** The running server's process, replaced by `restart`. */
    let current: { readonly child: ChildProcess; exited: boolean; readonly gone: Promise<void> } | undefined
    const stop = Effect.suspend(() => {
      const server = current
      if (server === undefined || server.exited) return Effect.void
      return run(path.join(bin, "pg_ctl"), ["stop", "-D", data, "-m", "fast", "-w"]).pipe(
        Effect.ignore,
        Effect.andThen(Effect.sync(() => server.exited || server.child.kill("SIGKILL"))),
        Effect.andThen(Effect.promise(() => server.gone))
      )
    })
    yield* Effect.addFinalizer(() => stop)

    /** Starts `postgres` on `port` and waits until it is ready: `"bind"` when the port was taken meanwhile. */
    const launch = (port: number) =>
      Effect.gen(function*() {
        const args = [
          ...["-D", data, "-p", String(port), "-k", dir, "-c", `listen_addresses=${HOST}`],
          ...["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        ]
        const server = ["setpriv", "--pdeathsig", "KILL", "--", path.join(bin, "postgres"), ...args]
        // pdeathsig on both sides of runuser: its change of user clears the outer one.
        const child = spawn(server[0], [
          ...server.slice(1, 4),
          ...(isRoot ? ["runuser", "-u", "postgres", "--"] : []),
          ...(isRoot ? server : server.slice(4))
        ], {
          stdio: ["ignore", "pipe", "pipe"]
        })
        children.add(child)
        let log = ""
        const append = (chunk: Buffer) => {
          log = (log + chunk.toString("utf8")).slice(-LOG_TAIL_CHARS)
        }
        child.stdout?.on("data", append)
        child.stderr?.on("data", append)
        const launched = {
          child,
          exited: false,
          gone: new Promise<void>((resolve) =>
            child.once("exit", () => {
              launched.exited = true
              children.delete(child)
              resolve()
            })
          )
        }
        current = launched
        const deadline = Date.now() + START_TIMEOUT_MS
        while (!launched.exited && !(yield* isReady(bin, port)) && Date.now() < deadline) yield* delay(50)
        if (!launched.exited && Date.now() < deadline) return "ready" as const
        if (launched.exited && /could not bind|already in use/i.test(log)) return "bind" as const
        return yield* Effect.fail(
          new PostgresServerError({
            message:
              `postgres on ${HOST}:${port} ${launched.exited ? "exited during start-up" : "did not become ready"}\n` +
              `--- server output ---\n${log.trim()}`
          })
        )
      })

    for (let attempt = 1;; attempt++) {
      const port = yield* freePort()
      if ((yield* launch(port)) === "ready" || attempt >= BIND_ATTEMPTS) {
        const server: PostgresServer = {
          port,
          url: `postgres://postgres@${HOST}:${port}/postgres`,
          restart: Effect.andThen(
            stop,
            Effect.flatMap(launch(port), (outcome) =>
              outcome === "ready" ? Effect.void : Effect.fail(
                new PostgresServerError({ message: `postgres could not bind ${HOST}:${port} again` })
              ))
          )
        }
        return server
      }
    }
  })

const postgresIds = (): { uid: number; gid: number } => {
  const line = fs.readFileSync("/etc/passwd", "utf8").split("\n").find((entry) => entry.startsWith("postgres:"))
  if (line === undefined) throw new Error("running as root, but there is no postgres user to run PostgreSQL as")
  const [, , uid, gid] = line.split(":")
  return { uid: Number(uid), gid: Number(gid) }
}
