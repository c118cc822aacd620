/**
 * The Redis backend beyond the conformance suite, on real servers: glob characters and namespaces on standalone and
 * cluster with both clients, listing a large keyspace, the layer's connection lifecycle, option validation and
 * `layerRedisConfig`.
 */
import { assert, describe, it } from "@effect/vitest"
import { KvBackendError, KvInputError } from "effect-kv"
import { layerRedis, layerRedisConfig, type LayerRedisOptions } from "effect-kv/redis"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import * as net from "node:net"
import { createClient, createCluster } from "redis"
import {
  buildStore,
  canKillServers,
  eventually,
  holds,
  rootNodes,
  uniqueNamespace,
  useRedisCluster,
  useRedisServer
} from "./support/fixtures.ts"
import { redisCommand, sleepServer, startRedisServer } from "./support/RedisServer.ts"

const server = useRedisServer()
const cluster = useRedisCluster()

const clients = ["node-redis", "ioredis"] as const

const targets: ReadonlyArray<{ readonly name: string; readonly options: () => LayerRedisOptions }> = [
  { name: "standalone", options: () => ({ url: server().url }) },
  { name: "cluster", options: () => ({ cluster: { rootNodes: rootNodes(cluster()) } }) }
]

/** What the contract says `list(prefix)` returns, computed with plain string operations. */
const expectedListing = (keys: ReadonlyArray<string>, prefix: string): Array<string> =>
  keys.filter((key) => key.startsWith(prefix)).map((key) => key.slice(prefix.length)).sort()

interface RawClient {
  readonly get: (key: string) => Promise<string | null>
  readonly set: (key: string, value: string) => Promise<unknown>
}

/**
 * A node-redis client that is not the one under test, to see what the store really wrote and to write keys outside
 * any namespace.
 */
const rawClient = (options: LayerRedisOptions): Effect.Effect<RawClient, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = options.cluster !== undefined
        ? createCluster({ rootNodes: options.cluster.rootNodes.map((url) => ({ url })) })
        : createClient({ url: options.url! })
      client.on("error", () => undefined)
      await client.connect()
      return client
    }),
    (client) => Effect.promise(() => client.close())
  ).pipe(Effect.map((client): RawClient => ({
    get: (key) => client.get(key),
    set: (key, value) => client.set(key, value)
  })))

const failureOf = <A, E, R>(
  effect: Effect.Effect<A, E, R>
): Effect.Effect<{ readonly error: E; readonly ms: number }, never, R> =>
  Effect.gen(function*() {
    const started = Date.now()
    const result = yield* Effect.result(effect)
    const ms = Date.now() - started
    if (Result.isSuccess(result)) return assert.fail(`expected a failure, got ${JSON.stringify(result.success)}`)
    return { error: result.failure, ms }
  })

const connectError = (error: unknown, reason: KvBackendError["reason"]): KvBackendError => {
  assert.instanceOf(error, KvBackendError)
  const backendError = error as KvBackendError
  assert.strictEqual(backendError.operation, "connect")
  assert.strictEqual(backendError.reason, reason, backendError.message)
  return backendError
}

// Glob syntax in a prefix (or a namespace) must match literally: an unescaped `a*` would also list `axb` and `abc`,
// `a?` would list `abc`, `a[` would make the pattern invalid, `[ab]` would list `a` and `b`, and `a\` would escape
// the `*` that ends the pattern.
const globKeys = [
  "a",
  "b",
  "ab",
  "abc",
  "axb",
  "a*",
  "a*b",
  "a?",
  "a?c",
  "a[",
  "a[b]c",
  "a]",
  "ab]c",
  "a\\",
  "a\\b",
  "a\\*",
  "[ab]",
  "[ab]c",
  "*",
  "?",
  "\\",
  "["
]
const globPrefixes = ["a*", "a?", "a[", "[ab]", "a\\", "a\\*", "a]", "*", "?", "\\", "[", "a", "ab", ""]

describe("redis: glob characters in prefixes are literal", () => {
  for (const target of targets) {
    for (const client of clients) {
      it.live(`${target.name}, ${client}: list returns exactly the keys that start with the prefix`, () =>
        Effect.gen(function*() {
          // The namespace has glob characters too, so it must be escaped as well.
          const keyPrefix = `${uniqueNamespace()}[ns]*?\\:`
          const store = yield* buildStore(layerRedis({ ...target.options(), client, keyPrefix }))
          const raw = yield* rawClient(target.options())
          yield* Effect.forEach(globKeys, (key) => store.set(key, `value of ${key}`), { discard: true })
          // Neighbours a glob would match: the namespace with its special characters taken as wildcards.
          const decoys = [keyPrefix.replace("[ns]", "n"), keyPrefix.replace("*?", "xy"), keyPrefix.replace("\\", "")]
          yield* Effect.promise(() => Promise.all(decoys.map((decoy) => raw.set(`${decoy}a`, "decoy"))))
          for (const prefix of globPrefixes) {
            const listed = yield* store.list(prefix)
            assert.deepStrictEqual(listed, expectedListing(globKeys, prefix), `list(${JSON.stringify(prefix)})`)
          }
          assert.strictEqual(yield* Effect.promise(() => raw.get(`${keyPrefix}a\\*`)), "value of a\\*")
        }))
    }
  }
})

describe("redis: namespaces (keyPrefix)", () => {
  for (const target of targets) {
    for (const client of clients) {
      it.live(`${target.name}, ${client}: app1: and app10: never see or delete each other's keys`, () =>
        Effect.gen(function*() {
          // "app1" is a string prefix of "app10": a namespace matched without its separator would take in app10's keys.
          const base = uniqueNamespace()
          const app1 = yield* buildStore(layerRedis({ ...target.options(), client, keyPrefix: `${base}app1:` }))
          const app10 = yield* buildStore(layerRedis({ ...target.options(), client, keyPrefix: `${base}app10:` }))
          const raw = yield* rawClient(target.options())
          const outside = [`${base}app1`, `${base}app1x:k`, `${base}app`, `${base}app10`, `${base}k`, `${base}app1;k`]
          yield* Effect.promise(() => Promise.all(outside.map((key) => raw.set(key, "outside"))))

          const value = "value: ünïcödé 😀\nline two\t* ? [ ]"
          yield* app1.set("k", value)
          yield* app1.set("0:k", "app1 0:k")
          yield* app1.set("only-app1", "1")
          yield* app10.set("k", "app10 k")
          yield* app10.set("only-app10", "10")

          assert.deepStrictEqual(yield* app1.list(""), ["0:k", "k", "only-app1"])
          assert.deepStrictEqual(yield* app10.list(""), ["k", "only-app10"])
          assert.deepStrictEqual(yield* app1.list("0"), [":k"], "app10:k is not app1:0...")
          assert.strictEqual(yield* app1.get("k"), value)
          assert.strictEqual(yield* app10.get("k"), "app10 k")
          assert.strictEqual(yield* app1.get("only-app10"), null)
          assert.strictEqual(yield* app1.get("x:k"), null, "app1x:k is outside app1:")

          // Stored under the namespace, byte for byte.
          assert.strictEqual(yield* Effect.promise(() => raw.get(`${base}app1:k`)), value)
          assert.strictEqual(yield* Effect.promise(() => raw.get(`${base}app10:k`)), "app10 k")
          assert.strictEqual(yield* Effect.promise(() => raw.get(`${base}app1:0:k`)), "app1 0:k")

          yield* app1.delete("k")
          yield* app1.delete("only-app10")
          yield* app10.delete("only-app1")
          assert.strictEqual(yield* Effect.promise(() => raw.get(`${base}app1:k`)), null)
          assert.strictEqual(yield* app10.get("k"), "app10 k", "app1's delete left app10's key")
          assert.strictEqual(yield* app10.get("only-app10"), "10")
          assert.strictEqual(yield* app1.get("only-app1"), "1")
          for (const key of outside) {
            assert.strictEqual(yield* Effect.promise(() => raw.get(key)), "outside", `${key} was not touched`)
          }
          assert.deepStrictEqual(yield* app1.list(""), ["0:k", "only-app1"])
          assert.deepStrictEqual(yield* app10.list(""), ["k", "only-app10"])
        }))

      it.live(`${target.name}, ${client}: a raw key equal to the namespace itself is not a key of the store`, () =>
        Effect.gen(function*() {
          // Redis allows the key "app1:"; for the store it would be the key "", which no operation accepts, so listing
          // it would break "get(prefix + k) finds a value for every listed k".
          const keyPrefix = `${uniqueNamespace()}app1:`
          const store = yield* buildStore(layerRedis({ ...target.options(), client, keyPrefix }))
          const raw = yield* rawClient(target.options())
          yield* Effect.promise(() => raw.set(keyPrefix, "written by someone else"))
          yield* store.set("k", "v")
          assert.deepStrictEqual(yield* store.list(""), ["k"])
          assert.deepStrictEqual(yield* store.list("k"), [""])
        }))
    }
  }
})

describe("redis: listing a large keyspace", () => {
  for (const target of targets) {
    it.live(
      `${target.name}: 100 keys among 20,000, with scanCount 10 and the default, both clients`,
      () =>
        Effect.gen(function*() {
          const keyPrefix = uniqueNamespace()
          const raw = yield* rawClient(target.options())
          const hits = Array.from({ length: 100 }, (_, i) => `${i * 7}`)
          const keys = [
            ...hits.map((id) => `upload:${id}`),
            ...Array.from({ length: 19_890 }, (_, i) => `other:${i}`),
            // Neighbours of the prefix, in and out of the namespace.
            ...["upload", "upload;1", "uploads:1", "upload-1", "Upload:1", "uploa", "upload\\:1", "upload*:1"]
          ]
          // Filled through a raw client: node-redis pipelines these writes, which keeps the fill fast.
          yield* Effect.promise(async () => {
            for (let i = 0; i < keys.length; i += 2_000) {
              await Promise.all(keys.slice(i, i + 2_000).map((key) => raw.set(keyPrefix + key, "v")))
            }
            await raw.set(`x${keyPrefix}upload:outside`, "v")
          })
          const expected = hits.slice().sort()
          for (const client of clients) {
            for (const scanCount of [10, undefined]) {
              // 2,000 SCAN round trips with scanCount 10: longer than the default deadline when other files share the
              // cores. The deadline has tests of its own (RedisOperations).
              const store = yield* buildStore(
                layerRedis({ ...target.options(), client, keyPrefix, scanCount, listTimeout: "60 seconds" })
              )
              assert.deepStrictEqual(yield* store.list("upload:"), expected, `${client}, scanCount ${scanCount}`)
            }
          }
          const store = yield* buildStore(layerRedis({ ...target.options(), keyPrefix }))
          const all = yield* store.list("")
          assert.strictEqual(all.length, keys.length)
          assert.deepStrictEqual(all, keys.slice().sort())
        }),
      60_000
    )
  }
})

/** `connected_clients` minus the probe's own connection. */
const connectedClients = (port: number): Effect.Effect<number> =>
  redisCommand(port, "INFO", "clients").pipe(
    Effect.map((info) => Number(/connected_clients:(\d+)/.exec(info ?? "")?.[1]) - 1),
    Effect.orDie
  )

/** A port where nothing listens: the OS hands it out and we close it again. */
const closedPort: Effect.Effect<number> = Effect.promise(() =>
  new Promise((resolve) => {
    const probe = net.createServer()
    probe.listen(0, "127.0.0.1", () => {
      const port = (probe.address() as net.AddressInfo).port
      probe.close(() => resolve(port))
    })
  })
)

/** A TCP server that accepts connections and never answers: a hung Redis, or something else on the port. */
const silentServer: Effect.Effect<
  { readonly port: number; readonly open: () => number; readonly accepted: () => number },
  never,
  Scope.Scope
> = Effect.acquireRelease(
  Effect.promise(() =>
    new Promise<{ server: net.Server; sockets: Set<net.Socket>; accepted: { count: number } }>((resolve) => {
      const sockets = new Set<net.Socket>()
      const accepted = { count: 0 }
      const server = net.createServer((socket) => {
        accepted.count++
        sockets.add(socket)
        socket.on("close", () => sockets.delete(socket))
        socket.on("error", () => undefined)
        // Read (and drop) what the client sends, so its closing the connection is seen here.
        socket.resume()
      })
      server.listen(0, "127.0.0.1", () => resolve({ server, sockets, accepted }))
    })
  ),
  ({ server, sockets }) =>
    Effect.promise(() => {
      for (const socket of sockets) socket.destroy()
      return new Promise<void>((resolve) => server.close(() => resolve()))
    })
).pipe(Effect.map(({ accepted, server, sockets }) => ({
  port: (server.address() as net.AddressInfo).port,
  open: () => sockets.size,
  accepted: () => accepted.count
})))

// Slack for a loaded CI machine; the assertions are "failed within the deadline, did not hang", not performance.
const SLACK_MS = 1_500

describe("redis: the layer's connection", () => {
  for (const client of clients) {
    it.live.skipIf(!canKillServers)(
      `${client}: connects while building and disconnects when its scope closes`,
      () =>
        Effect.gen(function*() {
          // A server of its own: the count of connected clients must not include other tests' connections.
          const own = yield* startRedisServer()
          assert.strictEqual(yield* connectedClients(own.port), 0)
          const store = yield* Effect.scoped(Effect.gen(function*() {
            const store = yield* buildStore(layerRedis({ url: own.url, client }))
            // Before any operation: the connection was made while the layer was built.
            assert.strictEqual(yield* connectedClients(own.port), 1, "one connection while the layer is in scope")
            yield* store.set("k", "v")
            return store
          }))
          yield* eventually(
            "the connection is closed with the scope",
            5_000,
            holds(Effect.map(connectedClients(own.port), (n) => n === 0))
          )
          const { error } = yield* failureOf(store.get("k"))
          assert.instanceOf(error, KvBackendError, "a store used after its layer closed fails typed")
        })
    )
  }

  // [what, options, the option named, what the message says]
  const invalid: ReadonlyArray<readonly [string, () => LayerRedisOptions, string, string]> = [
    ["a URL that does not parse", () => ({ url: "not a url" }), "url", "url must be a redis:// or rediss:// URL"],
    ["scanCount 0", () => ({ url: server().url, scanCount: 0 }), "scanCount", "received 0"],
    ["scanCount 1.5", () => ({ url: server().url, scanCount: 1.5 }), "scanCount", "received 1.5"],
    ["a negative timeout", () => ({ url: server().url, timeout: -5 }), "timeout", "received -5"],
    ["a zero connectTimeout", () => ({ url: server().url, connectTimeout: 0 }), "connectTimeout", "received 0"],
    [
      "url and cluster together",
      () => ({ url: server().url, cluster: { rootNodes: [server().url] } }),
      "cluster",
      "not both"
    ],
    ["an empty cluster", () => ({ cluster: { rootNodes: [] } }), "cluster.rootNodes", "an empty array"],
    ["an unknown client library", () => ({ url: server().url, client: "jedis" as "ioredis" }), "client", "jedis"],
    ["a malformed keyPrefix", () => ({ url: server().url, keyPrefix: "ns\uD800:" }), "keyPrefix", "keyPrefix must be"]
  ]
  for (const [name, options, option, mentions] of invalid) {
    it.live(`invalid options fail the layer with KvInputError naming the option: ${name}`, () =>
      Effect.gen(function*() {
        const { error } = yield* failureOf(buildStore(layerRedis(options())))
        assert.instanceOf(error, KvInputError)
        assert.deepInclude(error, { operation: "options", argument: option, reason: "InvalidOption" })
        assert.match((error as KvInputError).message, /^effect-kv redis: /)
        assert.include((error as KvInputError).message, mentions)
      }))
  }
})

// One at a time: run at once, eight first connections (and library loads) in one worker on a loaded machine made
// "fails at once" and "reaches the server within connectTimeout" measure the machine rather than the layer.
describe("redis: a layer that cannot connect", () => {
  for (const client of clients) {
    for (const cluster of [false, true]) {
      const kind = cluster ? "cluster" : "standalone"
      it.live(`${client}, ${kind}: nothing listening on the port fails the layer at once with Unavailable`, () =>
        Effect.gen(function*() {
          const port = yield* closedPort
          const url = `redis://127.0.0.1:${port}`
          const started = Date.now()
          const { error } = yield* failureOf(
            buildStore(layerRedis({ ...(cluster ? { cluster: { rootNodes: [url] } } : { url }), client }))
          )
          const ms = Date.now() - started
          const backendError = connectError(error, "Unavailable")
          assert.include(backendError.message, String(port))
          // The default connectTimeout is 5 s; a refused connection must not wait for it or retry.
          assert.isBelow(ms, SLACK_MS, "failed fast")
        }))

      it.live(`${client}, ${kind}: a server that accepts but never answers fails the layer with Timeout`, () =>
        Effect.gen(function*() {
          const silent = yield* silentServer
          const url = `redis://127.0.0.1:${silent.port}`
          const started = Date.now()
          const { error } = yield* failureOf(
            buildStore(
              layerRedis({ ...(cluster ? { cluster: { rootNodes: [url] } } : { url }), client, connectTimeout: 700 })
            )
          )
          const ms = Date.now() - started
          connectError(error, "Timeout")
          assert.isAtLeast(ms, 650, "waited for connectTimeout")
          assert.isBelow(ms, 700 + SLACK_MS, "gave up at connectTimeout")
          assert.isAtLeast(silent.accepted(), 1, "the client did reach the server")
          // The half-open client must be closed, not left connected or reconnecting behind the failed layer.
          yield* eventually("the abandoned connection is closed", 3_000, holds(Effect.sync(() => silent.open() === 0)))
          const accepted = silent.accepted()
          yield* Effect.sleep("1 second")
          assert.strictEqual(silent.accepted(), accepted, "no reconnection after the layer failed")
        }))
    }
  }
})

describe("redis: layerRedisConfig", () => {
  const fromEnv = (env: Record<string, string>) =>
    Layer.provide(layerRedisConfig(), ConfigProvider.layer(ConfigProvider.fromEnv({ env })))

  it.live("REDIS_URL, REDIS_KEY_PREFIX, REDIS_TIMEOUT and REDIS_SCAN_COUNT configure a standalone store", () =>
    Effect.gen(function*() {
      const keyPrefix = uniqueNamespace()
      const store = yield* buildStore(
        fromEnv({
          REDIS_URL: server().url,
          REDIS_KEY_PREFIX: keyPrefix,
          // Long enough for a listing in pages of 5 over the 20,000 keys another test leaves on this server.
          REDIS_TIMEOUT: "30 seconds",
          REDIS_SCAN_COUNT: "5"
        })
      )
      yield* store.set("k", "v")
      const raw = yield* rawClient({ url: server().url })
      assert.strictEqual(yield* Effect.promise(() => raw.get(`${keyPrefix}k`)), "v", "stored under REDIS_KEY_PREFIX")
      assert.deepStrictEqual(yield* store.list(""), ["k"])
    }))

  it.live("REDIS_CLUSTER_NODES with REDIS_CLIENT=ioredis configures a cluster store", () =>
    Effect.gen(function*() {
      const keyPrefix = uniqueNamespace()
      const store = yield* buildStore(
        fromEnv({
          REDIS_CLUSTER_NODES: rootNodes(cluster()).join(" , "),
          REDIS_CLIENT: "ioredis",
          REDIS_KEY_PREFIX: keyPrefix
        })
      )
      // Enough keys to land on every master: a standalone client on one node would get MOVED replies.
      const keys = Array.from({ length: 30 }, (_, i) => `k${i}`)
      yield* Effect.forEach(keys, (key) => store.set(key, key), { discard: true })
      assert.deepStrictEqual(yield* store.list(""), keys.slice().sort())
      const raw = yield* rawClient({ cluster: { rootNodes: rootNodes(cluster()) } })
      assert.strictEqual(yield* Effect.promise(() => raw.get(`${keyPrefix}k7`)), "k7")
    }))

  it.live("a Config of its own, as a record of Configs or one Config, replaces the default variables", () =>
    Effect.gen(function*() {
      const keyPrefix = uniqueNamespace()
      const provider = ConfigProvider.layer(
        ConfigProvider.fromEnv({ env: { CACHE_URL: server().url, CACHE_PREFIX: keyPrefix, REDIS_URL: "redis://x:1" } })
      )
      const record = yield* buildStore(
        Layer.provide(
          layerRedisConfig({ url: Config.String("CACHE_URL"), keyPrefix: Config.String("CACHE_PREFIX") }),
          provider
        )
      )
      yield* record.set("k", "from the record")
      const raw = yield* rawClient({ url: server().url })
      assert.strictEqual(yield* Effect.promise(() => raw.get(`${keyPrefix}k`)), "from the record", "CACHE_PREFIX")
      const whole = yield* buildStore(
        Layer.provide(
          layerRedisConfig(Config.map(Config.String("CACHE_URL"), (url) => ({ url, keyPrefix, scanCount: 7 }))),
          provider
        )
      )
      assert.strictEqual(yield* whole.get("k"), "from the record")
      // A bad option in a custom Config fails the same way as one given to layerRedis, naming the option.
      const error = yield* Effect.flip(
        buildStore(
          Layer.provide(layerRedisConfig({ url: Config.String("CACHE_URL"), scanCount: Config.succeed(0) }), provider)
        )
      )
      assert.instanceOf(error, KvInputError)
      assert.deepInclude(error, { operation: "options", argument: "scanCount", reason: "InvalidOption" })
      // A Config that cannot be read fails with Effect's ConfigError.
      const missing = yield* Effect.flip(
        buildStore(Layer.provide(layerRedisConfig({ url: Config.String("NOT_SET") }), provider))
      )
      assert.strictEqual((missing as { _tag?: string })._tag, "ConfigError")
    }))

  /** `calls` of one command in `INFO commandstats`. */
  const commandCalls = (port: number, command: string): Effect.Effect<number> =>
    redisCommand(port, "INFO", "commandstats").pipe(
      Effect.map((info) => Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(info ?? "")?.[1] ?? 0)),
      Effect.orDie
    )

  it.live.skipIf(!canKillServers)(
    "REDIS_CLIENT, REDIS_SCAN_COUNT, REDIS_TIMEOUT and REDIS_LIST_TIMEOUT are honoured",
    () =>
      Effect.gen(function*() {
        const own = yield* startRedisServer({ args: ["--enable-debug-command", "yes"] })
        // REDIS_CLIENT: ioredis checks readiness with INFO when it connects; node-redis does not.
        for (const [client, infos] of [["ioredis", true], ["node-redis", false]] as const) {
          yield* redisCommand(own.port, "CONFIG", "RESETSTAT")
          yield* buildStore(fromEnv({ REDIS_URL: own.url, REDIS_CLIENT: client }))
          assert.strictEqual((yield* commandCalls(own.port, "info")) > 0, infos, `REDIS_CLIENT=${client}`)
        }
        // REDIS_SCAN_COUNT: 100 keys take one SCAN call with the default COUNT of 1000, at least 10 with COUNT 5.
        const keyPrefix = uniqueNamespace()
        const store = yield* buildStore(
          fromEnv({ REDIS_URL: own.url, REDIS_KEY_PREFIX: keyPrefix, REDIS_SCAN_COUNT: "5" })
        )
        yield* Effect.forEach(Array.from({ length: 100 }, (_, i) => `k${i}`), (key) => store.set(key, "v"), {
          discard: true
        })
        const before = yield* commandCalls(own.port, "scan")
        assert.strictEqual((yield* store.list("")).length, 100)
        assert.isAtLeast((yield* commandCalls(own.port, "scan")) - before, 10, "REDIS_SCAN_COUNT=5")
        // REDIS_TIMEOUT: a server that does not answer fails a get at that deadline.
        const quick = yield* buildStore(fromEnv({ REDIS_URL: own.url, REDIS_TIMEOUT: "300 millis" }))
        yield* sleepServer(own.port, 2)
        const started = Date.now()
        const { error } = yield* failureOf(quick.get("k"))
        assert.strictEqual((error as KvBackendError).reason, "Timeout")
        assert.include((error as KvBackendError).message, "300 ms", "REDIS_TIMEOUT")
        assert.isBelow(Date.now() - started, 300 + SLACK_MS)
        yield* eventually("the server wakes up", 10_000, quick.get("k"))
        // REDIS_LIST_TIMEOUT: a listing of 500,000 keys with COUNT 10 takes seconds; it stops at 200 ms.
        yield* redisCommand(own.port, "DEBUG", "POPULATE", "500000", "fill")
        const bounded = yield* buildStore(
          fromEnv({ REDIS_URL: own.url, REDIS_SCAN_COUNT: "10", REDIS_LIST_TIMEOUT: "200 millis" })
        )
        const listing = yield* failureOf(bounded.list("upload:"))
        assert.strictEqual((listing.error as KvBackendError).reason, "Timeout")
        assert.include((listing.error as KvBackendError).message, "200 ms", "REDIS_LIST_TIMEOUT")
      }),
    60_000
  )

  it.live("REDIS_CONNECT_TIMEOUT is the deadline of the first connection", () =>
    Effect.gen(function*() {
      const silent = yield* silentServer
      const { error, ms } = yield* failureOf(
        buildStore(fromEnv({ REDIS_URL: `redis://127.0.0.1:${silent.port}`, REDIS_CONNECT_TIMEOUT: "700 millis" }))
      )
      connectError(error, "Timeout")
      assert.isAtLeast(ms, 650)
      assert.isBelow(ms, 700 + SLACK_MS)
    }))

  it.live("neither REDIS_URL nor REDIS_CLUSTER_NODES fails with KvInputError that names them", () =>
    Effect.gen(function*() {
      const { error } = yield* failureOf(buildStore(fromEnv({ REDIS_KEY_PREFIX: "ns:" })))
      assert.instanceOf(error, KvInputError)
      assert.deepInclude(error, { operation: "options", argument: "REDIS_URL", reason: "InvalidOption" })
      assert.include(error.message, "REDIS_URL")
      assert.include(error.message, "REDIS_CLUSTER_NODES")
    }))

  it.live("an unknown REDIS_CLIENT fails with a ConfigError", () =>
    Effect.gen(function*() {
      const { error } = yield* failureOf(buildStore(fromEnv({ REDIS_URL: server().url, REDIS_CLIENT: "jedis" })))
      assert.notInstanceOf(error, KvBackendError)
      assert.include(String(error), "REDIS_CLIENT")
    }))
})
