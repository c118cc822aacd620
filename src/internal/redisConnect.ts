/**
 * Creating and connecting the clients `layerRedis` owns: which options each library gets so that commands never wait
 * in an offline queue, a lost connection never crashes the process, and the client reconnects forever once it has
 * connected.
 *
 * @internal
 */
import { adapt, closeNodeRedis, type RedisAdapter } from "./redisClients.ts"

// The clients are typed loosely on purpose: the shapes differ across major versions and the libraries are optional.
type Loose = any

/** Where an owned client connects to. */
export type Target =
  | { readonly _tag: "Standalone"; readonly url: string }
  | { readonly _tag: "Cluster"; readonly rootNodes: ReadonlyArray<string> }

/** The client library's module, as `loadLibrary` returns it. */
export interface Library {
  readonly name: "node-redis" | "ioredis"
  readonly module: unknown
}

/**
 * Imports the client library, an optional peer dependency. Kept apart from `connect` so that loading it (hundreds of
 * milliseconds on a cold start) does not count against the connection deadline.
 */
export const loadLibrary = async (name: "node-redis" | "ioredis"): Promise<Library> => ({
  name,
  module: name === "node-redis" ? await import("redis") : await import("ioredis")
})

export interface ConnectOptions {
  readonly library: Library
  readonly target: Target
  readonly connectTimeoutMs: number
}

/** Reconnection backoff once connected: keep trying forever, at most every 2 s, with jitter against stampedes. */
const backoff = (attempt: number): number =>
  Math.min(50 * 2 ** Math.min(attempt, 10), 2000) + Math.floor(Math.random() * 100)

/**
 * Creates a client configured never to queue commands while disconnected (they fail at once) and to reconnect
 * forever after the first connection; attaches an `error` listener so a lost connection never crashes the process.
 * The returned promise rejects when the first connection fails; the client is then already closed.
 */
export const connect = async (
  options: ConnectOptions,
  onError: (error: unknown) => void,
  signal: AbortSignal
): Promise<{ readonly client: unknown; readonly adapter: RedisAdapter }> => {
  const client = options.library.name === "node-redis" ? createNodeRedis(options) : createIoRedis(options)
  client.on("error", onError)
  const close = (): Promise<void> =>
    options.library.name === "node-redis" ? closeNodeRedis(client, 0) : Promise.resolve(client.disconnect())
  signal.addEventListener("abort", close)
  try {
    await client.connect()
  } catch (error) {
    await close()
    throw error
  } finally {
    signal.removeEventListener("abort", close)
  }
  if (signal.aborted) throw signal.reason
  return { client, adapter: adapt(client) }
}

const createNodeRedis = (options: ConnectOptions): Loose => {
  const redis: Loose = options.library.module
  let connected = false
  const socket = {
    connectTimeout: options.connectTimeoutMs,
    // The first failure fails connect() (and the layer); after that, reconnect forever.
    reconnectStrategy: (retries: number, cause: Error) => connected ? backoff(retries) : cause
  }
  if (options.target._tag === "Standalone") {
    const client = redis.createClient({ url: options.target.url, disableOfflineQueue: true, socket })
    client.once("ready", () => connected = true)
    return client
  }
  return redis.createCluster({
    // Discovery asks a root node for the slots on a client of its own, with no command timeout, that
    // cluster.destroy() cannot reach: against a node that accepts but never answers it would stay connected
    // (keeping the process alive) after the layer gave up. An idle timeout bounds it; a second beyond
    // connectTimeout, so the layer's own deadline reports the failure first, as a Timeout. Only these discovery
    // clients get it: the clients of the masters are built from `defaults`.
    rootNodes: options.target.rootNodes.map((url) => ({
      url,
      socket: { socketTimeout: options.connectTimeoutMs + 1000 }
    })),
    defaults: { disableOfflineQueue: true, socket: { ...socket, reconnectStrategy: backoff } }
  })
}

const createIoRedis = (options: ConnectOptions): Loose => {
  const ioredis: Loose = options.library.module
  const Redis = ioredis.Redis ?? ioredis.default
  const common = {
    lazyConnect: true,
    enableOfflineQueue: false,
    // Fail a command whose connection drops instead of holding it for a resend after reconnecting.
    maxRetriesPerRequest: 0,
    connectTimeout: options.connectTimeoutMs
  }
  return options.target._tag === "Standalone"
    ? new Redis(options.target.url, { ...common, retryStrategy: backoff })
    : new Redis.Cluster(options.target.rootNodes.map(clusterNode), {
      lazyConnect: true,
      enableOfflineQueue: false,
      clusterRetryStrategy: backoff,
      redisOptions: { ...common, ...clusterCredentials(options.target.rootNodes[0]) }
    })
}

const clusterNode = (url: string) => {
  const parsed = new URL(url)
  return { host: parsed.hostname, port: Number(parsed.port || 6379) }
}

const clusterCredentials = (url: string | undefined) => {
  if (url === undefined) return {}
  const parsed = new URL(url)
  return {
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(parsed.protocol === "rediss:" ? { tls: {} } : {})
  }
}
