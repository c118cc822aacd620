/**
 * The per-upload lock: a lease in the store, so it holds across every instance that shares the store.
 *
 * Taking it is one `setIfAbsent` of `lock:<id>` with a random owner token and a TTL: atomic on every backend, and a
 * crashed holder cannot block an upload for longer than the TTL. While the holder works, a fiber renews the lease
 * with `compareAndSet(key, owner, owner, { ttl })`, which fails harmlessly once another owner has it. Releasing is
 * `compareAndSet(key, owner, null)`, so a holder whose lease already expired never deletes its successor's.
 *
 * The lock is not waited for: a PATCH that finds it taken answers at once (423), and tus clients retry. Waiting would
 * only queue a second writer behind the first, to fail its offset check afterwards.
 *
 * @since 0.2.0
 */
import { BaseKvStoreService, type KvStoreError } from "effect-kv"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { randomUUID } from "node:crypto"
import { UploadServerConfig } from "./Config.ts"

/**
 * Another request holds the upload.
 *
 * @since 0.2.0
 * @category errors
 */
export class UploadLocked extends Data.TaggedError("UploadLocked")<{ readonly id: string }> {}

/**
 * @since 0.2.0
 * @category models
 */
export interface UploadLocks {
  /** Runs `effect` holding the upload's lease, or fails with `UploadLocked` at once when another request holds it. */
  readonly withLock: <A, E, R>(
    id: string,
    effect: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | UploadLocked | KvStoreError, R>
  /** Whether some request holds the upload now. */
  readonly isLocked: (id: string) => Effect.Effect<boolean, KvStoreError>
}

/**
 * @since 0.2.0
 * @category services
 */
export class Locks extends Context.Service<Locks, UploadLocks>()("@effect-kv/upload-server/Locks") {}

const key = (id: string) => `lock:${id}`

/**
 * @since 0.2.0
 * @category constructors
 */
export const make = Effect.gen(function*() {
  const store = yield* BaseKvStoreService
  const { lockTtl } = yield* UploadServerConfig
  const lease = { ttl: lockTtl }
  // Three renewals per lease: one lost renewal (a slow store) never lets the lease lapse under a live writer.
  const renewEvery = Duration.divideUnsafe(lockTtl, 3)

  const withLock = <A, E, R>(id: string, effect: Effect.Effect<A, E, R>) =>
    Effect.suspend(() => {
      const owner = randomUUID()
      const acquire = Effect.flatMap(
        store.setIfAbsent(key(id), owner, lease),
        (taken) => taken ? Effect.void : Effect.fail(new UploadLocked({ id }))
      )
      // The first renewal is due a third of a lease after taking it, not at once: most PATCHes never need one.
      const renew = Effect.sleep(renewEvery).pipe(
        Effect.andThen(Effect.ignore(store.compareAndSet(key(id), owner, owner, lease))),
        Effect.forever
      )
      // A failed release (store down) leaves the lease to its TTL, which is what the TTL is for.
      const release = Effect.ignore(store.compareAndSet(key(id), owner, null))
      return Effect.acquireUseRelease(
        acquire,
        () => Effect.andThen(Effect.forkScoped(renew), effect).pipe(Effect.scoped),
        () => release
      )
    })

  return Locks.of({
    withLock,
    isLocked: (id) => store.has(key(id))
  })
})

/**
 * @since 0.2.0
 * @category layers
 */
export const layer: Layer.Layer<Locks, never, BaseKvStoreService | UploadServerConfig> = Layer.effect(Locks, make)
