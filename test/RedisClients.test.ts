/**
 * `makeRedisBaseKvStore` and `layerRedisClient` over clients the caller creates and owns: the conformance suite on
 * the v5 majors of both libraries (the layer tests cover v6), standalone and cluster; the store never closing the
 * caller's client; and the clients it refuses.
 */
import { assert, describe, it } from "@effect/vitest"
import { BaseKvStoreService, KvInputError } from "effect-kv"
import { layerRedisClient, makeRedisBaseKvStore, type RedisClient } from "effect-kv/redis"
import { conformance } from "effect-kv/testing"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import { Cluster as IoRedisCluster6, Redis as IoRedis6 } from "ioredis"
import { Cluster as IoRedisCluster5, Redis as IoRedis5 } from "ioredis5"
import {
  createClient as createClient6,
  createClientPool as createClientPool6,
  createCluster as createCluster6
} from "redis"
import {
  createClient as createClient5,
  createClientPool as createClientPool5,
  createCluster as createCluster5
} from "redis5"
import { closeNodeRedis } from "../src/internal/redisClients.ts"
import {
  clearedAfterUse,
  eventually,
  holds,
  rootNodes,
  uniqueNamespace,
  useRedisCluster,
  useRedisServer
} from "./support/fixtures.ts"
import { redisCommand } from "./support/RedisServer.ts"

const server = useRedisServer()
const cluster = useRedisCluster()

/** A connected client the test owns, with what the test needs to use and close it without effect-kv. */
interface Owned {
  readonly client: RedisClient
  readonly get: (key: string) => Promise<string | null>
  readonly close: () => Promise<unknown>
}

type Target = { readonly url: string } | { readonly rootNodes: ReadonlyArray<string> }

const hostPort = (url: string) => {
  const parsed = new URL(url)
  return { host: parsed.hostname, port: Number(parsed.port) }
}

// Each configured as the docs of makeRedisBaseKvStore ask: no offline queue, and an error listener (node-redis crashes
// the process on a lost connection without one).
const nodeRedis =
  (create: { client: typeof createClient5; cluster: typeof createCluster5 }) =>
  async (target: Target): Promise<Owned> => {
    const client = "url" in target
      ? create.client({ url: target.url, disableOfflineQueue: true })
      : create.cluster({
        rootNodes: target.rootNodes.map((url) => ({ url })),
        defaults: { disableOfflineQueue: true }
      })
    client.on("error", () => undefined)
    await client.connect()
    return { client, get: (key) => client.get(key), close: () => client.close() }
  }

const ioRedis =
  (create: { Redis: typeof IoRedis5; Cluster: typeof IoRedisCluster5 }) => async (target: Target): Promise<Owned> => {
    const common = { lazyConnect: true, enableOfflineQueue: false } as const
    const client = "url" in target
      ? new create.Redis(target.url, { ...common, maxRetriesPerRequest: 0 })
      : new create.Cluster(target.rootNodes.map(hostPort), { ...common, redisOptions: { maxRetriesPerRequest: 0 } })
    client.on("error", () => undefined)
    await client.connect()
    return { client, get: (key) => client.get(key), close: () => client.quit() }
  }

const kinds: ReadonlyArray<
  { readonly name: string; readonly major: 5 | 6; readonly open: (t: Target) => Promise<Owned> }
> = [
  { name: "node-redis v5", major: 5, open: nodeRedis({ client: createClient5, cluster: createCluster5 }) },
  { name: "ioredis v5", major: 5, open: ioRedis({ Redis: IoRedis5, Cluster: IoRedisCluster5 }) },
  {
    name: "node-redis v6",
    major: 6,
    open: nodeRedis({
      client: createClient6 as unknown as typeof createClient5,
      cluster: createCluster6 as unknown as typeof createCluster5
    })
  },
  {
    name: "ioredis v6",
    major: 6,
    open: ioRedis({
      Redis: IoRedis6 as unknown as typeof IoRedis5,
      Cluster: IoRedisCluster6 as unknown as typeof IoRedisCluster5
    })
  }
]

const targets: ReadonlyArray<{ readonly name: string; readonly target: () => Target }> = [
  { name: "standalone", target: () => ({ url: server().url }) },
  { name: "cluster", target: () => ({ rootNodes: rootNodes(cluster()) }) }
]

const owned = (open: (target: Target) => Promise<Owned>, target: Target) =>
  Effect.acquireRelease(Effect.promise(() => open(target)), (client) => Effect.promise(() => client.close()))

// The configurations run side by side (each build has a namespace of its own); the checks of each, in turn.
describe.concurrent("conformance over a caller's client", () => {
  for (const kind of kinds.filter((kind) => kind.major === 5)) {
    for (const { name, target } of targets) {
      // The client is the caller's: created and closed by the layer below, as a program would, not by effect-kv.
      conformance(
        `makeRedisBaseKvStore over a caller's ${kind.name} client, ${name}`,
        clearedAfterUse(Layer.effect(
          BaseKvStoreService,
          Effect.map(
            Effect.suspend(() => owned(kind.open, target())),
            (client) => makeRedisBaseKvStore({ redis: client.client, keyPrefix: uniqueNamespace() })
          )
        )),
        // On a cluster one writer's events on keys of different masters may swap (see RedisCluster.test.ts).
        name === "cluster" ? { watchOrder: "key" } : {}
      )
    }
  }
})

describe("redis: a client the caller owns", () => {
  for (const kind of kinds) {
    for (const { name, target } of targets) {
      it.live(`${kind.name}, ${name}: the store and its layer never close it`, () =>
        Effect.gen(function*() {
          const client = yield* owned(kind.open, target())
          const keyPrefix = uniqueNamespace()
          yield* Effect.scoped(Effect.gen(function*() {
            const context = yield* Layer.build(layerRedisClient(Effect.succeed(client.client), { keyPrefix }))
            yield* Context.get(context, BaseKvStoreService).set("through-layer", "1")
          }))
          const store = makeRedisBaseKvStore({ redis: client.client, keyPrefix })
          yield* store.set("direct", "2")
          // Both the layer's scope and the store are gone or idle: the client is still open and usable.
          assert.strictEqual(yield* Effect.promise(() => client.get(`${keyPrefix}through-layer`)), "1")
          assert.strictEqual(yield* Effect.promise(() => client.get(`${keyPrefix}direct`)), "2")
          assert.deepStrictEqual(yield* store.list(""), ["direct", "through-layer"])
        }))
    }
  }
})

const refused = (redis: unknown): KvInputError => {
  try {
    makeRedisBaseKvStore({ redis: redis as RedisClient })
  } catch (error) {
    assert.instanceOf(error, KvInputError)
    assert.deepInclude(error, { operation: "options", argument: "redis", reason: "InvalidOption" })
    assert.match((error as KvInputError).message, /^effect-kv redis: redis must be/)
    return error as KvInputError
  }
  return assert.fail("makeRedisBaseKvStore accepted it")
}

// Compile-time checks, never run: `npm run typecheck` fails if the RedisClient type starts accepting these.
void (() => {
  // @ts-expect-error {} is not a Redis client
  makeRedisBaseKvStore({ redis: {} })
  // @ts-expect-error a URL is not a client either
  makeRedisBaseKvStore({ redis: "redis://localhost:6379" })
})

describe("redis: makeRedisBaseKvStore refuses what it cannot use", () => {
  for (const [name, value] of [["{}", {}], ["null", null], ["undefined", undefined], ["a URL string", "redis://x"]]) {
    it(`a KvInputError for ${name}`, () => {
      assert.match(refused(value).message, /node-redis|ioredis/, "says what was expected")
    })
  }

  it("a KvInputError for a node-redis client pool, v5 and v6", () => {
    for (
      const pool of [
        createClientPool5({ url: "redis://127.0.0.1:1" }),
        createClientPool6({ url: "redis://127.0.0.1:1" })
      ]
    ) {
      assert.include(refused(pool).message, "pool")
    }
  })

  // SCAN neither applies nor strips a client-side prefix: such a store would list keys it cannot read or delete.
  const prefixed: ReadonlyArray<readonly [string, () => { client: unknown; close: () => void }]> = [
    ["ioredis v6 Redis", () => lazy(new IoRedis6({ lazyConnect: true, keyPrefix: "p:" }))],
    ["ioredis v5 Redis", () => lazy(new IoRedis5({ lazyConnect: true, keyPrefix: "p:" }))],
    [
      "ioredis v6 Cluster",
      () => lazy(new IoRedisCluster6([hostPort("redis://127.0.0.1:1")], { lazyConnect: true, keyPrefix: "p:" }))
    ],
    [
      "ioredis v5 Cluster",
      () => lazy(new IoRedisCluster5([hostPort("redis://127.0.0.1:1")], { lazyConnect: true, keyPrefix: "p:" }))
    ],
    ["node-redis v6 client", () => unconnected(createClient6({ url: "redis://127.0.0.1:1", keyPrefix: "p:" }))],
    [
      "node-redis v6 cluster",
      () => unconnected(createCluster6({ rootNodes: [{ url: "redis://127.0.0.1:1" }], keyPrefix: "p:" }))
    ]
  ]
  for (const [name, create] of prefixed) {
    it(`a KvInputError for a ${name} created with a keyPrefix`, () => {
      const { client, close } = create()
      try {
        const message = refused(client).message
        assert.include(message, "keyPrefix")
        assert.include(message, "\"p:\"")
      } finally {
        close()
      }
    })
  }

  it.live("out-of-range options with a valid client throw a KvInputError naming the option", () =>
    Effect.gen(function*() {
      const client = yield* owned(kinds[2].open, { url: server().url })
      for (const [options, mentions] of [[{ scanCount: 0 }, "scanCount"], [{ timeout: 0 }, "timeout"]] as const) {
        const error = (() => {
          try {
            makeRedisBaseKvStore({ redis: client.client, ...options })
          } catch (error) {
            return error
          }
        })()
        assert.instanceOf(error, KvInputError)
        assert.deepInclude(error, { operation: "options", argument: mentions, reason: "InvalidOption" })
        assert.include((error as KvInputError).message, `${mentions} must be`)
      }
    }))

  it.live("layerRedisClient fails with KvInputError (options, redis, InvalidOption) for a value that is not a client", () =>
    Effect.gen(function*() {
      // An untyped caller: the type refuses `{}` (see the check below), the layer must refuse it at run time too.
      const result = yield* Effect.result(Layer.build(layerRedisClient(Effect.succeed({} as RedisClient))))
      assert.isTrue(Result.isFailure(result))
      const error = Result.isFailure(result) ? result.failure : undefined
      assert.instanceOf(error, KvInputError)
      assert.deepInclude(error, { operation: "options", argument: "redis", reason: "InvalidOption" })
    }))
})

describe("redis: closing a client the layer created", () => {
  // The layer creates clients of the installed major (v6 here); a project on redis v5 gets v5 clusters, which have no
  // isReady. Closing one must still wait for the replies in flight.
  it.live("a node-redis v5 cluster is closed gracefully: a reply in flight is delivered, not dropped", () =>
    Effect.gen(function*() {
      const client = createCluster5({
        rootNodes: rootNodes(cluster()).map((url) => ({ url })),
        defaults: { disableOfflineQueue: true }
      })
      client.on("error", () => undefined)
      yield* Effect.promise(() => client.connect())
      // BLPOP on an empty list answers null after its timeout: once the server holds it blocked, its reply is in flight.
      const pending = client.blPop(`${uniqueNamespace()}empty`, 0.5).then(
        (reply) => ({ reply }),
        (error: unknown) => ({ error: String(error) })
      )
      yield* eventually(
        "the BLPOP is blocked on its master",
        5_000,
        holds(Effect.map(
          Effect.forEach(cluster().nodes, (node) => redisCommand(node.port, "INFO", "clients")),
          (infos) => infos.some((info) => /blocked_clients:[1-9]/.test(info ?? ""))
        ))
      )
      yield* Effect.promise(() => closeNodeRedis(client, 5_000))
      assert.deepStrictEqual(yield* Effect.promise(() => pending), { reply: null })
    }))
})

// Clients for the keyPrefix checks are never connected; these close them without waiting for anything.
const lazy = (client: { disconnect: () => void }) => ({ client, close: () => client.disconnect() })
const unconnected = (client: object) => ({ client, close: () => undefined })
