/**
 * Real Redis servers for a test file: started once before its tests, stopped after them.
 *
 * To run the tests against servers you already have instead, set `EFFECT_KV_TEST_REDIS_URL` (a standalone server)
 * and `EFFECT_KV_TEST_REDIS_CLUSTER` (comma-separated `redis://host:port` of cluster masters). The tests write only
 * under namespaces of their own and never flush, but use a disposable server all the same. Tests that kill servers
 * are skipped then (`canKillServers`).
 */
import { afterAll, beforeAll } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import { type RedisCluster, type RedisServer, startRedisCluster, startRedisServer } from "./RedisServer.ts"

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
  return () => ({ servers, nodes: servers.map(({ host, port }) => ({ host, port })) })
}

/** The URLs of a cluster's masters, as client root nodes. */
export const rootNodes = (cluster: RedisCluster): Array<string> =>
  cluster.nodes.map(({ host, port }) => `redis://${host}:${port}`)

let namespaces = 0

/** A namespace no other test of this process uses, so layers over one server never see each other's keys. */
export const uniqueNamespace = (): string => `t${process.pid}-${namespaces++}:`
