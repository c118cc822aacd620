/**
 * Atomic updates, expiry and batches on real Redis servers, beyond the conformance suite: two stores on two clients
 * racing on one key (as two server instances would), the script cache being flushed under the store, Redis's own
 * expiry as the truth, and batches and clear inside a namespace, standalone and cluster, both client libraries.
 */
import { assert, describe, it } from "@effect/vitest"
import { layerRedis, type LayerRedisOptions } from "effect-kv/redis"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { buildStore, rootNodes, uniqueNamespace, useRedisCluster, useRedisServer } from "./support/fixtures.ts"
import { redisCommand } from "./support/RedisServer.ts"

const server = useRedisServer()
const cluster = useRedisCluster()

const targets: ReadonlyArray<{ readonly name: string; readonly options: () => LayerRedisOptions }> = [
  { name: "standalone", options: () => ({ url: server().url }) },
  { name: "cluster", options: () => ({ cluster: { rootNodes: rootNodes(cluster()) } }) }
]

/** Every master's port, to run a command on each (SCRIPT FLUSH, a raw read of a key). */
const masterPorts = (target: string) => target === "standalone" ? [server().port] : cluster().servers.map((s) => s.port)

/** A raw command on whichever master holds `key`: the others answer MOVED, which redisCommand reports as failing. */
const onOwner = (target: string, key: string, ...args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    for (const port of masterPorts(target)) {
      const result = yield* Effect.result(redisCommand(port, ...args))
      if (result._tag === "Success") return result.success
    }
    return assert.fail(`no master answered ${args.join(" ")} for ${key}`)
  })

for (const target of targets) {
  describe(`redis ${target.name}: atomic updates across clients`, () => {
    it.live(
      "500 + 500 concurrent modify increments from two stores on two clients of different libraries: 1,000",
      () =>
        Effect.scoped(Effect.gen(function*() {
          const keyPrefix = uniqueNamespace()
          const a = yield* buildStore(layerRedis({ ...target.options(), client: "node-redis", keyPrefix }))
          const b = yield* buildStore(layerRedis({ ...target.options(), client: "ioredis", keyPrefix }))
          const increment = (current: string | null) => String(Number(current ?? "0") + 1)
          yield* Effect.forEach(
            Array.from({ length: 1000 }, (_, i) => i % 2 === 0 ? a : b),
            (store) => store.modify("counter", increment),
            { concurrency: "unbounded", discard: true }
          )
          assert.strictEqual(yield* a.get("counter"), "1000")
          assert.strictEqual(yield* b.get("counter"), "1000")
        })),
      60_000
    )

    it.live("setIfAbsent from two stores on two clients: exactly one of 100 callers wins", () =>
      Effect.scoped(Effect.gen(function*() {
        const keyPrefix = uniqueNamespace()
        const a = yield* buildStore(layerRedis({ ...target.options(), client: "node-redis", keyPrefix }))
        const b = yield* buildStore(layerRedis({ ...target.options(), client: "ioredis", keyPrefix }))
        const won = yield* Effect.forEach(
          Array.from({ length: 100 }, (_, i) => i),
          (i) => (i % 2 === 0 ? a : b).setIfAbsent("lock:upload:1", `owner-${i}`, { ttl: "30 seconds" }),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(won.filter(Boolean).length, 1)
        const owner = yield* a.get("lock:upload:1")
        assert.isTrue(yield* b.compareAndSet("lock:upload:1", owner, null), "the owner's release")
        assert.isNull(yield* a.get("lock:upload:1"))
      })))

    for (const client of ["node-redis", "ioredis"] as const) {
      it.live(`${client}: compareAndSet keeps working after SCRIPT FLUSH (EVALSHA falls back to EVAL)`, () =>
        Effect.scoped(Effect.gen(function*() {
          const store = yield* buildStore(layerRedis({ ...target.options(), client, keyPrefix: uniqueNamespace() }))
          yield* store.set("k", "1")
          assert.isTrue(yield* store.compareAndSet("k", "1", "2"))
          for (const port of masterPorts(target.name)) yield* redisCommand(port, "SCRIPT", "FLUSH")
          assert.isTrue(yield* store.compareAndSet("k", "2", "3"), "after a flush")
          assert.isTrue(yield* store.compareAndSet("k", "3", "4"), "and again, from the reloaded cache")
          yield* store.setMany([["{s}a", "1"], ["{s}b", "2"]], { ttl: "1 minute" })
          assert.strictEqual(yield* store.modify("k", (v) => v + "!"), "4!")
          assert.deepStrictEqual(yield* store.getMany(["k", "{s}a", "{s}b"]), ["4!", "1", "2"])
        })))

      it.live(`${client}: Redis's own expiry is what the store reports`, () =>
        Effect.scoped(Effect.gen(function*() {
          const keyPrefix = uniqueNamespace()
          const store = yield* buildStore(layerRedis({ ...target.options(), client, keyPrefix }))
          yield* store.set("session", "alice", { ttl: "20 seconds" })
          const raw = Number(yield* onOwner(target.name, keyPrefix + "session", "PTTL", keyPrefix + "session"))
          assert.isTrue(raw > 15_000 && raw <= 20_000, `PX reached Redis: PTTL ${raw}`)
          yield* store.set("session", "bob", { keepTtl: true })
          assert.isAbove(Number(yield* onOwner(target.name, keyPrefix + "session", "PTTL", keyPrefix + "session")), 0)
          yield* onOwner(target.name, keyPrefix + "session", "PERSIST", keyPrefix + "session")
          assert.strictEqual(Duration.toMillis((yield* store.ttl("session"))!), Infinity, "PERSIST seen at once")
          yield* onOwner(target.name, keyPrefix + "session", "PEXPIRE", keyPrefix + "session", "1")
          // Redis expires lazily on access, so the next read already misses.
          for (let i = 0; i < 100 && (yield* store.get("session")) !== null; i++) yield* Effect.sleep("10 millis")
          assert.isNull(yield* store.get("session"))
          assert.deepStrictEqual(yield* store.list(""), [])
        })))

      it.live(`${client}: batches span hash slots; clear("") stays inside the namespace`, () =>
        Effect.scoped(Effect.gen(function*() {
          const base = uniqueNamespace()
          const store = yield* buildStore(layerRedis({ ...target.options(), client, keyPrefix: `${base}in:` }))
          const outside = yield* buildStore(layerRedis({ ...target.options(), client, keyPrefix: `${base}out:` }))
          const whole = yield* buildStore(layerRedis({ ...target.options(), client, keyPrefix: base }))
          yield* outside.set("neighbour", "kept")
          const entries = Array.from({ length: 300 }, (_, i) => [`k${i}`, `v${i}`] as const)
          yield* store.setMany(entries)
          assert.deepStrictEqual(yield* store.getMany(entries.map(([key]) => key)), entries.map(([, value]) => value))
          yield* store.setMany(entries.slice(0, 10), { ttl: "1 minute" })
          assert.isBelow(Duration.toMillis((yield* store.ttl("k3"))!), 60_001)
          assert.strictEqual(yield* store.count(""), 300)
          assert.strictEqual(yield* store.clear(""), 300)
          assert.deepStrictEqual(yield* store.list(""), [])
          assert.strictEqual(yield* outside.get("neighbour"), "kept", "a neighbouring namespace is untouched")
          assert.deepStrictEqual(yield* whole.list(""), ["out:neighbour"])
        })))
    }
  })
}
