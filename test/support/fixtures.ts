/**
 * Real Redis servers for a test file: started once before its tests, stopped after them.
 *
 * To run the tests against servers you already have instead, set `EFFECT_KV_TEST_REDIS_URL` (a standalone server)
 * and `EFFECT_KV_TEST_REDIS_CLUSTER` (comma-separated `redis://host:port` of cluster masters). The tests write only
 * under namespaces of their own and never flush, but use a disposable server all the same. Tests that kill servers
 * are skipped then (`canKillServers`).
 */
import { afterAll, assert, beforeAll } from "@effect/vitest"
import { type BaseKvStore, BaseKvStoreService } from "effect-kv"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as Scope from "effect/Scope"
import {
  type RedisCluster,
  redisCommand,
  type RedisServer,
  startRedisCluster,
  startRedisServer
} from "./RedisServer.ts"

const externalServer = process.env.EFFECT_KV_TEST_REDIS_URL
const externalCluster = process.env.EFFECT_KV_TEST_REDIS_CLUSTER

/** False when the tests run against external servers, which they must not kill. */
export const canKillServers = externalServer === undefined && externalCluster === undefined

const external = (url: string): RedisServer => {
  const parsed = new URL(url)
  const refuse = Effect.die(new Error(`${url} is an external server: the tests do not kill or restart it`))
  return { host: parsed.hostname, port: Number(parsed.port || 6379), url, kill: refuse, restart: refuse }
}

const useScoped = <A>(acquire: Effect.Effect<A, unknown, Scope.Scope>): () => A => {
  let value: A | undefined
  const scope = Scope.makeUnsafe()
  beforeAll(async () => {
    value = await Effect.runPromise(Scope.provide(acquire, scope))
  })
  afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)))
  return () => {
    if (value === undefined) throw new Error("the Redis fixture is used before it started")
    return value
  }
}

/** A standalone `redis-server` on a free loopback port, for the tests of the calling file. */
export const useRedisServer = (): () => RedisServer =>
  externalServer === undefined ? useScoped(startRedisServer()) : () => external(externalServer)

/** A 3-master Redis Cluster on free loopback ports, for the tests of the calling file. */
export const useRedisCluster = (): () => RedisCluster => {
  if (externalCluster === undefined) return useScoped(startRedisCluster())
  const servers = externalCluster.split(",").map((node) => external(node.trim()))
  return () => ({ servers, replicas: [], nodes: servers.map(({ host, port }) => ({ host, port })) })
}

/** The URLs of a cluster's masters, as client root nodes. */
export const rootNodes = (cluster: RedisCluster): Array<string> =>
  cluster.nodes.map(({ host, port }) => `redis://${host}:${port}`)

let namespaces = 0

/** A namespace no other test of this process uses, so layers over one server never see each other's keys. */
export const uniqueNamespace = (): string => `t${process.pid}-${namespaces++}:`

/**
 * `layer`, with its namespace cleared when the layer is released: a conformance configuration builds one per check
 * on a shared server, and a Redis listing without the ordered index scans the whole keyspace, so keys left behind by
 * earlier checks would slow every later listing of the file.
 */
export const clearedAfterUse = <E>(layer: Layer.Layer<BaseKvStoreService, E>): Layer.Layer<BaseKvStoreService, E> =>
  Layer.provideMerge(
    Layer.effectDiscard(
      Effect.flatMap(
        Effect.service(BaseKvStoreService),
        (store) => Effect.addFinalizer(() => Effect.ignore(store.clear("")))
      )
    ),
    layer
  )

/** Builds a store layer in the current scope and hands back the store, to use it after the scope's other work. */
export const buildStore = <E>(layer: Layer.Layer<BaseKvStoreService, E>): Effect.Effect<BaseKvStore, E, Scope.Scope> =>
  Effect.map(Layer.build(layer), (context) => Context.get(context, BaseKvStoreService))

/**
 * Retries `effect` on real time until it succeeds, failing the test after `ms`: a recovery must come by itself, without
 * a restart. Run it under `it.live`.
 */
export const eventually = <A, E>(what: string, ms: number, effect: Effect.Effect<A, E>): Effect.Effect<A> =>
  Effect.gen(function*() {
    const deadline = Date.now() + ms
    while (true) {
      const result = yield* Effect.result(effect)
      if (Result.isSuccess(result)) return result.success
      if (Date.now() > deadline) return assert.fail(`${what}: still failing after ${ms} ms: ${String(result.failure)}`)
      yield* Effect.sleep("25 millis")
    }
  })

/** Succeeds when `condition` holds, fails otherwise: for `eventually` over a condition. */
/**
 * Waits until `observer` (a node's port) sees the cluster ok again with the killed master at `victimPort` marked
 * failed: a replica took over its slots.
 */
export const replicaTookOver = (observer: number, victimPort: number): Effect.Effect<void> =>
  eventually(
    "a replica took over the killed master's slots",
    30_000,
    holds(Effect.map(
      Effect.all([redisCommand(observer, "CLUSTER", "INFO"), redisCommand(observer, "CLUSTER", "NODES")]),
      ([info, nodes]) =>
        (info?.includes("cluster_state:ok\r\n") ?? false) &&
        (nodes ?? "").split("\n").some((line) =>
          line.includes(`127.0.0.1:${victimPort}@`) && line.split(" ")[2].split(",").includes("fail")
        )
    ))
  )

export const holds = <E>(condition: Effect.Effect<boolean, E>): Effect.Effect<void, E | string> =>
  Effect.flatMap(condition, (ok) => ok ? Effect.void : Effect.fail("the condition does not hold yet"))
