/**
 * The Redis backend: a `BaseKvStore` on Redis, standalone or Redis Cluster, through node-redis (`redis` v5/v6) or
 * ioredis (v5/v6).
 *
 * Provide `layerRedis({ url })` (or `layerRedisConfig()`, which reads `REDIS_URL`) where the program used
 * `memoryKvStore`; nothing else changes. The layer checks its options (a bad one fails it with `KvInputError`, reason
 * `"InvalidOption"`, before it connects), creates its client, connects while it builds (a failed connection fails
 * the layer with `KvBackendError`), and disconnects when its scope closes. `makeRedisBaseKvStore({ redis })` wraps a
 * client you already own.
 *
 * **Failure behaviour.** Every command has a deadline (`timeout`, default 2 seconds) enforced by effect-kv itself: the
 * clients' own timeouts stop counting once a command is written. While the connection is down, operations fail at
 * once with `KvBackendError` (reason `"Unavailable"`) instead of queueing; clients the layer creates reconnect forever
 * in the background, so operations succeed again when Redis is back, without a restart. A client that has never
 * been ready yet is waited for, within the same deadline. Errors are classified by the server's error code and the
 * client's error class: `Unavailable` is worth retrying (`READONLY` during a failover, `LOADING`, `CLUSTERDOWN`...),
 * `Timeout` may have been applied, `Failure` will not get better by itself.
 *
 * **Listing.** Without the ordered index, `list(prefix)` runs `SCAN` with the prefix's glob characters escaped and
 * `COUNT` = `scanCount` (default 1000) on every master at once, removes duplicates (SCAN may return a key twice),
 * strips the prefix and sorts. The
 * whole listing has one deadline, `listTimeout` (default: `timeout`), and fails as soon as one master fails, stopping
 * the others; on a cluster it fails unless every slot has a reachable master. SCAN walks the whole keyspace of each
 * master on every call, so a listing costs time proportional to the number of keys in Redis, not to the number
 * listed: fine for thousands to a few million keys, not for a hot path over a large keyspace.
 *
 * **Ordered index.** With `orderedIndex: true` the store keeps a sorted set of its keys, written in the same Lua
 * script as every write, and lists, pages, counts and clears from it with `ZRANGEBYLEX`, in O(log n + k). Expired keys
 * are swept out of it by every script (all of them before a listing). A namespace without the index's marker (written
 * without it, or flushed) is indexed from a SCAN on first use. Every writer of the namespace must go through the
 * index; delete the marker to rebuild after one did not. On a cluster the namespace must hold a hash tag (`"{app}:"`),
 * which keeps it on one master: an index per hash slot would keep keys spread but make every listing read 16,384
 * indexes (18 ms per master against about 1 ms, measured). Needs Redis 7.0.
 *
 * **Namespaces.** With `keyPrefix: "app1:"` every key is stored as `app1:<key>`, and nothing outside the namespace
 * is read, listed or deleted, so several applications can share one Redis.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import {
  type BaseKvStore,
  BaseKvStoreService,
  type KvInputError,
  type KvStoreError,
  type Telemetry
} from "./BaseKvStore.ts"
import {
  checkOptions,
  describeCause,
  durationMillis,
  invalidOption,
  optionError,
  redactUrl
} from "./internal/options.ts"
import { adapt, classify } from "./internal/redisClients.ts"
import { connect, connection, loadLibrary, type Target } from "./internal/redisConnect.ts"
import { checkIndexOptions } from "./internal/redisIndex.ts"
import { backendError, DEFAULT_CONNECT_TIMEOUT, makeStore, settings } from "./internal/redisStore.ts"
import { rememberClient } from "./internal/redisWatch.ts"

/**
 * A client of either mainstream library, standalone or cluster: `createClient()` / `createCluster()` from `redis`
 * v5/v6, or `new Redis()` / `new Cluster()` from `ioredis` v5/v6. Typed by the members effect-kv recognises them by
 * (the libraries are optional peer dependencies, so their own types are not imported); the shape is also checked at
 * run time.
 *
 * @since 0.1.0
 * @category models
 */
export type RedisClient =
  | { readonly isOpen: boolean; readonly scanIterator: (...args: Array<any>) => unknown }
  | { readonly masters: ReadonlyArray<unknown>; readonly nodeClient: (...args: Array<any>) => unknown }
  | { readonly status: string; readonly isCluster: boolean }

/**
 * Options shared by every way of building a Redis store.
 *
 * @since 0.1.0
 * @category models
 */
export interface RedisStoreOptions {
  /** Namespace prepended to every key; nothing outside it is touched. Default: none. */
  readonly keyPrefix?: string | undefined
  /**
   * Deadline of each Redis command (counted from the end of the tick it was issued in, when it is sent), and of
   * waiting for a client's first connection. Default: 2 seconds.
   */
  readonly timeout?: Duration.Input | undefined
  /** Deadline of a whole `list` (every SCAN page on every master). Default: `timeout`. */
  readonly listTimeout?: Duration.Input | undefined
  /** `COUNT` hint of each `SCAN` call in `list`. Default: 1000. */
  readonly scanCount?: number | undefined
  /**
   * Keep a sorted set of the namespace's keys, updated atomically with every write, and list, page, count and clear
   * from it in O(log n + k) instead of SCANning the whole keyspace. Every writer of the namespace must use it; on a
   * cluster the `keyPrefix` must hold a hash tag (`"{app}:"`). Needs Redis 7.0 or later. Default: false. See
   * "Ordered index" above.
   */
  readonly orderedIndex?: boolean | undefined
}

/**
 * Options of `makeRedisBaseKvStore`.
 *
 * @since 0.1.0
 * @category models
 */
export interface MakeRedisOptions extends RedisStoreOptions {
  /** A connected client or cluster client you own: effect-kv never closes it. */
  readonly redis: RedisClient
}

/**
 * Wraps a node-redis or ioredis client (standalone or cluster) that you own in a `BaseKvStore`. effect-kv never
 * closes it.
 *
 * Configure your client not to queue commands while disconnected (node-redis: `disableOfflineQueue: true`; ioredis:
 * `enableOfflineQueue: false, maxRetriesPerRequest: 0`) and give it an `error` listener: without one, node-redis
 * crashes the process when the connection drops. effect-kv also refuses commands while a client that has been ready
 * is not, so they fail at once instead of waiting in the client's queue; a client still making its first connection
 * (`new Redis(url)` used at once, or `connect()` not awaited) is waited for within the operation's deadline.
 *
 * Throws a `KvInputError` (reason `"InvalidOption"`, `argument` the option's name) at once when `redis` is not such
 * a client, when it has a client-side `keyPrefix` (use this `keyPrefix` instead: SCAN ignores the client's), or when
 * an option is out of range.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeRedisBaseKvStore = (options: MakeRedisOptions): BaseKvStore =>
  makeStore(rememberClient(adapt(options?.redis), options?.redis), settings(options ?? {}))

/**
 * A `Layer` over a client that another service owns, e.g. one your program already has in its context. The client
 * is read when the layer builds and is never closed by effect-kv; the same advice as for `makeRedisBaseKvStore`
 * applies. Invalid options or a value that is not a client fail the layer with `KvInputError` (reason
 * `"InvalidOption"`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRedisClient = <E, R>(
  client: Effect.Effect<RedisClient, E, R>,
  options: RedisStoreOptions = {}
): Layer.Layer<BaseKvStoreService, E | KvInputError, R> =>
  Layer.effect(
    BaseKvStoreService,
    Effect.flatMap(client, (redis) => checkOptions(() => makeRedisBaseKvStore({ ...options, redis })))
  )

/**
 * Options of `layerRedis`: where to connect, with which client library, and the store options.
 *
 * @since 0.1.0
 * @category models
 */
export interface LayerRedisOptions extends RedisStoreOptions {
  /**
   * A standalone server: `redis://[[user]:password@]host[:port][/db]` or `rediss://` for TLS. Default:
   * `redis://127.0.0.1:6379`.
   */
  readonly url?: string | undefined
  /**
   * A Redis Cluster: the URLs of some of its nodes. Give `url` or `cluster`, not both. Credentials and `rediss://` in
   * these URLs apply to every node the client connects to, not only to these.
   */
  readonly cluster?: { readonly rootNodes: ReadonlyArray<string> } | undefined
  /** The client library to create the client with. Default: `"node-redis"`. */
  readonly client?: "node-redis" | "ioredis" | undefined
  /** How long the layer waits for the first connection. Default: 5 seconds. */
  readonly connectTimeout?: Duration.Input | undefined
  /** ACL user name, instead of one in the URL(s). */
  readonly username?: string | undefined
  /** Password (`AUTH`), instead of one in the URL(s). */
  readonly password?: string | Redacted.Redacted<string> | undefined
  /**
   * TLS, for every connection (discovery and every cluster node): `true`, or the settings Node's `tls.connect`
   * takes for a CA, a client certificate and the server name. Implied by `rediss://` URLs.
   */
  readonly tls?: boolean | RedisTlsOptions | undefined
  /**
   * Anything else, passed through to the library: node-redis `createClient` / `createCluster` options, or ioredis
   * `Redis` / `Cluster` options (keepAlive, family, name, Sentinel...). effect-kv's own settings are applied on
   * top and win: no offline queue (node-redis `disableOfflineQueue`; ioredis `enableOfflineQueue: false`,
   * `maxRetriesPerRequest: 0`), its reconnection policy, `connectTimeout`, `lazyConnect`, and its error listeners.
   */
  readonly clientOptions?: { readonly [option: string]: unknown } | undefined
}

/**
 * TLS settings of `layerRedis`, translated for each client library (node-redis `socket`, ioredis `tls`).
 *
 * @since 0.1.0
 * @category models
 */
export interface RedisTlsOptions {
  /** The CA certificate(s) to trust, PEM; default: Node's bundled CAs. */
  readonly ca?: string | Buffer | ReadonlyArray<string | Buffer> | undefined
  /** A client certificate, PEM, for servers that require one (`tls-auth-clients yes`). */
  readonly cert?: string | Buffer | undefined
  /** The client certificate's private key, PEM. */
  readonly key?: string | Buffer | undefined
  /** Refuse a server whose certificate does not verify. Default: true. */
  readonly rejectUnauthorized?: boolean | undefined
  /** The name to check the server's certificate against (SNI), when it differs from the host. */
  readonly servername?: string | undefined
}

/** The settings, after the checks that need to know whether the target is a cluster. */
const checked = (store: ReturnType<typeof settings>, cluster: boolean) => {
  if (store.orderedIndex) checkIndexOptions(store.keyPrefix, cluster)
  return store
}

const libraryOf = (client: unknown): "node-redis" | "ioredis" => {
  if (client === undefined || client === "node-redis" || client === "ioredis") return client ?? "node-redis"
  throw invalidOption("redis", "client", "\"node-redis\" or \"ioredis\"", client)
}

/** The spans' server: the standalone server, or the first root node of a cluster (as OpenTelemetry suggests). */
const telemetryOf = (target: Target): Telemetry => {
  const url = new URL(target._tag === "Standalone" ? target.url : target.rootNodes[0])
  return { system: "redis", serverAddress: url.hostname, serverPort: Number(url.port || 6379) }
}

/**
 * A `Layer` providing `BaseKvStoreService` on Redis. It checks its options (failing with `KvInputError`, reason
 * `"InvalidOption"`, before any connection), creates its own client, connects while it builds (failing with
 * `KvBackendError`, operation `"connect"`, when it cannot within `connectTimeout`; the message carries the last
 * error the client saw, such as `WRONGPASS` or a certificate error), and closes the client when its scope closes.
 *
 * ```ts
 * program.pipe(Effect.provide(layerRedis({ url: "redis://localhost:6379", keyPrefix: "uploads:" })))
 * program.pipe(Effect.provide(layerRedis({ cluster: { rootNodes: ["redis://10.0.0.1:7000"] }, client: "ioredis" })))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRedis = (options: LayerRedisOptions = {}): Layer.Layer<BaseKvStoreService, KvStoreError> =>
  Layer.effect(
    BaseKvStoreService,
    Effect.gen(function*() {
      const { connectTimeoutMs, library, server, store } = yield* checkOptions(() => ({
        server: connection({
          ...options,
          password: Redacted.isRedacted(options.password) ? Redacted.value(options.password) : options.password
        }),
        library: libraryOf(options.client),
        store: checked(settings(options), options.cluster !== undefined),
        connectTimeoutMs: durationMillis("redis", "connectTimeout", options.connectTimeout, DEFAULT_CONNECT_TIMEOUT)
      }))
      const target = server.target
      const where = target._tag === "Standalone" ? redactUrl(target.url) : target.rootNodes.map(redactUrl).join(", ")
      const context = yield* Effect.context<never>()
      let connected = false
      let lastError: unknown = undefined
      // Distinct messages seen before the first connection: the telling one ("self-signed certificate") may come
      // before a generic one ("Connection is closed.").
      const seenMessages = new Set<string>()
      let lastWarning = 0
      const onError = (error: unknown, node?: string) => {
        // Before the first connection, the last error goes into the layer's failure. After it, reconnection attempts
        // fail every few hundred ms while Redis is down; one warning per 10 s is enough.
        if (!connected) {
          // ioredis wraps the error of the last node it tried ("Failed to refresh slots cache.").
          lastError = (error as { lastNodeError?: unknown } | undefined)?.lastNodeError ?? error
          if (seenMessages.size < 5) seenMessages.add(describeCause(lastError))
          return
        }
        if (Date.now() - lastWarning < 10_000) return
        lastWarning = Date.now()
        Effect.runForkWith(context)(
          Effect.logWarning(`effect-kv: Redis connection error (${node === undefined ? where : `node ${node}`})`, error)
        )
      }
      const seen = () => seenMessages.size === 0 ? "" : ` (errors seen: ${[...seenMessages].join("; ")})`
      const module = yield* Effect.tryPromise({
        try: () => loadLibrary(library),
        catch: (cause) =>
          backendError(
            "connect",
            undefined,
            "Failure",
            `cannot load the ${library} client library; install it: npm install ${
              library === "node-redis" ? "redis" : "ioredis"
            } (${describeCause(cause)})`,
            cause
          )
      })
      const adapter = yield* Effect.acquireRelease(
        Effect.tryPromise({
          // Interrupted by the deadline below, the signal makes `connect` close the client it is connecting.
          try: (signal) => connect({ library: module, connection: server, connectTimeoutMs }, onError, signal),
          catch: (cause) => {
            // What the client saw is often more telling than what connect() rejects with ("None of the root nodes
            // is available" hides a WRONGPASS).
            const reason = classify(library, lastError ?? cause)
            const detail = lastError !== undefined && lastError !== cause ? seen() : ""
            return backendError(
              "connect",
              undefined,
              reason === "Timeout" ? "Unavailable" : reason,
              `cannot connect to ${where}: ${describeCause(cause)}${detail}`,
              cause
            )
          }
        }).pipe(
          Effect.timeoutOrElse({
            duration: connectTimeoutMs,
            orElse: () =>
              Effect.fail(
                backendError(
                  "connect",
                  undefined,
                  "Timeout",
                  `no connection to ${where} within ${connectTimeoutMs} ms${seen()}`,
                  lastError
                )
              )
          })
        ),
        (adapter) => Effect.promise(() => adapter.close(1000))
      )
      connected = true
      return makeStore(adapter, store, telemetryOf(target))
    })
  )

/**
 * Same as `layerRedis`: the name programs use beside `memoryKvStore`.
 *
 * @since 0.1.0
 * @category layers
 */
export const redisKvStore: (options?: LayerRedisOptions) => Layer.Layer<BaseKvStoreService, KvStoreError> = layerRedis

/** The options `layerRedisConfig` reads from the environment when it is not given a `Config`. */
const fromEnvironment: Effect.Effect<LayerRedisOptions, Config.ConfigError | KvInputError> = Effect.gen(function*() {
  const config = yield* Config.all({
    url: Config.option(Config.Redacted("REDIS_URL")),
    clusterNodes: Config.option(Config.Redacted("REDIS_CLUSTER_NODES")),
    client: Config.withDefault(Config.Literals(["node-redis", "ioredis"], "REDIS_CLIENT"), "node-redis" as const),
    keyPrefix: Config.option(Config.String("REDIS_KEY_PREFIX")),
    timeout: Config.option(Config.Duration("REDIS_TIMEOUT")),
    connectTimeout: Config.option(Config.Duration("REDIS_CONNECT_TIMEOUT")),
    listTimeout: Config.option(Config.Duration("REDIS_LIST_TIMEOUT")),
    scanCount: Config.option(Config.Int("REDIS_SCAN_COUNT")),
    orderedIndex: Config.withDefault(Config.Boolean("REDIS_ORDERED_INDEX"), false)
  })
  const value = Option.getOrUndefined
  const clusterNodes = value(config.clusterNodes)
  const url = value(config.url)
  if (clusterNodes === undefined && url === undefined) {
    return yield* optionError("redis", "REDIS_URL", "set REDIS_URL (a standalone server) or REDIS_CLUSTER_NODES")
  }
  if (clusterNodes !== undefined && url !== undefined) {
    return yield* optionError(
      "redis",
      "REDIS_CLUSTER_NODES",
      "set either REDIS_URL (a standalone server) or REDIS_CLUSTER_NODES (a cluster), not both"
    )
  }
  return {
    client: config.client,
    keyPrefix: value(config.keyPrefix),
    timeout: value(config.timeout),
    connectTimeout: value(config.connectTimeout),
    listTimeout: value(config.listTimeout),
    scanCount: value(config.scanCount),
    orderedIndex: config.orderedIndex,
    ...(clusterNodes !== undefined
      ? { cluster: { rootNodes: Redacted.value(clusterNodes).split(",").map((node) => node.trim()) } }
      : { url: Redacted.value(url!) })
  }
})

/**
 * `layerRedis` with its options from a `Config` (any `ConfigProvider` works), as `@effect/sql-pg`'s
 * `PgClient.layerConfig`: a record of `Config`s, one per option, or one `Config` of all of them.
 *
 * ```ts
 * layerRedisConfig({ url: Config.String("CACHE_URL"), keyPrefix: Config.succeed("cache:") })
 * ```
 *
 * Without an argument it reads these variables:
 *
 * | variable                | option           | meaning                                                       |
 * | ----------------------- | ---------------- | ------------------------------------------------------------- |
 * | `REDIS_URL`             | `url`            | standalone server URL (required unless `REDIS_CLUSTER_NODES`) |
 * | `REDIS_CLUSTER_NODES`   | `cluster`        | comma-separated cluster node URLs                             |
 * | `REDIS_CLIENT`          | `client`         | `node-redis` (default) or `ioredis`                           |
 * | `REDIS_KEY_PREFIX`      | `keyPrefix`      | namespace                                                     |
 * | `REDIS_TIMEOUT`         | `timeout`        | command deadline, e.g. `2 seconds`                            |
 * | `REDIS_CONNECT_TIMEOUT` | `connectTimeout` | first-connection deadline, e.g. `5 seconds`                   |
 * | `REDIS_LIST_TIMEOUT`    | `listTimeout`    | deadline of a whole listing, e.g. `10 seconds`                |
 * | `REDIS_SCAN_COUNT`      | `scanCount`      | SCAN COUNT hint                                               |
 * | `REDIS_ORDERED_INDEX`   | `orderedIndex`   | `true` to keep the ordered index (default `false`)            |
 *
 * A variable that does not parse fails the layer with `ConfigError`; neither or both of `REDIS_URL` and
 * `REDIS_CLUSTER_NODES`, or an option out of range, with `KvInputError` (reason `"InvalidOption"`), before connecting.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRedisConfig = (
  config?: Config.Wrap<LayerRedisOptions>
): Layer.Layer<BaseKvStoreService, KvStoreError | Config.ConfigError> =>
  Layer.unwrap(Effect.map(config === undefined ? fromEnvironment : Config.unwrap(config), layerRedis))
