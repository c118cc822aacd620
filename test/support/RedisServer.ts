/**
 * Test and benchmark harness that runs real `redis-server` processes: a standalone server or a small cluster, each
 * on free loopback ports in its own temp dir, owned by a `Scope`. Every wait polls on real timers with a deadline,
 * because tests often run under `TestClock` (where `Effect.sleep` never wakes) and a stuck server must fail the test
 * rather than hang it. Children are also killed from process exit/signal hooks and, on Linux, by the kernel when this
 * process dies, since vitest workers are SIGTERM'd without running finalizers.
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { type ChildProcess, execFile, spawn, type StdioOptions } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import * as Ports from "./ports.ts"

export interface RedisServer {
  readonly host: string
  readonly port: number
  readonly url: string
  /** SIGKILL the process (simulates a crash); resolves when the process has exited and the port is closed. */
  readonly kill: Effect.Effect<void>
  /** Start redis-server again on the SAME port (after kill); resolves when it answers PING. */
  readonly restart: Effect.Effect<void, RedisServerError>
}

export interface RedisCluster {
  /** The masters as created (a failover may change that), in creation order. */
  readonly nodes: ReadonlyArray<{ readonly host: string; readonly port: number }>
  /** The servers of `nodes`. */
  readonly servers: ReadonlyArray<RedisServer>
  /** The replicas as created, if any. */
  readonly replicas: ReadonlyArray<RedisServer>
}

export class RedisServerError extends Data.TaggedError("RedisServerError")<{
  readonly message: string
  readonly cause?: unknown
}> {}

const HOST = "127.0.0.1"
/** Long enough for a server (a TLS one too) started while other test files keep both cores busy. */
const START_TIMEOUT_MS = 30_000
const CLUSTER_TIMEOUT_MS = 30_000
const BIND_ATTEMPTS = 5
const LOG_TAIL_CHARS = 8_192
const ADDRESS_IN_USE = /Address already in use/

// Shared through globalThis because vitest re-evaluates this module for every test file in a worker, and one set of
// hooks per process is enough (and avoids MaxListenersExceeded warnings).
const REGISTRY: unique symbol = Symbol.for("effect-kv/test/RedisServer/registry")

interface Registry {
  readonly children: Set<ChildProcess>
  readonly dirs: Set<string>
}

const registry: Registry = (() => {
  const global = globalThis as { [REGISTRY]?: Registry }
  if (global[REGISTRY] !== undefined) return global[REGISTRY]
  const created: Registry = { children: new Set(), dirs: new Set() }
  global[REGISTRY] = created
  const cleanUp = () => {
    for (const child of created.children) child.kill("SIGKILL")
    for (const dir of created.dirs) fs.rmSync(dir, { recursive: true, force: true })
  }
  process.on("exit", cleanUp)
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const onSignal = () => {
      cleanUp()
      // Listening disables Node's default "terminate on signal"; re-raise so the process still dies as it would have.
      if (process.listenerCount(signal) === 1) {
        process.off(signal, onSignal)
        process.kill(process.pid, signal)
      }
    }
    process.on(signal, onSignal)
  }
  return created
})()

const findExecutable = (name: string): string | undefined => {
  const candidates = name.includes("/")
    ? [name]
    : (process.env.PATH ?? "").split(path.delimiter).filter((dir) => dir !== "").map((dir) => path.join(dir, name))
  return candidates.find((file) => {
    try {
      fs.accessSync(file, fs.constants.X_OK)
      return fs.statSync(file).isFile()
    } catch {
      return false
    }
  })
}

// PR_SET_PDEATHSIG covers the one case no hook can: this process being SIGKILLed (e.g. by vitest after a timeout).
let setprivPath: string | null | undefined
const setpriv = (): string | null => {
  setprivPath ??= process.platform === "linux" ? findExecutable("setpriv") ?? null : null
  return setprivPath
}

const resolveExecutable = (envVar: string, name: string): Effect.Effect<string, RedisServerError> =>
  Effect.suspend(() => {
    const wanted = process.env[envVar] || name
    const found = findExecutable(wanted)
    return found !== undefined
      ? Effect.succeed(found)
      : Effect.fail(
        new RedisServerError({
          message: `${wanted} not found (set ${envVar} or put ${name} on PATH); ` +
            `install the Debian package redis-server: apt-get install redis-server`
        })
      )
  })

/** Sleeps on a real timer: `Effect.sleep` follows `TestClock` inside `it.effect` and would never wake up. */
const delay = (ms: number): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    const timer = setTimeout(() => resume(Effect.void), ms)
    return Effect.sync(() => clearTimeout(timer))
  })

// A raw RESP socket rather than redis-cli: readiness is probed every 20 ms, and spawning a process each time is slow.

const encode = (args: ReadonlyArray<string>): string =>
  `*${args.length}\r\n` + args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`).join("")

/**
 * The reply and the bytes it took, or `undefined` while it is incomplete; arrays are not needed by the harness, so
 * they are rejected.
 */
const parseReply = (buffer: Buffer): readonly [string | null | Error, number] | undefined => {
  const lineEnd = buffer.indexOf("\r\n")
  if (lineEnd < 0) return undefined
  const head = buffer.toString("utf8", 1, lineEnd)
  switch (String.fromCharCode(buffer[0])) {
    case "+":
    case ":":
      return [head, lineEnd + 2]
    case "-":
      return [new Error(head), lineEnd + 2]
    case "$": {
      const length = Number(head)
      if (length < 0) return [null, lineEnd + 2]
      const start = lineEnd + 2
      return buffer.length < start + length + 2
        ? undefined
        : [buffer.toString("utf8", start, start + length), start + length + 2]
    }
    default:
      return [new Error(`unsupported reply: ${JSON.stringify(buffer.toString("utf8", 0, lineEnd))}`), buffer.length]
  }
}

/** Passwords of the servers this process started with `requirepass`, so that every probe can authenticate. */
const passwords = new Map<number, string>()

const send = (port: number, args: ReadonlyArray<string>, timeoutMs = 2_000): Promise<string | null> =>
  new Promise((resolve, reject) => {
    const socket = net.connect({ host: HOST, port })
    const password = passwords.get(port)
    // With a password, the first reply is AUTH's.
    let skip = password === undefined ? 0 : 1
    let buffer = Buffer.alloc(0)
    const finish = (reply: string | null | Error) => {
      socket.destroy()
      if (reply instanceof Error) reject(reply)
      else resolve(reply)
    }
    socket.setTimeout(timeoutMs, () => finish(new Error(`no reply within ${timeoutMs} ms`)))
    socket.on("error", finish)
    socket.on("close", () => finish(new Error("connection closed before the reply")))
    socket.on("data", (chunk) => {
      buffer = Buffer.concat([buffer, chunk])
      while (true) {
        const parsed = parseReply(buffer)
        if (parsed === undefined) return
        if (skip === 0) return finish(parsed[0])
        if (parsed[0] instanceof Error) return finish(parsed[0])
        skip--
        buffer = buffer.subarray(parsed[1])
      }
    })
    socket.write((password === undefined ? "" : encode(["AUTH", password])) + encode(args))
  })

/**
 * Sends one command to `127.0.0.1:port` on a fresh connection, for harness-level checks (`FLUSHALL`, `CLUSTER INFO`,
 * `DBSIZE`) that must not depend on the client under test. Array replies are not supported.
 */
export const redisCommand = (
  port: number,
  ...args: ReadonlyArray<string>
): Effect.Effect<string | null, RedisServerError> =>
  Effect.tryPromise({
    // Filling a server with hundreds of thousands of keys takes seconds when other test files share the cores.
    try: () => send(port, args, args[0] === "DEBUG" && args[1] === "POPULATE" ? 60_000 : undefined),
    catch: (cause) =>
      new RedisServerError({ message: `${args.join(" ")} on ${HOST}:${port} failed: ${String(cause)}`, cause })
  })

/**
 * Scoped: makes the server on `port` stop answering anyone for `seconds` (`DEBUG SLEEP`, which needs
 * `--enable-debug-command`), and returns once it is asleep: once a PING on another connection gets no answer within
 * 100 ms.
 */
export const sleepServer = (port: number, seconds: number): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function*() {
    // The harness's connection may give up before the server wakes: that is fine.
    yield* Effect.forkScoped(Effect.ignore(redisCommand(port, "DEBUG", "SLEEP", String(seconds))))
    const deadline = Date.now() + START_TIMEOUT_MS
    while (yield* Effect.promise(() => send(port, ["PING"], 100).then(() => true, () => false))) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`${HOST}:${port} did not fall asleep`))
    }
  })

/** Bytes received on connections to `port` that the server has not read yet, from /proc/net/tcp (Linux). */
const unreadBytes = (port: number): number => {
  let total = 0
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let table: string
    try {
      table = fs.readFileSync(file, "utf8")
    } catch {
      continue
    }
    for (const line of table.split("\n").slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue ...; state 01 is ESTABLISHED
      const [, local = "", , state, queues = ""] = line.trim().split(/\s+/)
      if (state === "01" && parseInt(local.split(":")[1] ?? "", 16) === port) {
        total += parseInt(queues.split(":")[1] ?? "0", 16)
      }
    }
  }
  return total
}

/**
 * Waits until a command sent to the (sleeping) server on `port` sits unread in its socket: a client has sent it and
 * the server has not read it. Linux only; elsewhere it waits 150 ms instead.
 */
export const awaitUnreadCommand = (port: number): Effect.Effect<void> =>
  Effect.gen(function*() {
    if (!fs.existsSync("/proc/net/tcp")) return yield* delay(150)
    const deadline = Date.now() + START_TIMEOUT_MS
    while (unreadBytes(port) === 0) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`no unread command on ${HOST}:${port}`))
      yield* delay(5)
    }
  })

/** Cluster nodes also bind the bus on port + 10000, so that one must be free too (see `ports.ts`). */
export const freePort = (withClusterBus: boolean): Effect.Effect<number, RedisServerError> =>
  Effect.tryPromise({
    try: () => Ports.freePort(withClusterBus),
    catch: (cause) => new RedisServerError({ message: `could not find a free port: ${String(cause)}`, cause })
  })

const isListening = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = net.connect({ host: HOST, port })
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
  })

class Instance {
  running = true
  /** Tail of stdout + stderr: kept for error messages instead of flooding the test output. */
  log = ""
  /** Settles once the process is gone, or never started. */
  readonly exited: Promise<void>

  constructor(readonly child: ChildProcess) {
    registry.children.add(child)
    const append = (chunk: Buffer) => {
      this.log = (this.log + chunk.toString("utf8")).slice(-LOG_TAIL_CHARS)
    }
    child.stdout?.on("data", append)
    child.stderr?.on("data", append)
    this.exited = new Promise((resolve) => {
      const gone = (detail: string) => {
        this.running = false
        registry.children.delete(child)
        this.log += `\n[harness] ${detail}`
        resolve()
      }
      child.once("exit", (code, signal) => gone(signal !== null ? `killed by ${signal}` : `exited with code ${code}`))
      child.once("error", (error) => gone(`failed to spawn: ${error.message}`))
    })
  }
}

const STDIO: StdioOptions = ["ignore", "pipe", "pipe"]

const spawnInstance = (bin: string, args: ReadonlyArray<string>): Instance => {
  const wrapper = setpriv()
  return new Instance(
    wrapper === null
      ? spawn(bin, args, { stdio: STDIO })
      : spawn(wrapper, ["--pdeathsig", "KILL", "--", bin, ...args], { stdio: STDIO })
  )
}

const stopInstance = (instance: Instance | undefined): Effect.Effect<void> =>
  instance === undefined ? Effect.void : Effect.promise(() => {
    if (instance.running) instance.child.kill("SIGKILL")
    return instance.exited
  })

/** PONG alone is not enough: after a lost bind race the port may belong to another worker's server. */
const answersAsOwnProcess = async (port: number, pid: number | undefined): Promise<boolean> => {
  try {
    if ((await send(port, ["PING"], 1_000)) !== "PONG") return false
    const info = await send(port, ["INFO", "server"], 1_000)
    return info?.includes(`process_id:${pid}\r\n`) ?? false
  } catch {
    return false
  }
}

const waitReady = (instance: Instance, port: number, deadline: number): Effect.Effect<"ready" | "exited" | "timeout"> =>
  Effect.gen(function*() {
    while (true) {
      if (!instance.running) return "exited"
      if (yield* Effect.promise(() => answersAsOwnProcess(port, instance.child.pid))) return "ready"
      if (Date.now() >= deadline) return "timeout"
      yield* delay(20)
    }
  })

interface Node {
  readonly bin: string
  readonly dir: string
  readonly cluster: boolean
  readonly extraArgs: ReadonlyArray<string>
  readonly password: string | undefined
  port: number
  instance: Instance | undefined
  closed: boolean
}

const serverArgs = (node: Node): Array<string> => [
  ...["--port", String(node.port), "--bind", HOST, "--save", "", "--appendonly", "no", "--dir", node.dir],
  ...["--daemonize", "no", "--protected-mode", "no", "--logfile", ""],
  ...(node.cluster
    ? ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000"]
    : []),
  ...(node.password === undefined ? [] : ["--requirepass", node.password, "--masterauth", node.password]),
  ...node.extraArgs
]

const closedError = (node: Node) =>
  new RedisServerError({ message: `redis-server on ${HOST}:${node.port} belongs to a closed scope` })

/** Spawns and waits for PING, retrying when another process won the race for the port. */
const launch = (node: Node, pickNewPort: boolean): Effect.Effect<void, RedisServerError> =>
  Effect.gen(function*() {
    const deadline = Date.now() + START_TIMEOUT_MS
    for (let attempt = 1;; attempt++) {
      if (pickNewPort) node.port = yield* freePort(node.cluster)
      if (node.closed) return yield* Effect.fail(closedError(node))
      if (node.password !== undefined) passwords.set(node.port, node.password)
      const args = serverArgs(node)
      const instance = spawnInstance(node.bin, args)
      node.instance = instance
      const outcome = yield* waitReady(instance, node.port, deadline)
      if (outcome === "ready") return
      yield* stopInstance(instance)
      if (outcome === "exited" && ADDRESS_IN_USE.test(instance.log) && attempt < BIND_ATTEMPTS) {
        // A node ID minted for the lost port must not follow the server to its new one.
        if (pickNewPort) fs.rmSync(path.join(node.dir, "nodes.conf"), { force: true })
        else yield* delay(200)
        continue
      }
      const reason = outcome === "exited"
        ? "exited during start-up"
        : `did not answer PING within ${START_TIMEOUT_MS} ms`
      const command = [node.bin, ...args].map((arg) => arg === "" ? `""` : arg).join(" ")
      return yield* Effect.fail(
        new RedisServerError({
          message: `redis-server on ${HOST}:${node.port} ${reason}\ncommand: ${command}\n--- server output ---\n` +
            instance.log.trim()
        })
      )
    }
  })

const waitPortClosed = (port: number): Effect.Effect<void> =>
  Effect.gen(function*() {
    const deadline = Date.now() + START_TIMEOUT_MS
    while ((yield* Effect.promise(() => isListening(port))) && Date.now() < deadline) yield* delay(10)
  })

/** Options of a server (or of every node of a cluster). */
export interface ServerOptions {
  /** Appended to the harness's own (later ones win); they must not change `--port`, `--bind` or `--dir`. */
  readonly args?: ReadonlyArray<string>
  /** `requirepass` and `masterauth`; the harness's own probes authenticate with it. */
  readonly password?: string
}

const startServer = (options: ServerOptions, cluster: boolean) =>
  Effect.gen(function*() {
    const bin = yield* resolveExecutable("REDIS_SERVER_BIN", "redis-server")
    const dir = yield* Effect.acquireRelease(
      Effect.try({
        try: () => {
          const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-kv-redis-"))
          registry.dirs.add(dir)
          return dir
        },
        catch: (cause) => new RedisServerError({ message: `could not create a temp dir: ${String(cause)}`, cause })
      }),
      (dir) =>
        Effect.sync(() => {
          fs.rmSync(dir, { recursive: true, force: true })
          registry.dirs.delete(dir)
        })
    )
    const node: Node = {
      bin,
      dir,
      cluster,
      extraArgs: options.args ?? [],
      password: options.password,
      port: 0,
      instance: undefined,
      closed: false
    }
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        node.closed = true
        return stopInstance(node.instance)
      })
    )
    yield* launch(node, true)
    const kill = Effect.suspend(() => stopInstance(node.instance)).pipe(Effect.andThen(waitPortClosed(node.port)))
    const server: RedisServer = {
      host: HOST,
      port: node.port,
      url: `redis://${HOST}:${node.port}`,
      kill,
      restart: Effect.suspend(() =>
        node.closed ? Effect.fail(closedError(node)) : kill.pipe(Effect.andThen(launch(node, false)))
      )
    }
    return server
  })

/**
 * Scoped: starts a standalone server on a free loopback port; stops it (and deletes its temp dir) when the scope
 * closes.
 */
export const startRedisServer = (
  options?: ServerOptions
): Effect.Effect<RedisServer, RedisServerError, Scope.Scope> => startServer(options ?? {}, false)

const runCli = (cli: string, args: ReadonlyArray<string>): Effect.Effect<void, RedisServerError> =>
  Effect.callback<void, RedisServerError>((resume) => {
    const child = execFile(cli, args, { timeout: CLUSTER_TIMEOUT_MS }, (error, stdout, stderr) => {
      resume(
        error === null ? Effect.void : Effect.fail(
          new RedisServerError({
            message: `${cli} ${args.join(" ")} failed: ${error.message}\n${stdout}${stderr}`.trim(),
            cause: error
          })
        )
      )
    })
    return Effect.sync(() => child.kill("SIGKILL"))
  })

const clusterIsOk = async (ports: ReadonlyArray<number>): Promise<boolean> => {
  for (const port of ports) {
    const info = await send(port, ["CLUSTER", "INFO"], 1_000).catch(() => null)
    const ok = info !== null && info.includes("cluster_state:ok\r\n") &&
      info.includes("cluster_slots_assigned:16384\r\n") && info.includes(`cluster_known_nodes:${ports.length}\r\n`)
    if (!ok) return false
  }
  return true
}

const describeNode = async (port: number): Promise<string> =>
  `--- ${HOST}:${port} ---\n${await send(port, ["CLUSTER", "INFO"], 1_000).catch(String)}`

/**
 * Waits until every master reports `cluster_state:ok`, all 16384 slots assigned and knows every other master; also
 * useful after restarting a node, since the others may have flagged it as failed meanwhile.
 */
export const awaitClusterOk = (cluster: RedisCluster): Effect.Effect<void, RedisServerError> =>
  Effect.gen(function*() {
    const ports = [...cluster.nodes, ...cluster.replicas].map((node) => node.port)
    const deadline = Date.now() + CLUSTER_TIMEOUT_MS
    while (!(yield* Effect.promise(() => clusterIsOk(ports)))) {
      if (Date.now() >= deadline) {
        const infos = yield* Effect.promise(() => Promise.all(ports.map(describeNode)))
        return yield* Effect.fail(
          new RedisServerError({ message: `cluster not ok within ${CLUSTER_TIMEOUT_MS} ms\n${infos.join("\n")}` })
        )
      }
      yield* delay(50)
    }
  })

const replicasInSync = async (ports: ReadonlyArray<number>): Promise<boolean> => {
  for (const port of ports) {
    const info = await send(port, ["INFO", "replication"], 1_000).catch(() => null)
    if (info === null || !info.includes("master_link_status:up\r\n")) return false
  }
  return true
}

/** Whether the node on `port` is a replica in its own view (`role:slave`), which CLUSTER REPLICATE sets at once. */
const isReplica = async (port: number): Promise<boolean> =>
  (await send(port, ["INFO", "replication"], 1_000))?.includes("role:slave\r\n") ?? false

export interface ClusterOptions {
  /** Default 3. */
  readonly masters?: number
  /** Replicas per master. Default 0. */
  readonly replicas?: number
  /** Options of the node with this index (in creation order), e.g. a TLS port of its own. */
  readonly node?: (index: number) => Effect.Effect<ServerOptions>
}

/**
 * Scoped: starts `masters` (default 3) cluster-enabled servers and `replicas` per master, runs `redis-cli --cluster
 * create ... --cluster-replicas n --cluster-yes`, waits until every node reports cluster_state:ok, all 16384 slots
 * are assigned and every replica's link to its master is up.
 */
export const startRedisCluster = (
  options?: ClusterOptions
): Effect.Effect<RedisCluster, RedisServerError, Scope.Scope> =>
  Effect.gen(function*() {
    const masters = options?.masters ?? 3
    const replicas = options?.replicas ?? 0
    if (!Number.isInteger(masters) || masters < 3) {
      return yield* Effect.fail(new RedisServerError({ message: `a cluster needs at least 3 masters, got ${masters}` }))
    }
    const cli = yield* resolveExecutable("REDIS_CLI_BIN", "redis-cli")
    const servers = yield* Effect.forEach(
      Array.from({ length: masters * (1 + replicas) }, (_, i) => i),
      (i) => Effect.flatMap(options?.node?.(i) ?? Effect.succeed({}), (node) => startServer(node, true)),
      { concurrency: "unbounded" }
    )
    const addresses = servers.map((server) => `${HOST}:${server.port}`)
    const password = passwords.get(servers[0].port)
    yield* runCli(cli, [
      ...(password === undefined ? [] : ["-a", password, "--no-auth-warning"]),
      ...["--cluster", "create", ...addresses, "--cluster-replicas", String(replicas), "--cluster-yes"]
    ])
    const replicaFlags = yield* Effect.promise(() => Promise.all(servers.map((server) => isReplica(server.port))))
    const masterServers = servers.filter((_, i) => !replicaFlags[i])
    if (masterServers.length !== masters) {
      return yield* Effect.fail(
        new RedisServerError({
          message: `expected ${masters} masters after cluster create, found ${masterServers.length}`
        })
      )
    }
    const cluster: RedisCluster = {
      nodes: masterServers.map(({ host, port }) => ({ host, port })),
      servers: masterServers,
      replicas: servers.filter((_, i) => replicaFlags[i])
    }
    yield* awaitClusterOk(cluster)
    const deadline = Date.now() + CLUSTER_TIMEOUT_MS
    while (!(yield* Effect.promise(() => replicasInSync(cluster.replicas.map((server) => server.port))))) {
      if (Date.now() >= deadline) {
        return yield* Effect.fail(
          new RedisServerError({ message: `replicas not in sync within ${CLUSTER_TIMEOUT_MS} ms` })
        )
      }
      yield* delay(50)
    }
    return cluster
  })

/**
 * A cluster of 3 masters, each with a replica, and a short node timeout (1 s): for the tests that kill a master and
 * wait for its replica to take over.
 */
export const startFailoverCluster: Effect.Effect<RedisCluster, RedisServerError, Scope.Scope> = Effect.suspend(() =>
  startRedisCluster({
    replicas: 1,
    node: () => Effect.succeed({ args: ["--cluster-node-timeout", "1000"] })
  })
)
