/**
 * Coalescing in the Redis backend, on real servers: the gets, sets without ttl and deletes issued in one tick go to
 * Redis as one MGET, MSET or DEL per hash slot (counted in the servers' `INFO commandstats`), and every caller still
 * sees what it would have seen alone: its own value, its own error (a key of another type, a bad key, a write to a
 * replica), its own deadline and interruption, the order of the operations on each key, and through a cluster
 * failover a correct value or a typed error, never another caller's value.
 *
 * Every test that counts commands uses servers of its own; skipped against external servers.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import calculateSlot from "cluster-key-slot"
import { type BackendReason, type BaseKvStore, KvBackendError, KvInputError } from "effect-kv"
import { layerRedis } from "effect-kv/redis"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Result from "effect/Result"
import * as Scope from "effect/Scope"
import { MAX_SET_CHARS } from "../src/internal/redisCoalesce.ts"
import {
  buildStore,
  canKillServers,
  eventually,
  holds,
  replicaTookOver,
  rootNodes,
  uniqueNamespace
} from "./support/fixtures.ts"
import {
  awaitUnreadCommand,
  type RedisCluster,
  redisCommand,
  type RedisServer,
  sleepServer,
  startFailoverCluster,
  startRedisCluster,
  startRedisServer
} from "./support/RedisServer.ts"

const clients = ["node-redis", "ioredis"] as const

const COMMANDS = ["get", "mget", "set", "mset", "del", "exists", "evalsha", "eval"] as const
type Counts = Record<typeof COMMANDS[number], number>

/**
 * The calls of the commands above in `INFO commandstats`, summed over `ports`; or, with `rejected`, the commands
 * refused before they ran (READONLY on a replica; a cluster node also counts a MOVED redirection so).
 */
const counts = (ports: ReadonlyArray<number>, rejected = false): Effect.Effect<Counts> =>
  Effect.map(
    Effect.forEach(ports, (port) => Effect.orDie(redisCommand(port, "INFO", "commandstats"))),
    (infos) => {
      const result = Object.fromEntries(COMMANDS.map((command) => [command, 0])) as Counts
      for (const info of infos) {
        for (const command of COMMANDS) {
          const stats = new RegExp(`cmdstat_${command}:calls=(\\d+),.*rejected_calls=(\\d+)`).exec(info ?? "")
          result[command] += Number(stats?.[rejected ? 2 : 1] ?? 0)
        }
      }
      return result
    }
  )

/** The commands `effect` sent, over `ports`: every command counted, the ones not named in `expected` must be 0. */
const expectCommands = <A, E>(
  ports: ReadonlyArray<number>,
  expected: Partial<Counts>,
  effect: Effect.Effect<A, E>,
  what: string,
  rejected = false
): Effect.Effect<A, E> =>
  Effect.gen(function*() {
    const before = yield* counts(ports, rejected)
    const result = yield* effect
    const after = yield* counts(ports, rejected)
    const sent = Object.fromEntries(COMMANDS.map((command) => [command, after[command] - before[command]]))
    const wanted = Object.fromEntries(COMMANDS.map((command) => [command, expected[command] ?? 0]))
    assert.deepStrictEqual(sent, wanted, `${what}: commands sent`)
    return result
  })

/** At most `limit` commands of the ones counted were sent while `effect` ran. */
const expectAtMost = <A, E>(
  ports: ReadonlyArray<number>,
  limit: number,
  effect: Effect.Effect<A, E>,
  what: string
): Effect.Effect<A, E> =>
  Effect.gen(function*() {
    const before = yield* counts(ports)
    const result = yield* effect
    const after = yield* counts(ports)
    const sent = COMMANDS.reduce((sum, command) => sum + after[command] - before[command], 0)
    assert.isAtMost(sent, limit, `${what}: commands sent`)
    return result
  })

/** Every effect started in the same tick, in order: what `Effect.all` with unbounded concurrency does. */
const together = <E>(effects: ReadonlyArray<Effect.Effect<unknown, E>>): Effect.Effect<Array<unknown>, E> =>
  Effect.all(effects, { concurrency: "unbounded" })

const backendFailure = (result: unknown, reasons: ReadonlyArray<BackendReason>, key: string) => {
  const outcome = result as Result.Result<unknown, unknown>
  if (Result.isSuccess(outcome)) {
    return assert.fail(`${key}: expected a failure, got ${JSON.stringify(outcome.success)}`)
  }
  assert.instanceOf(outcome.failure, KvBackendError, key)
  const error = outcome.failure as KvBackendError
  assert.include(reasons, error.reason, error.message)
  assert.strictEqual(error.key, key, "the error names the caller's own key")
  return error
}

const keys = (n: number, prefix = "k") => Array.from({ length: n }, (_, i) => `${prefix}${i}`)

/** A resource started before the tests of a describe block and stopped after them. */
const useScoped = <A, E>(acquire: Effect.Effect<A, E, Scope.Scope>): () => A => {
  let value: A | undefined
  const scope = Scope.makeUnsafe()
  beforeAll(async () => {
    value = await Effect.runPromise(Scope.provide(acquire, scope))
  }, 60_000)
  afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)))
  return () => {
    if (value === undefined) throw new Error("the fixture is used before it started")
    return value
  }
}

describe.skipIf(!canKillServers)("redis coalescing: standalone", () => {
  const server = useScoped(startRedisServer())
  const ports = () => [server().port]
  const store = (client: typeof clients[number]) =>
    buildStore(layerRedis({ url: server().url, client, keyPrefix: uniqueNamespace() }))

  for (const client of clients) {
    it.live(`${client}: 100 concurrent gets are one MGET, sets one MSET, deletes one DEL; a lone get is a GET`, () =>
      Effect.gen(function*() {
        const kv = yield* store(client)
        const names = keys(100)
        yield* expectCommands(
          ports(),
          { mset: 1 },
          together(names.map((key) => kv.set(key, `value of ${key}`))),
          "100 sets"
        )
        const values = yield* expectCommands(ports(), { mget: 1 }, together(names.map(kv.get)), "100 gets")
        assert.deepStrictEqual(values, names.map((key) => `value of ${key}`), "each caller got its own value")
        assert.strictEqual(yield* expectCommands(ports(), { get: 1 }, kv.get("k7"), "a lone get"), "value of k7")
        yield* expectCommands(ports(), { set: 1 }, kv.set("k7", "alone"), "a lone set")
        yield* expectCommands(ports(), { del: 1 }, together(names.map(kv.delete)), "100 deletes")
        // Every get missed: one MGET, then one EXISTS telling "missing" from "of another type" for all of them.
        const gone = yield* expectCommands(ports(), { mget: 1, exists: 1 }, together(names.map(kv.get)), "misses")
        assert.isTrue(gone.every((value) => value === null))
      }))

    it.live(`${client}: the operations on one key issued in one tick run in the order they were issued`, () =>
      Effect.gen(function*() {
        const kv = yield* store(client)
        const names = keys(50)
        // For every key, in this order: set a, get, set b, get, delete, get. Each step of all keys is one command.
        const steps = (key: string) => [
          kv.set(key, `a ${key}`),
          kv.get(key),
          kv.set(key, `b ${key}`),
          kv.get(key),
          kv.delete(key),
          kv.get(key)
        ]
        const results = yield* expectCommands(
          ports(),
          { mset: 2, mget: 3, del: 1, exists: 1 },
          together(names.flatMap(steps)),
          "six steps of 50 keys"
        )
        names.forEach((key, i) => {
          const [, first, , second, , third] = results.slice(i * 6, i * 6 + 6)
          assert.strictEqual(first, `a ${key}`, `${key}: the get after set a`)
          assert.strictEqual(second, `b ${key}`, `${key}: the get after set b`)
          assert.isNull(third, `${key}: the get after the delete`)
        })

        // 100 writes of one key in one tick: the last one issued wins, as on one connection without coalescing.
        yield* expectCommands(
          ports(),
          { mset: 1 },
          together(Array.from({ length: 100 }, (_, i) => kv.set("same", String(i)))),
          "100 sets of one key"
        )
        assert.strictEqual(yield* kv.get("same"), "99")

        // Any other command is a barrier: a compareAndSet sees the set issued before it, the get after it sees it. (Its
        // script is loaded first: a script the server does not know yet takes a second round trip, EVAL after
        // EVALSHA, which the get issued after it does not wait for.)
        yield* kv.compareAndSet("warm", null, "up")
        yield* kv.compareAndSet("warm", "up", "again")
        const barrier = yield* together(names.flatMap((key) => [
          kv.set(key, "before"),
          Effect.map(kv.compareAndSet(key, "before", "after"), String),
          kv.get(key)
        ]))
        names.forEach((key, i) =>
          assert.deepStrictEqual(barrier.slice(i * 3, i * 3 + 3), [undefined, "true", "after"], key)
        )
      }))

    it.live(`${client}: sets of more than MAX_SET_CHARS characters go as several MSETs, in the order issued`, () =>
      Effect.gen(function*() {
        const namespace = uniqueNamespace()
        const kv = yield* buildStore(layerRedis({ url: server().url, client, keyPrefix: namespace }))
        // Keys of 4 characters, as "same" below.
        const names = Array.from({ length: 100 }, (_, i) => `k${String(i).padStart(3, "0")}`)
        const value = (key: string, i: number) => `${i} ${key} `.padEnd(1000, "v")
        // Each pair counts namespace + key + value; an MSET is cut before the pair that would pass the limit.
        const perMset = Math.floor(MAX_SET_CHARS / (namespace.length + 4 + 1000))
        const msets = Math.ceil(100 / perMset)
        assert.isAbove(msets, 1, "the batch is larger than one MSET takes")
        yield* expectCommands(
          ports(),
          { mset: msets },
          together(names.map((key, i) => kv.set(key, value(key, i)))),
          "100 sets of 1,000 characters"
        )
        assert.deepStrictEqual(yield* kv.getMany(names), names.map(value), "every value landed")
        // The same key in every MSET: the last write issued wins, as in one MSET.
        yield* expectCommands(
          ports(),
          { mset: msets },
          together(Array.from({ length: 100 }, (_, i) => kv.set("same", value("same", i)))),
          "100 sets of one key"
        )
        assert.strictEqual(yield* kv.get("same"), value("same", 99))
      }))

    it.live(`${client}: a key of another type fails only its own caller, with WRONGTYPE, as a lone get does`, () =>
      Effect.gen(function*() {
        const keyPrefix = uniqueNamespace()
        const kv = yield* buildStore(layerRedis({ url: server().url, client, keyPrefix }))
        yield* redisCommand(server().port, "RPUSH", `${keyPrefix}list`, "x")
        const names = keys(20)
        yield* together(names.map((key) => kv.set(key, key)))
        // MGET reads the list as missing; the EXISTS of the three misses finds one of them, so each of the three is
        // read again by a GET of its own: the list's fails as it should, the missing ones are null.
        const outcomes = yield* expectCommands(
          ports(),
          { mget: 1, exists: 1, get: 3 },
          together([...names, "list", "missing1", "missing2"].map((key) => Effect.result(kv.get(key)))),
          "a batch with a list in it"
        )
        names.forEach((key, i) => assert.deepStrictEqual(outcomes[i], Result.succeed(key)))
        const error = backendFailure(outcomes[20], ["Failure"], "list")
        assert.include(error.message, "WRONGTYPE")
        assert.deepStrictEqual(outcomes.slice(21), [Result.succeed(null), Result.succeed(null)])

        // A bad key fails its own caller with KvInputError before anything is sent; the others are one MGET.
        const mixed = yield* expectCommands(
          ports(),
          { mget: 1 },
          together(["k1", "", "k2", "k3"].map((key) => Effect.result(kv.get(key)))),
          "a batch with a bad key"
        )
        assert.deepStrictEqual(mixed[0], Result.succeed("k1"))
        const bad = mixed[1] as Result.Result<unknown, unknown>
        assert.instanceOf(Result.isFailure(bad) ? bad.failure : undefined, KvInputError)
        assert.deepStrictEqual(mixed.slice(2), [Result.succeed("k2"), Result.succeed("k3")])
      }))
  }
})

describe.skipIf(!canKillServers)("redis coalescing: deadlines, interruption and errors of a batch", () => {
  const debug = useScoped(startRedisServer({ args: ["--enable-debug-command", "yes"] }))

  for (const client of clients) {
    it.live(
      `${client}: callers of one MGET keep their own deadlines and interruption`,
      () =>
        Effect.gen(function*() {
          const own: RedisServer = debug()
          const kv = yield* buildStore(
            layerRedis({ url: own.url, client, timeout: "10 seconds", keyPrefix: uniqueNamespace() })
          )
          const names = keys(40)
          yield* together(names.map((key) => kv.set(key, key)))
          const before = yield* counts([own.port])
          yield* sleepServer(own.port, 1)
          // All 40 gets are issued in one tick, as one MGET; the server sleeps on it; half the callers are interrupted.
          const started = Date.now()
          const fibers = yield* Effect.forEach(names, (key) => Effect.forkChild(kv.get(key)))
          yield* awaitUnreadCommand(own.port)
          yield* Effect.forEach(fibers.filter((_, i) => i % 2 === 0), Fiber.interrupt)
          assert.isBelow(Date.now() - started, 900, "the interrupted callers did not wait for the server")
          const values = yield* Effect.forEach(fibers.filter((_, i) => i % 2 === 1), Fiber.join)
          assert.deepStrictEqual(values, names.filter((_, i) => i % 2 === 1), "the others got their own values")
          const after = yield* counts([own.port])
          assert.strictEqual(after.mget - before.mget, 1, "one MGET for all 40")
          assert.strictEqual(after.get - before.get, 0)

          // The store's own deadline: each caller of the batch fails with a Timeout naming its own key.
          const hasty = yield* buildStore(
            layerRedis({ url: own.url, client, timeout: "300 millis", keyPrefix: uniqueNamespace() })
          )
          yield* sleepServer(own.port, 1)
          const timedOut = yield* together(names.map((key) => Effect.result(hasty.set(key, "late"))))
          names.forEach((key, i) => assert.include(backendFailure(timedOut[i], ["Timeout"], key).message, "300 ms"))
        }),
      30_000
    )

    it.live(
      `${client}: a batch refused by a replica fails each caller with READONLY and its own key`,
      () =>
        Effect.gen(function*() {
          const master = yield* startRedisServer()
          const replica = yield* startRedisServer({ args: ["--replicaof", "127.0.0.1", String(master.port)] })
          const keyPrefix = uniqueNamespace()
          const names = keys(20)
          const onMaster = yield* buildStore(layerRedis({ url: master.url, client, keyPrefix }))
          yield* together(names.map((key) => onMaster.set(key, key)))
          const onReplica = yield* buildStore(layerRedis({ url: replica.url, client, keyPrefix }))
          yield* eventually(
            "the writes reached the replica",
            10_000,
            holds(Effect.map(onReplica.get("k19"), (value) => value === "k19"))
          )
          const writes = yield* expectCommands(
            [replica.port],
            { mset: 1 },
            together(names.map((key) => Effect.result(onReplica.set(key, "on the replica")))),
            "20 sets on a replica",
            true
          )
          names.forEach((key, i) => assert.include(backendFailure(writes[i], ["Unavailable"], key).message, "READONLY"))
          const reads = yield* expectCommands([replica.port], { mget: 1 }, together(names.map(onReplica.get)), "reads")
          assert.deepStrictEqual(reads, names)
        }),
      30_000
    )
  }
})

describe.skipIf(!canKillServers)("redis coalescing: cluster", () => {
  const cluster = useScoped(startRedisCluster())
  const ports = () => cluster().servers.map((server) => server.port)
  const store = (client: typeof clients[number]) =>
    buildStore(layerRedis({ cluster: { rootNodes: rootNodes(cluster()) }, client, keyPrefix: uniqueNamespace() }))

  for (const client of clients) {
    it.live(`${client}: one MGET, MSET or DEL per hash slot, a plain command for a slot with one key`, () =>
      Effect.gen(function*() {
        const keyPrefix = uniqueNamespace()
        const kv = yield* buildStore(
          layerRedis({ cluster: { rootNodes: rootNodes(cluster()) }, client, keyPrefix })
        )
        // Three slots of 20 keys each (hash tags), and 10 keys on slots of their own.
        const names = [...keys(20, "{a}"), ...keys(20, "{b}"), ...keys(20, "{c}"), ...keys(10, "solo")]
        const perSlot = new Map<number, number>()
        for (const key of names) {
          const slot = calculateSlot(keyPrefix + key)
          perSlot.set(slot, (perSlot.get(slot) ?? 0) + 1)
        }
        const shared = [...perSlot.values()].filter((n) => n > 1).length
        const alone = perSlot.size - shared
        assert.isAtLeast(shared, 3)
        yield* expectCommands(
          ports(),
          { mset: shared, set: alone },
          together(names.map((key) => kv.set(key, `value of ${key}`))),
          "sets"
        )
        const values = yield* expectCommands(ports(), { mget: shared, get: alone }, together(names.map(kv.get)), "gets")
        assert.deepStrictEqual(values, names.map((key) => `value of ${key}`))
        yield* expectCommands(ports(), { del: perSlot.size }, together(names.map(kv.delete)), "deletes")
        assert.deepStrictEqual(yield* kv.getMany(names), names.map(() => null))
      }))

    it.live(`${client}: each caller's operations stay in order while the callers' are coalesced, across slots`, () =>
      Effect.gen(function*() {
        const kv = yield* store(client)
        // Concurrent operations on one key are not ordered on a cluster, by the clients themselves (see
        // redisCoalesce.ts); each caller's own sequence is, as linearizability asks.
        const names = [...keys(30, "{x}"), ...keys(10, "{y}")]
        const results = yield* expectAtMost(
          ports(),
          names.length * 6 / 4,
          together(names.map((key) =>
            Effect.gen(function*() {
              yield* kv.set(key, `a ${key}`)
              const first = yield* kv.get(key)
              yield* kv.set(key, `b ${key}`)
              const second = yield* kv.get(key)
              yield* kv.delete(key)
              return [first, second, yield* kv.get(key)]
            })
          )),
          "six steps of 40 callers"
        )
        names.forEach((key, i) => assert.deepStrictEqual(results[i], [`a ${key}`, `b ${key}`, null], key))
      }))
  }
})

describe.skipIf(!canKillServers)("redis coalescing: a cluster failover under batches", () => {
  it.live(
    "batches in flight while a master dies: each caller gets its own value or a typed error, then all succeed again",
    () =>
      Effect.gen(function*() {
        const cluster: RedisCluster = yield* startFailoverCluster
        const [victim] = cluster.servers
        const observer = cluster.servers[1].port
        const names = [...keys(30, "{p}"), ...keys(30, "{q}"), ...keys(30, "{r}"), ...keys(30)]
        const stores = yield* Effect.forEach(clients, (client) =>
          Effect.map(
            buildStore(
              layerRedis({
                cluster: { rootNodes: rootNodes(cluster) },
                client,
                timeout: "500 millis",
                keyPrefix: uniqueNamespace()
              })
            ),
            (kv): readonly [string, BaseKvStore] => [client, kv]
          ))
        for (const [, kv] of stores) yield* together(names.map((key) => kv.set(key, `0 ${key}`)))
        // Redis replicates asynchronously: a write not yet on the replica is lost with its master, and a read after
        // the failover would rightly find nothing. Every key must exist throughout, so the replicas catch up first.
        yield* Effect.forEach(cluster.servers, (server) =>
          eventually(
            `the replica of ${server.port} caught up`,
            10_000,
            holds(Effect.map(redisCommand(server.port, "INFO", "replication"), (info) => {
              if (!(info ?? "").includes("role:master")) return true
              const offset = /master_repl_offset:(\d+)/.exec(info ?? "")?.[1]
              return offset !== undefined && new RegExp(`slave0:[^\r\n]*offset=${offset}\\b`).test(info ?? "")
            }))
          ))

        let failures = 0
        let round = 0
        /** One round of batches: every key read and written at once; checks every caller's own outcome. */
        const wave = (client: string, kv: BaseKvStore) =>
          Effect.gen(function*() {
            round++
            const written = `${round} ${client}`
            const outcomes = yield* together(names.flatMap((key) => [
              Effect.result(kv.get(key)),
              Effect.result(kv.set(key, `${written} ${key}`))
            ]))
            let failed = 0
            names.forEach((key, i) => {
              const read = outcomes[2 * i] as Result.Result<unknown, unknown>
              const write = outcomes[2 * i + 1] as Result.Result<unknown, unknown>
              for (const outcome of [read, write]) {
                if (Result.isFailure(outcome)) {
                  failed++
                  backendFailure(outcome, ["Unavailable", "Timeout"], key)
                }
              }
              // A read sees this key's own value: the initial one, one written by a wave, never another key's.
              if (Result.isSuccess(read)) {
                assert.isTrue(String(read.success).endsWith(` ${key}`), `${client}: ${key} read ${read.success}`)
              }
            })
            failures += failed
            return failed
          })

        let stop = false
        const load = yield* Effect.forkChild(
          Effect.forEach(stores, ([client, kv]) =>
            Effect.gen(function*() {
              while (!stop) {
                yield* wave(client, kv)
                yield* Effect.yieldNow
              }
            }), { concurrency: "unbounded", discard: true })
        )
        yield* eventually("some waves ran", 10_000, holds(Effect.sync(() => round >= 10)))
        yield* victim.kill
        yield* replicaTookOver(observer, victim.port)
        stop = true
        // Joined, not interrupted: a wrong value or an untyped error in any wave fails the test here.
        yield* Fiber.join(load)
        assert.isAbove(failures, 0, "some batches were in flight to the dead master")
        // Without a rebuild, every caller of a wave succeeds again, and reads what the wave before wrote.
        for (const [client, kv] of stores) {
          yield* eventually(
            `${client}: a whole wave succeeds`,
            30_000,
            holds(Effect.map(wave(client, kv), (n) => n === 0))
          )
          assert.strictEqual(yield* wave(client, kv), 0, `${client}: and the next one`)
          const values = yield* together(names.map(kv.get))
          names.forEach((key, i) => assert.strictEqual(values[i], `${round} ${client} ${key}`, client))
        }
      }),
    120_000
  )
})

/** The node id and the slot ranges of every master, from `CLUSTER NODES` on `port`. */
const masters = (port: number) =>
  Effect.map(
    Effect.orDie(redisCommand(port, "CLUSTER", "NODES")),
    (nodes) =>
      (nodes ?? "").split("\n").filter((line) => line.includes("master")).map((line) => {
        const [id, address, , , , , , , ...slots] = line.trim().split(" ")
        return {
          id,
          port: Number(address.split("@")[0].split(":")[1]),
          owns: (slot: number) =>
            slots.some((range) => {
              const [from, to = from] = range.split("-").map(Number)
              return slot >= from && slot <= to
            })
        }
      })
  )

describe.skipIf(!canKillServers)("redis coalescing: a slot being migrated", () => {
  // node-redis only. ioredis retries the refused MGET itself for about 1.6 s, and the single GETs sent after that fail
  // on "Too many Cluster redirections" (MOVED back and forth), though the same GETs sent alone succeed: with ioredis, a
  // batch over a slot in mid-migration fails Unavailable. A known gap, reported to the lead, not hidden by this test.
  for (const client of ["node-redis"] as const) {
    it.live(
      `${client}: a batch refused with TRYAGAIN is sent again as single commands, which follow ASK`,
      () =>
        Effect.gen(function*() {
          const cluster = yield* startRedisCluster()
          const keyPrefix = uniqueNamespace()
          const kv = yield* buildStore(layerRedis({ cluster: { rootNodes: rootNodes(cluster) }, client, keyPrefix }))
          const [stays, moves] = ["{m}0", "{m}1"]
          yield* together([kv.set(stays, "stays"), kv.set(moves, "moves")])
          const slot = calculateSlot(keyPrefix + stays)
          const nodes = yield* masters(cluster.nodes[0].port)
          const source = nodes.find((node) => node.owns(slot))!
          const target = nodes.find((node) => node !== source)!
          yield* Effect.orDie(redisCommand(target.port, "CLUSTER", "SETSLOT", String(slot), "IMPORTING", source.id))
          yield* Effect.orDie(redisCommand(source.port, "CLUSTER", "SETSLOT", String(slot), "MIGRATING", target.id))
          yield* Effect.orDie(
            redisCommand(
              source.port,
              "MIGRATE",
              "127.0.0.1",
              String(target.port),
              "",
              "0",
              "5000",
              "KEYS",
              keyPrefix + moves
            )
          )
          // One key on each side: MGET on the source is refused (TRYAGAIN); GET of the moved key is redirected (ASK).
          const ports = cluster.servers.map((server) => server.port)
          const before = yield* counts(ports)
          assert.deepStrictEqual(yield* together([kv.get(stays), kv.get(moves)]), ["stays", "moves"])
          const after = yield* counts(ports)
          assert.strictEqual(after.mget - before.mget, 0, "no MGET ran")
          assert.strictEqual(after.get - before.get, 2, "a GET of each key ran")
          yield* together([kv.set(stays, "stays 2"), kv.set(moves, "moves 2")])
          assert.deepStrictEqual(yield* together([kv.get(stays), kv.get(moves)]), ["stays 2", "moves 2"])
        }),
      60_000
    )
  }
})
