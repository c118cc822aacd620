/**
 * Thin adapters over the two mainstream Redis clients, node-redis (`redis` v5/v6) and ioredis (v5/v6), standalone
 * and cluster. The store in `redisStore.ts` only talks to `RedisAdapter`; everything that differs between the
 * libraries (how to scan each master, how readiness, closing and errors look) lives here. Creating and connecting
 * the clients the layer owns is in `redisConnect.ts`.
 *
 * Neither library is imported statically: both are optional peer dependencies, and a caller's client of either
 * version is recognised by its shape (`instanceof` fails across versions).
 *
 * @internal
 */
import type { BackendReason } from "../BaseKvStore.ts"
import { invalidOption, optionError } from "./options.ts"

/** One SCAN call on one server. */
export type Scan = (
  cursor: string,
  pattern: string,
  count: number
) => Promise<readonly [string, ReadonlyArray<unknown>]>

export interface RedisAdapter {
  /** A cluster client: one command may not span hash slots, so batches are split by slot. */
  readonly cluster: boolean
  /** False while the client is connecting, reconnecting or closed: commands would be queued or rejected. */
  readonly isReady: () => boolean
  /** Whether the client has been ready at least once: after that, "not ready" means disconnected. */
  readonly hasBeenReady: () => boolean
  /** Calls `listener` once, the next time the client becomes ready; returns a function that cancels it. */
  readonly onReady: (listener: () => void) => () => void
  /**
   * `"layer"` once the layer that created the client closed it, `"client"` when the caller's client was closed (or
   * gave up reconnecting): it will not come back by itself. `undefined` otherwise.
   */
  readonly closed: () => "layer" | "client" | undefined
  readonly get: (key: string) => Promise<unknown>
  readonly set: (key: string, value: string) => Promise<unknown>
  readonly del: (key: string) => Promise<unknown>
  /**
   * Any command, sent as is, for the operations beyond the hot path. `key` is the command's first key, which routes
   * it to its master in a cluster; `readonly` lets a cluster client send it to a replica.
   */
  readonly call: (key: string, args: ReadonlyArray<string>, readonly: boolean) => Promise<unknown>
  /**
   * A SCAN per master (the one server when standalone). Rejects with `UncoveredSlotsError` when a part of the
   * keyspace has no reachable master: scanning the others would return a listing without its keys.
   */
  readonly masters: () => Promise<ReadonlyArray<Scan>>
  readonly classify: (error: unknown) => BackendReason
  /** For clients effect-kv created: close, waiting at most `timeoutMs` for pending replies. */
  readonly close: (timeoutMs: number) => Promise<void>
}

// The clients are typed loosely on purpose: the shapes differ across major versions and the libraries are optional.
type Loose = any

/** A cluster slot without a reachable master, found before scanning. */
export class UncoveredSlotsError extends Error {
  override readonly name = "UncoveredSlotsError"
  constructor(readonly slot: number) {
    super(`Cluster isn't fully covered: slot ${slot} has no reachable master`)
  }
}

/**
 * Error replies whose code (the first word of the reply, by the protocol's convention: `-READONLY You can't write
 * against a read only replica.`) means "not now", not "your command is wrong": a write that reached a replica during
 * a failover, a server loading its dataset, a cluster without a quorum or mid-resharding, a script running.
 */
const UNAVAILABLE_REPLIES = new Set(["READONLY", "LOADING", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "BUSY"])

const replyCode = (error: Loose): string => {
  const message = String(error?.message)
  const space = message.indexOf(" ")
  return space < 0 ? message : message.slice(0, space)
}

const classifyReply = (error: Loose): BackendReason =>
  UNAVAILABLE_REPLIES.has(replyCode(error)) ? "Unavailable" : "Failure"

// The connection failed or was lost before the command could be answered.
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

const constructorNames = (error: unknown): Array<string> => {
  const names: Array<string> = []
  for (let proto = Object.getPrototypeOf(error); proto !== null; proto = Object.getPrototypeOf(proto)) {
    if (typeof proto.constructor?.name === "string") names.push(proto.constructor.name)
  }
  return names
}

// node-redis names its errors only through their classes (the same names in v5 and v6; TimeoutError is v6's).
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
const NODE_REDIS_TIMEOUT_ERRORS = new Set(["TimeoutError", "AbortError"])

const classifyNodeRedis = (error: unknown): BackendReason => {
  if (error instanceof UncoveredSlotsError) return "Unavailable"
  const names = constructorNames(error)
  if (names.includes("ErrorReply")) return classifyReply(error)
  if (names.some((name) => NODE_REDIS_TIMEOUT_ERRORS.has(name))) return "Timeout"
  return names.some((name) => NODE_REDIS_CONNECTION_ERRORS.has(name)) || hasSystemCode(error)
    ? "Unavailable"
    : "Failure"
}

// ioredis rejects with plain `Error`s for its client-side conditions (no class, no code), so for those only the
// message is left to go by.
const IOREDIS_CONNECTION_ERROR =
  /^(Connection is closed|Stream isn't writeable|Cluster isn't ready|None of startup nodes|Too many Cluster redirections|Failed to refresh slots)/
const IOREDIS_TIMEOUT_ERROR = /^Command timed out/

const classifyIoRedis = (error: Loose): BackendReason => {
  if (error instanceof UncoveredSlotsError) return "Unavailable"
  if (error?.name === "ReplyError") return classifyReply(error)
  if (error?.name === "MaxRetriesPerRequestError" || error?.name === "ClusterAllFailedError" || hasSystemCode(error)) {
    return "Unavailable"
  }
  const message = String(error?.message)
  return IOREDIS_TIMEOUT_ERROR.test(message)
    ? "Timeout"
    : IOREDIS_CONNECTION_ERROR.test(message)
    ? "Unavailable"
    : "Failure"
}

/** The reason of an error from either library, e.g. one seen before the first connection. */
export const classify = (library: "node-redis" | "ioredis", error: unknown): BackendReason =>
  library === "node-redis" ? classifyNodeRedis(error) : classifyIoRedis(error)

const nodeRedisScan = (client: Loose): Scan => async (cursor, pattern, count) => {
  const reply = await client.scan(cursor, { MATCH: pattern, COUNT: count })
  return [String(reply.cursor), reply.keys]
}

const ioRedisScan = (client: Loose): Scan => (cursor, pattern, count) =>
  client.scan(cursor, "MATCH", pattern, "COUNT", count)

/** node-redis v5 clusters have no `isReady`; their `isOpen` is set once discovery succeeded. */
const nodeRedisReady = (client: Loose): boolean => (client.isReady ?? client.isOpen) === true

export const closeNodeRedis = async (client: Loose, timeoutMs: number): Promise<void> => {
  // close() waits for pending replies and never settles while the server is down, so it gets a deadline, and
  // destroy() then drops whatever is left. v5's destroy() throws on an already closed client.
  if (nodeRedisReady(client)) {
    let timer: ReturnType<typeof setTimeout> | undefined
    const closed = await Promise.race([
      client.close().then(() => true, () => false),
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)))
    ])
    clearTimeout(timer)
    if (closed) return
  }
  try {
    client.destroy()
  } catch {
    // already closed
  }
}

const keyPrefixOf = (client: Loose): unknown => client.options?.keyPrefix ?? client._options?.keyPrefix

/** What every adapter derives the same way from the client's readiness and its "ready" event. */
interface Readiness {
  readonly isReady: () => boolean
  readonly hasBeenReady: () => boolean
  readonly onReady: (listener: () => void) => () => void
}

const readiness = (client: Loose, isReady: () => boolean, event: string): Readiness => {
  let everReady = isReady()
  if (!everReady) client.once(event, () => everReady = true)
  return {
    isReady,
    hasBeenReady: () => everReady || (everReady = isReady()),
    onReady: (listener) => {
      client.once(event, listener)
      return () => client.removeListener(event, listener)
    }
  }
}

const CLIENT = "a node-redis client or cluster (redis v5/v6) or an ioredis Redis or Cluster (v5/v6)"

/**
 * Recognises a node-redis client or cluster, or an ioredis Redis or Cluster, of either major version.
 * Throws a `KvInputError` (option `redis`) that says what was expected for anything else.
 */
export const adapt = (client: unknown): RedisAdapter => {
  const c = client as Loose
  if (c === null || typeof c !== "object") throw invalidOption("redis", "redis", CLIENT, c)
  const clientPrefix = keyPrefixOf(c)
  if (typeof clientPrefix === "string" && clientPrefix.length > 0) {
    // SCAN neither applies nor strips a client-side prefix, so listing would return keys nothing else can read.
    throw optionError(
      "redis",
      "redis",
      `redis must be a client without a keyPrefix of its own, received one with keyPrefix ${
        JSON.stringify(clientPrefix)
      }: create it without one and pass the namespace as effect-kv's keyPrefix option instead`
    )
  }
  if (typeof c.status === "string" && typeof c.isCluster === "boolean") {
    return c.isCluster ? ioRedisCluster(c) : ioRedis(c)
  }
  if (Array.isArray(c.masters) && typeof c.nodeClient === "function") return nodeRedisCluster(c)
  if (typeof c.scanIterator === "function" && typeof c.isOpen === "boolean") return nodeRedis(c)
  throw invalidOption(
    "redis",
    "redis",
    `${CLIENT}; a node-redis client pool is not supported`,
    c
  )
}

/**
 * The `closed` and `close` of an adapter, and its `isReady`: false from the moment the layer starts closing the
 * client, since ioredis says so only once the socket has closed.
 */
const lifecycle = (
  isReady: () => boolean,
  closedByCaller: () => boolean,
  close: (timeoutMs: number) => Promise<void>
) => {
  let closedByLayer = false
  return {
    isReady: () => !closedByLayer && isReady(),
    closed: () => closedByLayer ? "layer" as const : closedByCaller() ? "client" as const : undefined,
    close: (timeoutMs: number) => {
      closedByLayer = true
      return close(timeoutMs)
    }
  }
}

const nodeRedis = (client: Loose): RedisAdapter => {
  // v6 gives every command a 5 s timeout implemented with an AbortSignal, which costs more than the round trip at
  // high concurrency and stops counting once the command is written. effect-kv enforces its own deadline instead.
  const fast = client.withCommandOptions({ timeout: 0 })
  const ready = readiness(client, () => client.isReady === true, "ready")
  return {
    cluster: false,
    ...ready,
    // isOpen stays true while node-redis reconnects; it is false only once the client was closed.
    ...lifecycle(
      ready.isReady,
      () => ready.hasBeenReady() && client.isOpen !== true,
      (timeoutMs) => closeNodeRedis(client, timeoutMs)
    ),
    get: (key) => fast.get(key),
    set: (key, value) => fast.set(key, value),
    del: (key) => fast.del(key),
    call: (_key, args) => fast.sendCommand(args),
    masters: async () => [nodeRedisScan(fast)],
    classify: classifyNodeRedis
  }
}

const SLOTS = 16384

const nodeRedisCluster = (cluster: Loose): RedisAdapter => {
  const fast = cluster.withCommandOptions({ timeout: 0 })
  // A cluster is ready once discovery succeeded, and says so with "connect".
  const ready = readiness(cluster, () => nodeRedisReady(cluster), "connect")
  return {
    cluster: true,
    ...ready,
    ...lifecycle(
      ready.isReady,
      () => ready.hasBeenReady() && cluster.isOpen !== true,
      (timeoutMs) => closeNodeRedis(cluster, timeoutMs)
    ),
    get: (key) => fast.get(key),
    set: (key, value) => fast.set(key, value),
    del: (key) => fast.del(key),
    call: (key, args, readonly) => fast.sendCommand(key, readonly, args),
    // A bare SCAN through the cluster object reaches one random node (v5); every master must be scanned, and every
    // slot must have one, or the listing would silently miss that part of the keyspace.
    masters: async () => {
      const masters: ReadonlyArray<unknown> = cluster.masters
      const known = new Set(masters)
      for (let slot = 0; slot < SLOTS; slot++) {
        const master = cluster.slots[slot]?.master
        if (master === undefined || !known.has(master)) throw new UncoveredSlotsError(slot)
      }
      return Promise.all(masters.map(async (master) => {
        const client: Loose = await cluster.nodeClient(master)
        // The node clients keep v6's own 5 s command timeout; the listing has deadlines of its own.
        return nodeRedisScan(client.withCommandOptions({ timeout: 0 }))
      }))
    },
    classify: classifyNodeRedis
  }
}

const ioRedisReady = (client: Loose): Readiness => readiness(client, () => client.status === "ready", "ready")

const ioRedis = (client: Loose, ready = ioRedisReady(client)): RedisAdapter => ({
  cluster: false,
  ...ready,
  // "end": closed by its owner, or its retryStrategy gave up: no reconnection will follow.
  ...lifecycle(ready.isReady, () => client.status === "end", async () => client.disconnect()),
  get: (key) => client.get(key),
  set: (key, value) => client.set(key, value),
  del: (key) => client.del(key),
  call: (_key, args) => client.call(...args),
  masters: async () => [ioRedisScan(client)],
  classify: classifyIoRedis
})

/** The first slot whose owner is not among the masters ioredis is connected to, if any. */
const ioRedisUncovered = (cluster: Loose): number | undefined => {
  const masters: ReadonlyArray<Loose> = cluster.nodes("master")
  // A master that is down can drop out of nodes("master"); scanning the rest would "succeed" without its keys.
  const known = new Set(masters.map((node) => `${node.options.host}:${node.options.port}`))
  for (let slot = 0; slot < SLOTS; slot++) {
    const owner = cluster.slots[slot]?.[0]
    if (owner === undefined || !known.has(owner)) return slot
  }
  return undefined
}

const ioRedisCluster = (cluster: Loose, ready = ioRedisReady(cluster)): RedisAdapter => ({
  cluster: true,
  ...ready,
  ...lifecycle(ready.isReady, () => cluster.status === "end", async () => cluster.disconnect()),
  get: (key) => cluster.get(key),
  set: (key, value) => cluster.set(key, value),
  del: (key) => cluster.del(key),
  // ioredis routes a command by the keys its command table names, EVALSHA's included.
  call: (_key, args) => cluster.call(...args),
  masters: async () => {
    if (ioRedisUncovered(cluster) !== undefined) {
      // SCANs reach no slot, so nothing else makes ioredis notice a failover (a replica promoted in place of a dead
      // master): ask it to read the slots again before giving up on this listing.
      await new Promise<void>((resolve) => cluster.refreshSlotsCache(() => resolve()))
    }
    const uncovered = ioRedisUncovered(cluster)
    if (uncovered !== undefined) throw new UncoveredSlotsError(uncovered)
    return (cluster.nodes("master") as ReadonlyArray<Loose>).map(ioRedisScan)
  },
  classify: classifyIoRedis
})
