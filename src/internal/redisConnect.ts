/**
 * Creating and connecting the clients `layerRedis` owns: which options each library gets so that commands never wait
 * in an offline queue, a lost connection never crashes the process, and the client reconnects forever once it has
 * connected.
 *
 * @internal
 */
import type { RedisTlsOptions } from "../RedisKvStore.ts"
import { invalidOption, optionError, redactUrl } from "./options.ts"
import { adapt, closeNodeRedis, type RedisAdapter } from "./redisClients.ts"
import { rememberClient } from "./redisWatch.ts"

// The clients are typed loosely on purpose: the shapes differ across major versions and the libraries are optional.
type Loose = any

/**
 * Where an owned client connects to and how it authenticates. Credentials and TLS come from the options or from the
 * URL(s), and apply to every connection the client opens: on a cluster, to discovery and to every node.
 */
export type Target =
  | { readonly _tag: "Standalone"; readonly url: string }
  | { readonly _tag: "Cluster"; readonly rootNodes: ReadonlyArray<string> }

export interface Connection {
  readonly target: Target
  readonly username: string | undefined
  readonly password: string | undefined
  /** `undefined`: no TLS. */
  readonly tls: RedisTlsOptions | undefined
  /** Passed through to the library's constructor, under effect-kv's own settings. */
  readonly clientOptions: { readonly [option: string]: unknown }
}

const URL_FORM = "a redis:// or rediss:// URL"

const parseUrl = (url: unknown, name: string): URL => {
  if (typeof url !== "string") throw invalidOption("redis", name, URL_FORM, url)
  // Node's "Invalid URL" error carries the input, password included: it is not kept as a cause.
  const parsed = URL.canParse(url) ? new URL(url) : undefined
  if (parsed === undefined || (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:")) {
    throw invalidOption("redis", name, URL_FORM, redactUrl(url))
  }
  return parsed
}

const withProtocol = (url: string, tls: boolean): string => tls ? url.replace(/^redis:/i, "rediss:") : url

/**
 * Validates where to connect and merges the credentials and TLS given as options with those given in the URL(s).
 * Throws a `KvInputError` naming the option for anything inconsistent.
 */
export const connection = (options: {
  readonly url?: string | undefined
  readonly cluster?: { readonly rootNodes: ReadonlyArray<string> } | undefined
  readonly username?: string | undefined
  readonly password?: string | undefined
  readonly tls?: RedisTlsOptions | boolean | undefined
  readonly clientOptions?: object | undefined
}): Connection => {
  if (options.cluster !== undefined && options.url !== undefined) {
    throw optionError("redis", "cluster", "give either url (a standalone server) or cluster, not both")
  }
  const urls = options.cluster !== undefined ? options.cluster.rootNodes : [options.url ?? "redis://127.0.0.1:6379"]
  if (!Array.isArray(urls) || urls.length === 0) {
    // Not the value itself: a string here is a URL, perhaps with a password.
    throw optionError(
      "redis",
      "cluster.rootNodes",
      `cluster.rootNodes must be a non-empty array of ${URL_FORM}s, received ${
        Array.isArray(urls) ? "an empty array" : typeof urls
      }`
    )
  }
  const parsed = urls.map((url, i) => parseUrl(url, options.cluster === undefined ? "url" : `cluster.rootNodes[${i}]`))
  const withCredentials = parsed.find((url) => url.username !== "" || url.password !== "")
  if (withCredentials !== undefined && (options.username !== undefined || options.password !== undefined)) {
    throw optionError(
      "redis",
      options.username !== undefined ? "username" : "password",
      "give the credentials in the URL or as username/password, not both"
    )
  }
  if (
    options.cluster !== undefined &&
    parsed.some((url) => url.pathname !== "" && url.pathname !== "/" && url.pathname !== "/0")
  ) {
    throw optionError(
      "redis",
      "cluster.rootNodes",
      "a Redis Cluster has only database 0; remove the /db from the root nodes"
    )
  }
  if (
    options.clientOptions !== undefined && (typeof options.clientOptions !== "object" || options.clientOptions === null)
  ) {
    throw invalidOption("redis", "clientOptions", "an object of the client library's options", options.clientOptions)
  }
  const tls = options.tls === true || (options.tls === undefined && parsed.some((url) => url.protocol === "rediss:"))
    ? {}
    : options.tls === false || options.tls === undefined
    ? undefined
    : options.tls
  const decode = (part: string | undefined) => part === undefined || part === "" ? undefined : decodeURIComponent(part)
  const target: Target = options.cluster !== undefined
    ? { _tag: "Cluster", rootNodes: urls.map((url) => withProtocol(url, tls !== undefined)) }
    : { _tag: "Standalone", url: withProtocol(urls[0], tls !== undefined) }
  return {
    target,
    username: options.username ?? decode(withCredentials?.username),
    password: options.password ?? decode(withCredentials?.password),
    tls,
    clientOptions: (options.clientOptions ?? {}) as Connection["clientOptions"]
  }
}

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
  readonly connection: Connection
  readonly connectTimeoutMs: number
}

/** Reconnection backoff once connected: keep trying forever, at most every 2 s, with jitter against stampedes. */
const backoff = (attempt: number): number =>
  Math.min(50 * 2 ** Math.min(attempt, 10), 2000) + Math.floor(Math.random() * 100)

/**
 * Creates a client configured never to queue commands while disconnected (they fail at once) and to reconnect
 * forever after the first connection; attaches listeners for its errors and its cluster nodes' errors, so a lost
 * connection never crashes the process. The returned promise rejects when the first connection fails; the client is
 * then already closed.
 */
export const connect = async (
  options: ConnectOptions,
  onError: (error: unknown, node?: string) => void,
  signal: AbortSignal
): Promise<RedisAdapter> => {
  const client = options.library.name === "node-redis" ? createNodeRedis(options) : createIoRedis(options)
  client.on("error", onError)
  // Errors of the connections to single cluster nodes: node-redis says "node-error", ioredis "node error".
  if (options.connection.target._tag === "Cluster") {
    if (options.library.name === "node-redis") {
      client.on("node-error", (error: unknown, node: Loose) => onError(error, `${node?.host}:${node?.port}`))
    } else {
      client.on("node error", (error: unknown, node: unknown) => onError(error, String(node)))
    }
  }
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
  return rememberClient(adapt(client), client)
}

/** node-redis takes TLS settings in `socket`, beside `tls: true`. */
const nodeRedisTls = (tls: RedisTlsOptions | undefined) =>
  tls === undefined ? {} : {
    tls: true,
    ...Object.fromEntries(Object.entries(tls).filter(([, value]) => value !== undefined))
  }

const credentials = (connection: Connection) => ({
  ...(connection.username === undefined ? {} : { username: connection.username }),
  ...(connection.password === undefined ? {} : { password: connection.password })
})

const createNodeRedis = ({ connection, connectTimeoutMs, library }: ConnectOptions): Loose => {
  const redis: Loose = library.module
  const user: Loose = connection.clientOptions
  let connected = false
  const socket = {
    // A second beyond the layer's own deadline, which is what reports a first connection that takes too long, as a
    // Timeout; the clients' timer would race it and report the same thing as a lost connection.
    connectTimeout: connectTimeoutMs + 1000,
    ...nodeRedisTls(connection.tls),
    // The first failure fails connect() (and the layer); after that, reconnect forever.
    reconnectStrategy: (retries: number, cause: Error) => connected ? backoff(retries) : cause
  }
  if (connection.target._tag === "Standalone") {
    const client = redis.createClient({
      ...user,
      url: connection.target.url,
      ...credentials(connection),
      disableOfflineQueue: true,
      socket: { ...user.socket, ...socket }
    })
    client.once("ready", () => connected = true)
    return client
  }
  return redis.createCluster({
    ...user,
    // Discovery asks a root node for the slots on a client of its own, with no command timeout, that
    // cluster.destroy() cannot reach: against a node that accepts but never answers it would stay connected
    // (keeping the process alive) after the layer gave up. An idle timeout bounds it; a second beyond
    // connectTimeout, so the layer's own deadline reports the failure first, as a Timeout. Only these discovery
    // clients get it.
    rootNodes: connection.target.rootNodes.map((url) => ({
      url,
      socket: { socketTimeout: connectTimeoutMs + 1000 }
    })),
    // The clients of the masters and replicas are built from `defaults` alone, never from the root nodes' URLs: the
    // credentials and TLS settings must be here for them to reach every node.
    defaults: {
      ...user.defaults,
      ...credentials(connection),
      disableOfflineQueue: true,
      socket: { ...user.defaults?.socket, ...socket, reconnectStrategy: backoff }
    }
  })
}

const createIoRedis = ({ connection, connectTimeoutMs, library }: ConnectOptions): Loose => {
  const ioredis: Loose = library.module
  const Redis = ioredis.Redis ?? ioredis.default
  const user: Loose = connection.clientOptions
  const common = {
    ...credentials(connection),
    ...(connection.tls === undefined ? {} : { tls: { ...connection.tls } }),
    lazyConnect: true,
    enableOfflineQueue: false,
    // Fail a command whose connection drops instead of holding it for a resend after reconnecting.
    maxRetriesPerRequest: 0,
    // As for node-redis: the layer's deadline reports a slow first connection.
    connectTimeout: connectTimeoutMs + 1000
  }
  if (connection.target._tag === "Standalone") {
    return new Redis(connection.target.url, { ...user, ...common, retryStrategy: backoff })
  }
  return new Redis.Cluster(connection.target.rootNodes.map(clusterNode), {
    ...user,
    lazyConnect: true,
    enableOfflineQueue: false,
    clusterRetryStrategy: backoff,
    // Every node connection, discovery's included, is built from `redisOptions`.
    redisOptions: { ...user.redisOptions, ...common }
  })
}

const clusterNode = (url: string) => {
  const parsed = new URL(url)
  return { host: parsed.hostname, port: Number(parsed.port || 6379) }
}
