/**
 * The conformance checks of expiry: a key written with a ttl is gone to every operation once it runs out, and a
 * later write removes, keeps or replaces its expiry as its options say. They run on `TestClock` for a backend that
 * reads Effect's `Clock`, on real time otherwise.
 *
 * @internal
 */
import { assert } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { identity } from "effect/Function"
import * as TestClock from "effect/testing/TestClock"
import { type BaseKvStore, BaseKvStoreService } from "../../BaseKvStore.ts"
import type { Check, ConformanceOptions } from "./check.ts"
import { increment, millisOf, sorted } from "./helpers.ts"

interface Timing {
  /** A ttl that cannot run out between a write and the reads right after it. */
  readonly ttl: number
  /** Lets `ttl` (plus a margin) pass; on real time, waits until `key` is gone, within a bound. */
  readonly elapse: (store: BaseKvStore, key: string) => Effect.Effect<void, unknown>
  /** Wraps a check so that its time is the suite's: a `TestClock` on "test". */
  readonly run: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

const timing = (options: ConformanceOptions): Timing =>
  options.clock === "test"
    ? {
      ttl: 1000,
      elapse: () => TestClock.adjust(1001),
      run: (effect) => Effect.provide(effect, TestClock.layer())
    }
    : {
      // Long enough for a loaded machine to do the seven writes and the reads that follow them (1.5 s was not, with
      // test files and configurations running side by side on two cores); short enough to keep checks quick.
      ttl: 3000,
      elapse: (store, key) =>
        Effect.gen(function*() {
          yield* Effect.sleep("3 seconds")
          // The backend's own expiry decides; polling absorbs a server whose clock reading lags a little.
          for (let i = 0; i < 200 && (yield* store.get(key)) !== null; i++) yield* Effect.sleep("25 millis")
          assert.strictEqual(yield* store.get(key), null, `${key} expired within 5 s after its ttl`)
        }),
      run: identity
    }

export const expiryChecks = (options: ConformanceOptions): ReadonlyArray<Check> => {
  const time = timing(options)
  const check = (id: string, name: string, run: Effect.Effect<void, unknown, BaseKvStoreService>): Check => ({
    id,
    name,
    timeout: 60_000,
    run: time.run(run)
  })
  return [
    check(
      "ttl-expires",
      "a key written with a ttl is absent to every operation once it expires",
      Effect.gen(function*() {
        const store = yield* BaseKvStoreService
        const ttl = time.ttl
        yield* store.set("ttl:set", "v", { ttl })
        yield* store.set("ttl:string", "v", { ttl: `${ttl} millis` })
        yield* store.setMany([["ttl:many:1", "a"], ["ttl:many:2", "b"]], { ttl: Duration.millis(ttl) })
        assert.isTrue(yield* store.setIfAbsent("ttl:nx", "v", { ttl }))
        assert.isTrue(yield* store.compareAndSet("ttl:cas", null, "v", { ttl }))
        assert.strictEqual(yield* store.modify("ttl:modify", increment, { ttl }), "1")
        yield* store.set("ttl:kept", "forever")
        const keys = ["cas", "many:1", "many:2", "modify", "nx", "set", "string"]
        assert.deepStrictEqual(yield* store.list("ttl:"), sorted([...keys, "kept"]), "present before expiry")
        assert.strictEqual(yield* store.get("ttl:set"), "v")
        const left = millisOf(yield* store.ttl("ttl:set"))
        assert.isNotNull(left)
        assert.isTrue(left! > 0 && left! <= ttl, `ttl() reports the time left (${left} of ${ttl} ms)`)
        assert.strictEqual(millisOf(yield* store.ttl("ttl:kept")), Infinity, "ttl() of a key without expiry")
        assert.strictEqual(yield* store.ttl("ttl:missing"), null, "ttl() of a missing key")

        yield* time.elapse(store, "ttl:set")
        for (const key of keys) {
          assert.strictEqual(yield* store.get(`ttl:${key}`), null, `get of expired ttl:${key}`)
          assert.isFalse(yield* store.has(`ttl:${key}`), `has of expired ttl:${key}`)
          assert.strictEqual(yield* store.ttl(`ttl:${key}`), null, `ttl() of expired ttl:${key}`)
        }
        assert.deepStrictEqual(yield* store.list("ttl:"), ["kept"], "list leaves expired keys out")
        assert.strictEqual(yield* store.count("ttl:"), 1, "count leaves expired keys out")
        assert.deepStrictEqual((yield* store.listPage("ttl:", { limit: 10 })).keys, ["kept"], "listPage too")
        assert.deepStrictEqual(yield* store.getMany(["ttl:set", "ttl:kept"]), [null, "forever"])
        assert.isTrue(yield* store.setIfAbsent("ttl:nx", "again"), "setIfAbsent treats an expired key as missing")
        assert.isTrue(yield* store.compareAndSet("ttl:cas", null, "again"), "so does compareAndSet(key, null, ...)")
        assert.isFalse(yield* store.compareAndSet("ttl:set", "v", "stale"), "an expired value is no longer current")
        assert.strictEqual(yield* store.modify("ttl:modify", increment), "1", "modify sees an expired key as null")
        assert.strictEqual(yield* store.clear("ttl:"), 4, "clear counts only live keys")
      })
    ),
    check(
      "ttl-overwrite",
      "a write without ttl removes the expiry, keepTtl keeps it, a new ttl replaces it",
      Effect.gen(function*() {
        const store = yield* BaseKvStoreService
        const ttl = time.ttl
        yield* store.set("ow:plain", "1", { ttl })
        yield* store.set("ow:plain", "2")
        assert.strictEqual(millisOf(yield* store.ttl("ow:plain")), Infinity, "set without ttl removes the expiry")
        yield* store.set("ow:keep", "1", { ttl })
        yield* store.set("ow:keep", "2", { keepTtl: true })
        assert.isBelow(millisOf(yield* store.ttl("ow:keep"))!, Infinity, "keepTtl keeps the expiry")
        assert.isTrue(yield* store.compareAndSet("ow:keep", "2", "3", { keepTtl: true }))
        assert.strictEqual(yield* store.modify("ow:keep", (v) => v + "!", { keepTtl: true }), "3!")
        yield* store.set("ow:keep-none", "1")
        yield* store.set("ow:keep-none", "2", { keepTtl: true })
        assert.strictEqual(millisOf(yield* store.ttl("ow:keep-none")), Infinity, "keepTtl on a key without expiry")
        yield* store.set("ow:keep-new", "1", { keepTtl: true })
        assert.strictEqual(millisOf(yield* store.ttl("ow:keep-new")), Infinity, "keepTtl on a new key: no expiry")
        yield* store.set("ow:longer", "1", { ttl })
        yield* store.set("ow:longer", "2", { ttl: ttl * 1000 })
        assert.isAbove(millisOf(yield* store.ttl("ow:longer"))!, ttl, "a new ttl replaces the old one")
        yield* store.set("ow:cas", "1", { ttl })
        assert.isTrue(yield* store.compareAndSet("ow:cas", "1", "2"))
        assert.strictEqual(millisOf(yield* store.ttl("ow:cas")), Infinity, "compareAndSet without ttl: no expiry")
        yield* store.set("ow:undefined", "1", { ttl: undefined, keepTtl: undefined })
        assert.strictEqual(millisOf(yield* store.ttl("ow:undefined")), Infinity, "undefined options mean none")

        yield* time.elapse(store, "ow:keep")
        assert.strictEqual(yield* store.get("ow:keep"), null, "the kept expiry still applies")
        assert.strictEqual(yield* store.get("ow:plain"), "2")
        assert.strictEqual(yield* store.get("ow:keep-none"), "2")
        assert.strictEqual(yield* store.get("ow:longer"), "2")
        assert.strictEqual(yield* store.get("ow:cas"), "2")
      })
    )
  ]
}
