/**
 * The upload server keeps time by Effect's `Clock`: a `TestClock` drives upload expiry, lease renewal and lease
 * takeover on the memory store (which expires keys by the same `Clock`), and a bearer JWT's expiry, with no real
 * waiting.
 */
import { assert, describe, it } from "@effect/vitest"
import { memoryKvStore } from "effect-kv"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/testing/TestClock"
import * as Jose from "jose"
import * as Authorization from "../../apps/upload-server/src/Authorization.ts"
import * as Config from "../../apps/upload-server/src/Config.ts"
import * as Jwt from "../../apps/upload-server/src/Jwt.ts"
import * as Lock from "../../apps/upload-server/src/Lock.ts"
import * as Uploads from "../../apps/upload-server/src/Uploads.ts"

const EXPIRES_AFTER = Duration.minutes(10)
const LEASE = Duration.seconds(3)

const services = Lock.layer.pipe(
  Layer.provideMerge(Uploads.layer),
  Layer.provide(memoryKvStore),
  Layer.provideMerge(Config.layer({ expiresAfter: EXPIRES_AFTER, lockTtl: LEASE }))
)

const create = (id: string) =>
  Effect.gen(function*() {
    const uploads = yield* Uploads.Uploads
    const created = yield* uploads.create({
      id,
      owner: "alice",
      length: 100,
      offset: 0,
      metadata: null,
      createdAt: yield* Effect.clockWith((clock) => clock.currentTimeMillis),
      concat: null,
      parts: null,
      concatHeader: null
    })
    assert.isNotNull(created)
    return created!
  })

describe("upload server time, driven by a TestClock", () => {
  it.effect("an unfinished upload expires when the clock passes its expiry, and not a millisecond before", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(1_000_000)
      const upload = yield* create("a")
      assert.strictEqual(upload.createdAt, 1_000_000, "createdAt is the Clock's time")
      assert.strictEqual(upload.expiresAt, 1_000_000 + Duration.toMillis(EXPIRES_AFTER))
      const uploads = yield* Uploads.Uploads
      yield* TestClock.adjust(Duration.subtract(EXPIRES_AFTER, Duration.millis(1)))
      assert.isNotNull(yield* uploads.get("a"), "still there 1 ms before its expiry")
      yield* TestClock.adjust(Duration.millis(1))
      assert.isNull(yield* uploads.get("a"), "gone at its expiry")
    }).pipe(Effect.provide(services)))

  it.effect("a lease whose holder stopped renewing is taken over once it lapses by the clock", () =>
    Effect.gen(function*() {
      const upload = yield* create("b")
      const uploads = yield* Uploads.Uploads
      const locks = yield* Lock.Locks
      const now = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
      // A holder that crashed: its lease is in the record and nobody renews it.
      yield* uploads.advance(upload, { lease: { holder: "crashed", until: now + Duration.toMillis(LEASE) } })
      const early = yield* Effect.exit(locks.withLease("b", "alice", () => Effect.void))
      assert.isTrue(Exit.isFailure(early) && Exit.hasFails(early), "locked while the lease lasts")
      yield* TestClock.adjust(Duration.subtract(LEASE, Duration.millis(1)))
      assert.isTrue(yield* locks.isLocked("b"), "locked 1 ms before the lease lapses")
      yield* TestClock.adjust(Duration.millis(1))
      assert.isFalse(yield* locks.isLocked("b"), "free once it lapses")
      const offset = yield* locks.withLease(
        "b",
        "alice",
        (held) => Effect.map(held.commit({ offset: 10, length: 100 }), (done) => done?.offset)
      )
      assert.strictEqual(offset, 10, "another request took the upload over and wrote")
    }).pipe(Effect.provide(services)))

  it.effect("a live holder renews its lease: it never lapses however far the clock moves", () =>
    Effect.gen(function*() {
      yield* create("c")
      const locks = yield* Lock.Locks
      const holding = yield* Effect.forkChild(locks.withLease("c", "alice", () => Effect.never))
      yield* Effect.yieldNow
      for (let second = 0; second < 60; second++) {
        yield* TestClock.adjust(Duration.seconds(1))
        assert.isTrue(yield* locks.isLocked("c"), `locked after ${second + 1} s`)
      }
      const other = yield* Effect.exit(locks.withLease("c", "alice", () => Effect.void))
      assert.isTrue(Exit.isFailure(other), "another request is refused while the holder lives")
      yield* Fiber.interrupt(holding)
      assert.isFalse(yield* locks.isLocked("c"), "released when the holder ends")
    }).pipe(Effect.provide(services)))

  it.effect("a bearer JWT is accepted until the clock reaches its exp, and refused from then on", () =>
    Effect.gen(function*() {
      const secret = "a secret for the clock test, long enough for HS256"
      yield* TestClock.setTime(1_000_000_000_000)
      const exp = 1_000_000_000 + 60
      const token = yield* Effect.promise(() =>
        new Jose.SignJWT({ sub: "alice" }).setProtectedHeader({ alg: "HS256" }).setExpirationTime(exp).sign(
          new TextEncoder().encode(secret)
        )
      )
      const authorization = yield* Effect.provide(
        Effect.service(Authorization.Authorization),
        Jwt.layerHs256(Redacted.make(secret))
      )
      const request = HttpServerRequest.fromWeb(
        new Request("http://localhost/files/", { headers: { authorization: `Bearer ${token}` } })
      )
      assert.strictEqual(yield* authorization.authorize(request), "alice")
      yield* TestClock.adjust(Duration.seconds(59))
      assert.strictEqual(yield* authorization.authorize(request), "alice", "still valid a second before exp")
      yield* TestClock.adjust(Duration.seconds(1))
      const expired = yield* Effect.flip(authorization.authorize(request))
      assert.strictEqual(expired.reason, "the token has expired")
    }))
})
