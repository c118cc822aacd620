/**
 * Thin adapters over the two mainstream Redis clients, node-redis (`redis` v5/v6) and ioredis (v5/v6), standalone
 * and cluster. The store logic in `RedisKvStore.ts` only talks to `RedisAdapter`; everything that differs between the
 * libraries (how to scan each master, how readiness and errors look, how to connect and close) lives here.
 *
 * Neither library is imported statically: both are optional peer dependencies, and a caller's client of either
 * version is recognised by its shape (`instanceof` fails across versions).
 *
 * @internal
 */
import type { BackendReason } from "../BaseKvStore.ts"

/** One SCAN call on one server. */
export type Scan = (cursor: string, pattern: string, count: number) => Promise<readonly [string, ReadonlyArray<string>]>

export interface RedisAdapter {
  readonly library: "node-redis" | "ioredis"
  readonly cluster: boolean
  /** False while the client is connecting, reconnecting or closed: commands would be queued or rejected. */
  readonly isReady: () => boolean
  readonly get: (key: string) => Promise<string | null>
  readonly set: (key: string, value: string) => Promise<unknown>
  readonly del: (key: string) => Promise<unknown>
  /**
   * Any command, sent as is, for the operations beyond the hot path. `key` is the command's first key, which routes
   * it to its master in a cluster; `readonly` lets a cluster client send it to a replica.
   */
  readonly call: (key: string, args: ReadonlyArray<string>, readonly: boolean) => Promise<unknown>
  /** A SCAN per master (the one server when standalone). Rejects when a part of the keyspace has no known master. */
  readonly masters: () => Promise<ReadonlyArray<Scan>>
  readonly classify: (error: unknown) => BackendReason
  /** For clients effect-kv created: close, waiting at most `timeoutMs` for pending replies. */
  readonly close: (timeoutMs: number) => Promise<void>
}

// The clients are typed loosely on purpose: the shapes differ across major versions and the libraries are optional.
type Loose = any

// Server replies that mean "not available right now", not "your command is wrong".
const UNAVAILABLE_REPLY = /^(CLUSTERDOWN|LOADING|MASTERDOWN|TRYAGAIN|BUSY)\b/

const SYSTEM_ERRORS = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN"
])

const hasSystemCode = (error: Loose): boolean => typeof error?.code === "string" && SYSTEM_ERRORS.has(error.code)

const classifyReply = (error: Loose): BackendReason =>
  UNAVAILABLE_REPLY.test(String(error?.message)) ? "Unavailable" : "Failure"

const constructorNames = (error: unknown): Array<string> => {
  const names: Array<string> = []
  for (let proto = Object.getPrototypeOf(error); proto !== null; proto = Object.getPrototypeOf(proto)) {
    if (typeof proto.constructor?.name === "string") names.push(proto.constructor.name)
  }
  return names
}

// node-redis names its errors only through their classes.
const NODE_REDIS_CONNECTION_ERRORS = new Set([
  "ClientOfflineError",
  "ClientClosedError",
  "SocketClosedUnexpectedlyError",
  "DisconnectsClientError",
  "ConnectionTimeoutError",
  "SocketTimeoutError",
  "RootNodesUnavailableError",
  "ReconnectStrategyError",
  "MaxCommandRedirectionsError"
])

const classifyNodeRedis = (error: unknown): BackendReason => {
  const names = constructorNames(error)
  if (names.includes("ErrorReply")) return classifyReply(error)
  return names.some((name) => NODE_REDIS_CONNECTION_ERRORS.has(name)) || hasSystemCode(error)
    ? "Unavailable"
    : "Failure"
}

const IOREDIS_CONNECTION_ERROR =
  /Connection is closed|isn't writeable|isn't ready|None of startup nodes|Too many Cluster redirections|Failed to refresh slots|All keys in the pipeline|connect ETIMEDOUT/

const classifyIoRedis = (error: Loose): BackendReason => {
  if (error?.name === "ReplyError") return classifyReply(error)
  return error?.name === "MaxRetriesPerRequestError" || error?.name === "ClusterAllFailedError" ||
      hasSystemCode(error) || IOREDIS_CONNECTION_ERROR.test(String(error?.message))
    ? "Unavailable"
    : "Failure"
}

const nodeRedisScan = (client: Loose): Scan => async (cursor, pattern, count) => {
  const reply = await client.scan(cursor, { MATCH: pattern, COUNT: count })
  return [String(reply.cursor), reply.keys]
}

const ioRedisScan = (client: Loose): Scan => (cursor, pattern, count) =>
  client.scan(cursor, "MATCH", pattern, "COUNT", count)

export const closeNodeRedis = async (client: Loose, timeoutMs: number): Promise<void> => {
  // close() waits for pending replies and never settles while the server is down, so it gets a deadline, and
  // destroy() then drops whatever is left. v5's destroy() throws on an already closed client.
  if (client.isReady) {
    let timer: ReturnType<typeof setTimeout> | undefined
    await Promise.race([
      client.close().catch(() => undefined),
      new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))
    ])
    clearTimeout(timer)
  }
  try {
    client.destroy()
  } catch {
    // already closed
  }
}

const keyPrefixOf = (client: Loose): unknown => client.options?.keyPrefix ?? client._options?.keyPrefix

/**
 * Recognises a node-redis client or cluster, or an ioredis Redis or Cluster, of either major version.
 * Throws a `TypeError` that says what was expected for anything else.
 */
export const adapt = (client: unknown): RedisAdapter => {
  const c = client as Loose
  if (c === null || typeof c !== "object") {
    throw new TypeError(
      `effect-kv redis: expected a node-redis or ioredis client, received ${c === null ? "null" : typeof c}`
    )
  }
  const clientPrefix = keyPrefixOf(c)
  if (typeof clientPrefix === "string" && clientPrefix.length > 0) {
    // SCAN neither applies nor strips a client-side prefix, so listing would return keys nothing else can read.
    throw new TypeError(
      `effect-kv redis: the client has keyPrefix ${JSON.stringify(clientPrefix)}; ` +
        "create it without one and pass the namespace as effect-kv's keyPrefix option instead"
    )
  }
  if (typeof c.status === "string" && typeof c.isCluster === "boolean") {
    return c.isCluster ? ioRedisCluster(c) : ioRedis(c)
  }
  if (Array.isArray(c.masters) && typeof c.nodeClient === "function") return nodeRedisCluster(c)
  if (typeof c.scanIterator === "function" && typeof c.isOpen === "boolean") return nodeRedis(c)
  throw new TypeError(
    "effect-kv redis: expected a node-redis client or cluster (redis v5/v6) or an ioredis Redis or Cluster (v5/v6); " +
      "a node-redis client pool is not supported"
  )
}

const nodeRedis = (client: Loose): RedisAdapter => {
  // v6 gives every command a 5 s timeout implemented with an AbortSignal, which costs more than the round trip at
  // high concurrency and stops counting once the command is written. effect-kv enforces its own deadline instead.
  const fast = client.withCommandOptions({ timeout: 0 })
  return {
    library: "node-redis",
    cluster: false,
    isReady: () => client.isReady === true,
    get: (key) => fast.get(key),
    set: (key, value) => fast.set(key, value),
    del: (key) => fast.del(key),
    call: (_key, args) => fast.sendCommand(args),
    masters: async () => [nodeRedisScan(fast)],
    classify: classifyNodeRedis,
    close: (timeoutMs) => closeNodeRedis(client, timeoutMs)
  }
}

const nodeRedisCluster = (cluster: Loose): RedisAdapter => {
  const fast = cluster.withCommandOptions({ timeout: 0 })
  return {
    library: "node-redis",
    cluster: true,
    // v5 clusters have no isReady.
    isReady: () => (cluster.isReady ?? cluster.isOpen) === true,
    get: (key) => fast.get(key),
    set: (key, value) => fast.set(key, value),
    del: (key) => fast.del(key),
    call: (key, args, readonly) => fast.sendCommand(key, readonly, args),
    // A bare SCAN through the cluster object reaches one random node (v5); every master must be scanned.
    masters: async () => {
      const masters: ReadonlyArray<unknown> = cluster.masters
      if (masters.length === 0) throw Object.assign(new Error("the cluster knows no master"), { code: "ECONNREFUSED" })
      return Promise.all(masters.map(async (master) => nodeRedisScan(await cluster.nodeClient(master))))
    },
    classify: classifyNodeRedis,
    close: (timeoutMs) => closeNodeRedis(cluster, timeoutMs)
  }
}

const ioRedis = (client: Loose): RedisAdapter => ({
  library: "ioredis",
  cluster: false,
  isReady: () => client.status === "ready",
  get: (key) => client.get(key),
  set: (key, value) => client.set(key, value),
  del: (key) => client.del(key),
  call: (_key, args) => client.call(...args),
  masters: async () => [ioRedisScan(client)],
  classify: classifyIoRedis,
  close: async () => client.disconnect()
})

const SLOTS = 16384

const ioRedisCluster = (cluster: Loose): RedisAdapter => ({
  library: "ioredis",
  cluster: true,
  isReady: () => cluster.status === "ready",
  get: (key) => cluster.get(key),
  set: (key, value) => cluster.set(key, value),
  del: (key) => cluster.del(key),
  // ioredis routes a command by the keys its command table names, EVALSHA's included.
  call: (_key, args) => cluster.call(...args),
  masters: async () => {
    const masters: ReadonlyArray<Loose> = cluster.nodes("master")
    // A master that is down can drop out of nodes("master"); scanning the rest would "succeed" without its keys.
    const known = new Set(masters.map((node) => `${node.options.host}:${node.options.port}`))
    for (let slot = 0; slot < SLOTS; slot++) {
      const owner = cluster.slots[slot]?.[0]
      if (owner === undefined || !known.has(owner)) {
        throw new Error(`Cluster isn't ready: slot ${slot} has no reachable master`)
      }
    }
    return masters.map(ioRedisScan)
  },
  classify: classifyIoRedis,
  close: async () => cluster.disconnect()
})
