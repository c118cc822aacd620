/**
 * Real Redis servers for a test file: started once before its tests, stopped after them.
 */
import { afterAll, beforeAll } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import { type RedisCluster, type RedisServer, startRedisCluster, startRedisServer } from "./RedisServer.ts"

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
export const useRedisServer = (): () => RedisServer => useScoped(startRedisServer())

/** A 3-master Redis Cluster on free loopback ports, for the tests of the calling file. */
export const useRedisCluster = (): () => RedisCluster => useScoped(startRedisCluster())

/** The URLs of a cluster's masters, as client root nodes. */
export const rootNodes = (cluster: RedisCluster): Array<string> =>
  cluster.nodes.map(({ host, port }) => `redis://${host}:${port}`)

let namespaces = 0

/** A namespace no other test of this process uses, so layers over one server never see each other's keys. */
export const uniqueNamespace = (): string => `t${process.pid}-${namespaces++}:`
