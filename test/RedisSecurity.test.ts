/**
 * The layer against servers that want credentials or TLS, as managed Redis does, with both client libraries: a
 * cluster with `requirepass`/`masterauth` (the credentials must reach every master, not only the root node), TLS with
 * a throwaway CA on a standalone server (with a client certificate) and on a cluster, the first connection's real
 * error in the layer's failure, and `clientOptions` reaching the library.
 *
 * Each test starts servers of its own. Skipped when the Redis tests run against external servers.
 */
import { assert, describe, it } from "@effect/vitest"
import { KvBackendError } from "effect-kv"
import { layerRedis, type LayerRedisOptions } from "effect-kv/redis"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import { buildStore, canKillServers, uniqueNamespace } from "./support/fixtures.ts"
import {
  freePort,
  type RedisCluster,
  redisCommand,
  startRedisCluster,
  startRedisServer
} from "./support/RedisServer.ts"
import { makeCertificates, tlsArgs } from "./support/tls.ts"

const clients = ["node-redis", "ioredis"] as const

const PASSWORD = "s3cret:pw@x"

/** 30 keys land on every master of a 3-master cluster; all of them must be written, read and listed. */
const roundTrip = (options: LayerRedisOptions) =>
  Effect.gen(function*() {
    const store = yield* buildStore(layerRedis({ ...options, keyPrefix: uniqueNamespace() }))
    const keys = Array.from({ length: 30 }, (_, i) => `k${i}`)
    yield* Effect.forEach(keys, (key) => store.set(key, `value of ${key}`), { discard: true })
    for (const key of keys) assert.strictEqual(yield* store.get(key), `value of ${key}`)
    assert.deepStrictEqual(yield* store.list(""), keys.slice().sort())
    yield* store.delete("k0")
    assert.strictEqual(yield* store.get("k0"), null)
  })

const layerFailure = (options: LayerRedisOptions) =>
  Effect.gen(function*() {
    const result = yield* Effect.result(Effect.scoped(buildStore(layerRedis(options))))
    if (Result.isSuccess(result)) return assert.fail("the layer connected")
    assert.instanceOf(result.failure, KvBackendError)
    return result.failure
  })

const clusterUrls = (cluster: RedisCluster, userinfo = "", protocol = "redis") =>
  cluster.nodes.map(({ host, port }) => `${protocol}://${userinfo}${host}:${port}`)

describe.skipIf(!canKillServers)("redis: a cluster with a password", () => {
  it.live(
    "credentials in the root-node URLs or as options reach every master, on both clients",
    () =>
      Effect.gen(function*() {
        const cluster = yield* startRedisCluster({ node: () => Effect.succeed({ password: PASSWORD }) })
        for (const client of clients) {
          yield* roundTrip({
            cluster: { rootNodes: clusterUrls(cluster, `:${encodeURIComponent(PASSWORD)}@`) },
            client
          })
          yield* roundTrip({ cluster: { rootNodes: clusterUrls(cluster) }, client, password: Redacted.make(PASSWORD) })
          const error = yield* layerFailure({
            cluster: { rootNodes: clusterUrls(cluster) },
            client,
            password: "wrong",
            connectTimeout: "2 seconds"
          })
          // The server's own words, not just "timeout"; and not the password.
          assert.match(error.message, /WRONGPASS|invalid username-password/, `${client}: ${error.message}`)
          assert.notInclude(error.message, "wrong@")
        }
      }),
    90_000
  )
})

describe.skipIf(!canKillServers)("redis: TLS with a throwaway CA", () => {
  it.live(
    "standalone, a client certificate required: ca, cert and key reach both clients",
    () =>
      Effect.gen(function*() {
        const certificates = yield* makeCertificates
        const tlsPort = yield* freePort(false)
        yield* startRedisServer({ args: tlsArgs(certificates, tlsPort, { clientCerts: true }) })
        const url = `rediss://127.0.0.1:${tlsPort}`
        const tls = { ca: certificates.ca, cert: certificates.clientCert, key: Buffer.from(certificates.clientKey) }
        for (const client of clients) {
          yield* roundTrip({ url, client, tls })
          // `tls` alone turns TLS on for a redis:// URL.
          yield* roundTrip({ url: `redis://127.0.0.1:${tlsPort}`, client, tls })
          const untrusted = yield* layerFailure({ url, client, connectTimeout: "2 seconds" })
          assert.match(untrusted.message, /self[- ]signed certificate/, `${client}: ${untrusted.message}`)
        }
      }),
    60_000
  )

  it.live(
    "cluster over TLS (tls-cluster yes): rediss:// root nodes and a CA reach every node, on both clients",
    () =>
      Effect.gen(function*() {
        const certificates = yield* makeCertificates
        const tlsPorts: Array<number> = []
        const cluster = yield* startRedisCluster({
          // With `tls-cluster yes` the bus binds the TLS port + 10000, so that port must be free and below the
          // ephemeral range too.
          node: (i) =>
            Effect.map(Effect.orDie(freePort(true)), (port) => {
              tlsPorts[i] = port
              return { args: tlsArgs(certificates, port, { cluster: true }) }
            })
        })
        // No replicas: the masters are the nodes in creation order.
        const rootNodes = cluster.servers.map((_, i) => `rediss://127.0.0.1:${tlsPorts[i]}`)
        for (const client of clients) {
          yield* roundTrip({ cluster: { rootNodes }, client, tls: { ca: certificates.ca } })
          const untrusted = yield* layerFailure({ cluster: { rootNodes }, client, connectTimeout: "2 seconds" })
          // ioredis discovers the slots on a connection of its own whose errors it drops, so only node-redis can say
          // what was wrong with the certificate.
          if (client === "node-redis") {
            assert.match(untrusted.message, /self[- ]signed certificate/, `${client}: ${untrusted.message}`)
          }
        }
      }),
    90_000
  )
})

describe("redis: clientOptions", () => {
  it.live.skipIf(!canKillServers)(
    "reach the client library: the connection name shows in CLIENT LIST",
    () =>
      Effect.gen(function*() {
        const server = yield* startRedisServer()
        const options = {
          "node-redis": { name: "effect-kv-via-node-redis" },
          ioredis: { connectionName: "effect-kv-via-ioredis" }
        } as const
        for (const client of clients) {
          yield* buildStore(layerRedis({ url: server.url, client, clientOptions: options[client] }))
          const list = yield* redisCommand(server.port, "CLIENT", "LIST")
          assert.include(list, Object.values(options[client])[0], client)
        }
      })
  )
})
