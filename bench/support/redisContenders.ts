/**
 * The Redis contenders behind one shape: `get`, `set` and a 100-key batch `get`, returning an Effect or a Promise.
 *
 * Raw clients are configured the way effect-kv configures the clients it creates (no offline queue; node-redis v6
 * without its per-command AbortSignal timeout), so they are a fair floor: any gap to them is effect-kv's own cost.
 * Keyv and unstorage run with their defaults, as their users get them.
 */
import { createKeyv } from "@keyv/redis"
import { type BaseKvStore, BaseKvStoreService } from "effect-kv"
import { layerRedis } from "effect-kv/redis"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import { Redis as IoRedis } from "ioredis"
import { createClient } from "redis"
import { createStorage } from "unstorage"
import redisDriver from "unstorage/drivers/redis"

/** The keyspace the orchestrator fills for the operations suite, and the size of the group every listing reads. */
export const OPS_KEYSPACE = 100_000
export const LISTED = 100

/**
 * The listing contenders: effect-kv over each client (SCAN, and the ordered index), raw node-redis SCAN loops with
 * COUNT 1000 and 20, and the peers' own listings (Keyv's iterator, unstorage's getKeys).
 */
export const LIST_CONTENDERS = [
  "effect-kv/node-redis",
  "effect-kv/ioredis",
  "effect-kv+index/node-redis",
  "effect-kv+index/ioredis",
  "scan-1000",
  "scan-20",
  "keyv",
  "unstorage"
] as const
export type ListContenderName = typeof LIST_CONTENDERS[number]

export const REDIS_CONTENDERS = [
  "effect-kv/node-redis",
  "effect-kv+index/node-redis",
  "effect/node-redis",
  "effect-kv/ioredis",
  "node-redis",
  "ioredis",
  "keyv",
  "unstorage"
] as const
export type RedisContenderName = typeof REDIS_CONTENDERS[number]

/**
 * The operations suite's processes. The contenders of a group run in one process, sample by sample in turn, so a
 * ratio between two of them (effect-kv against the raw client it runs on, as issue 17's targets are stated) compares
 * samples taken moments apart, not processes started minutes apart on a shared machine. Each client library's
 * contenders share a group; the peers run alone, so their code (Keyv's node-redis with its default AbortSignal
 * timeout, unstorage's ioredis) cannot change how the floor's client code is optimised.
 */
export const REDIS_OPS_GROUPS: ReadonlyArray<ReadonlyArray<RedisContenderName>> = [
  ["node-redis", "effect-kv/node-redis", "effect/node-redis", "effect-kv+index/node-redis"],
  ["ioredis", "effect-kv/ioredis"],
  ["keyv"],
  ["unstorage"]
]

export const isRedisContenderName = (name: string): name is RedisContenderName =>
  (REDIS_CONTENDERS as ReadonlyArray<string>).includes(name)

interface Ops<X> {
  readonly get: (key: string) => X
  readonly set: (key: string, value: string) => X
  /** The values of 100 keys; effect-kv's batch is 100 concurrent gets, which it coalesces into one MGET. */
  readonly getBatch: (keys: ReadonlyArray<string>) => X
}

interface Common {
  readonly name: RedisContenderName
  readonly close: () => Promise<void>
}

export type RedisContender =
  | Common & { readonly kind: "effect"; readonly ops: Ops<Effect.Effect<unknown, unknown>> }
  | Common & { readonly kind: "promise"; readonly ops: Ops<Promise<unknown>> }

/** An effect-kv store built by `layerRedis`, as a program gets it, with the scope that owns its client. */
export const effectKvStore = async (
  url: string,
  client: "node-redis" | "ioredis",
  orderedIndex = false
): Promise<{ readonly store: BaseKvStore; readonly close: () => Promise<void> }> => {
  const scope = Scope.makeUnsafe()
  // A listing of a million keys takes about a second here; the default listTimeout (= timeout, 2 s) would make a
  // slow round of a shared machine fail the benchmark instead of measuring it.
  const context = await Effect.runPromise(
    Scope.provide(Layer.build(layerRedis({ url, client, listTimeout: "5 minutes", orderedIndex })), scope)
  )
  return {
    store: Context.get(context, BaseKvStoreService),
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

/** node-redis v6 as effect-kv's adapter uses it: no offline queue, and without v6's default 5 s AbortSignal timeout. */
export const rawNodeRedis = async (url: string) => {
  const client = createClient({ url, disableOfflineQueue: true })
  client.on("error", (error: unknown) => process.stderr.write(`node-redis: ${String(error)}\n`))
  await client.connect()
  return { client, fast: client.withCommandOptions({ timeout: 0 }) }
}

/** ioredis as effect-kv's layer creates it: no offline queue, no retry of a command whose connection dropped. */
export const rawIoRedis = async (url: string): Promise<IoRedis> => {
  const client = new IoRedis(url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 })
  client.on("error", (error: unknown) => process.stderr.write(`ioredis: ${String(error)}\n`))
  await client.connect()
  return client
}

export const makeRedisContender = async (name: RedisContenderName, url: string): Promise<RedisContender> => {
  switch (name) {
    case "effect-kv/node-redis":
    case "effect-kv+index/node-redis":
    case "effect-kv/ioredis": {
      const { close, store } = await effectKvStore(
        url,
        name === "effect-kv/ioredis" ? "ioredis" : "node-redis",
        name === "effect-kv+index/node-redis"
      )
      return {
        name,
        kind: "effect",
        close,
        ops: {
          get: store.get,
          set: store.set,
          getBatch: (keys) => Effect.forEach(keys, store.get, { concurrency: "unbounded" })
        }
      }
    }
    case "effect/node-redis": {
      // No effect-kv code at all: what running each command in a fiber costs by itself.
      const { client, fast } = await rawNodeRedis(url)
      const get = (key: string) => Effect.promise(() => fast.get(key))
      return {
        name,
        kind: "effect",
        close: () => client.close(),
        ops: {
          get,
          set: (key, value) => Effect.promise(() => fast.set(key, value)),
          getBatch: (keys) => Effect.forEach(keys, get, { concurrency: "unbounded" })
        }
      }
    }
    case "node-redis": {
      const { client, fast } = await rawNodeRedis(url)
      return {
        name,
        kind: "promise",
        close: () => client.close(),
        ops: {
          get: (key) => fast.get(key),
          set: (key, value) => fast.set(key, value),
          getBatch: (keys) => fast.mGet([...keys])
        }
      }
    }
    case "ioredis": {
      const client = await rawIoRedis(url)
      return {
        name,
        kind: "promise",
        close: async () => client.disconnect(),
        ops: {
          get: (key) => client.get(key),
          set: (key, value) => client.set(key, value),
          getBatch: (keys) => client.mget([...keys])
        }
      }
    }
    case "keyv": {
      // createKeyv stores the keys as given (no namespace prefix); values are Keyv's JSON envelopes.
      const keyv = createKeyv(url)
      return {
        name,
        kind: "promise",
        close: () => keyv.disconnect(),
        ops: {
          get: (key) => keyv.get(key),
          set: (key, value) => keyv.set(key, value),
          getBatch: (keys) => keyv.getMany([...keys])
        }
      }
    }
    case "unstorage": {
      const storage = createStorage<string>({ driver: redisDriver({ url }) })
      return {
        name,
        kind: "promise",
        close: () => storage.dispose(),
        ops: {
          get: (key) => storage.getItem(key),
          set: (key, value) => storage.setItem(key, value),
          getBatch: async (keys) => (await storage.getItems([...keys])).map((item) => item.value)
        }
      }
    }
  }
}

/** Display names, as the tables use them. */
export const redisContenderLabel: Record<RedisContenderName, string> = {
  "effect-kv/node-redis": "effect-kv over node-redis",
  "effect-kv+index/node-redis": "effect-kv over node-redis, ordered index",
  "effect-kv/ioredis": "effect-kv over ioredis",
  "effect/node-redis": "Effect.promise over raw node-redis (fiber cost only)",
  "node-redis": "raw node-redis (floor)",
  "ioredis": "raw ioredis (ioredis floor)",
  "keyv": "Keyv @keyv/redis",
  "unstorage": "unstorage redis driver"
}
