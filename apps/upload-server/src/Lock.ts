/**
 * The per-upload lock: a lease kept inside the upload's record (`Uploads.ts`), so it holds across every instance that
 * shares the store and costs no store calls of its own.
 *
 * Taking it is one `compareAndSet` of the record as it stood to the same record with a lease (a random holder token
 * and a time it lapses): atomic on every backend, and it reads the record in the same call, since a write that
 * succeeds proves what was stored. An instance remembers the record it last wrote for each upload, so the next PATCH
 * it serves takes the lease without reading first; when that guess is stale (another instance wrote since, or the
 * upload is gone) it reads and tries once more. Committing the bytes moves the offset and drops the lease in one
 * write; a request that commits nothing drops it with one more. A PATCH thus costs two store calls where a lock key
 * beside the record cost four (take, read, advance, release): measured on one Redis in `npm run bench`.
 *
 * Leases are short (`lockTtl`, 3 s by default) and renewed while the request runs, a third of a lease apart, so a long
 * PATCH keeps its upload and an instance that dies mid-PATCH blocks it for at most one lease. A lapsed lease is
 * taken over by the next request that finds it; its holder's later commit then fails its compare-and-set, so an
 * offset never moves for bytes its holder no longer owns. The lapse time is the holder's clock: instances must keep
 * their clocks in step (NTP) to well within a lease.
 *
 * The lock is not waited for: a PATCH that finds it taken answers at once (423), and tus clients retry. Waiting would
 * only queue a second writer behind the first, to fail its offset check afterwards.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import { randomUUID } from "node:crypto"
import { UploadServerConfig } from "./Config.ts"
import { type RecordError, type Upload, Uploads } from "./Uploads.ts"

/**
 * Another request holds the upload.
 *
 * @since 0.1.0
 * @category errors
 */
export class UploadLocked extends Data.TaggedError("UploadLocked")<{ readonly id: string }> {}

/**
 * No upload of that owner by that id: it does not exist, expired, or belongs to someone else (which is not revealed).
 *
 * @since 0.1.0
 * @category errors
 */
export class UploadNotFound extends Data.TaggedError("UploadNotFound")<{ readonly id: string }> {}

/**
 * An upload held under its lease.
 *
 * @since 0.1.0
 * @category models
 */
export interface Held {
  /** The record as it stood when the lease was taken, without the lease. */
  readonly upload: Upload
  /**
   * Advances the record (`Uploads.advance`) and drops the lease in one write; `null` when the record changed under
   * the holder (terminated, expired, or taken over after the lease lapsed). At most once per lease.
   */
  readonly commit: (next: Pick<Upload, "offset" | "length">) => Effect.Effect<Upload | null, RecordError>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface UploadLocks {
  /**
   * Runs `use` holding the lease of `owner`'s upload `id`, or fails at once with `UploadLocked` when another request
   * holds it, or `UploadNotFound`. The lease is dropped when `use` ends, however it ends.
   */
  readonly withLease: <A, E, R>(
    id: string,
    owner: string,
    use: (held: Held) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | UploadLocked | UploadNotFound | RecordError, R>
  /** Whether some request holds the upload now. */
  readonly isLocked: (id: string) => Effect.Effect<boolean, RecordError>
}

/**
 * @since 0.1.0
 * @category services
 */
export class Locks extends Context.Service<Locks, UploadLocks>()("@effect-kv/upload-server/Locks") {}

/** How many uploads an instance remembers the last written record of; past it the oldest are forgotten. */
const REMEMBERED = 10_000

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.gen(function*() {
  const uploads = yield* Uploads
  const { lockTtl } = yield* UploadServerConfig
  const ttl = Duration.toMillis(lockTtl)
  // Three renewals per lease: one lost renewal (a slow store) never lets the lease lapse under a live writer.
  const renewEvery = Duration.divideUnsafe(lockTtl, 3)
  /** The record this instance last wrote for an upload, without a lease: the likely value in the store. */
  const written = new Map<string, Upload>()
  const remember = (upload: Upload) => {
    written.delete(upload.id)
    written.set(upload.id, upload)
    if (written.size > REMEMBERED) written.delete(written.keys().next().value!)
  }

  const isLive = (upload: Upload, now: number) => upload.lease !== undefined && upload.lease.until > now

  /** One compare-and-set from `current` to `current` with a lease; the leased record, or `null` if it moved. */
  const take = (current: Upload, holder: string) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => uploads.advance(current, { lease: { holder, until: now + ttl } }))

  const acquire = Effect.fnUntraced(function*(id: string, owner: string, holder: string) {
    const guess = written.get(id)
    written.delete(id)
    if (guess !== undefined && guess.owner === owner) {
      const leased = yield* take(guess, holder)
      if (leased !== null) return leased
    }
    const current = yield* uploads.get(id)
    if (current === null || current.owner !== owner) return yield* new UploadNotFound({ id })
    if (isLive(current, yield* Clock.currentTimeMillis)) return yield* new UploadLocked({ id })
    const leased = yield* take(current, holder)
    // Lost to a request that took it between the read and the write: that one is writing now.
    if (leased === null) return yield* new UploadLocked({ id })
    return leased
  })

  const withLease = <A, E, R>(
    id: string,
    owner: string,
    use: (held: Held) => Effect.Effect<A, E, R>
  ): Effect.Effect<A, E | UploadLocked | UploadNotFound | RecordError, R> =>
    Effect.suspend(() => {
      const holder = randomUUID()
      // The record as stored while the lease is held: each renewal replaces it, the commit or release ends it.
      let leased: Upload
      let ended = false
      const end = (write: Effect.Effect<Upload | null, RecordError>): Effect.Effect<Upload | null, RecordError> =>
        Effect.suspend(() => {
          if (ended) return Effect.succeed(null)
          ended = true
          return Effect.map(write, (upload) => {
            if (upload !== null) remember(upload)
            return upload
          })
        })
      // A renewal is uninterruptible, so stopping the renewals waits for one in flight: the commit then starts from
      // the record as stored.
      const renew = Effect.sleep(renewEvery).pipe(
        Effect.andThen(Effect.uninterruptible(
          Effect.ignore(Effect.flatMap(Clock.currentTimeMillis, (now) =>
            Effect.map(
              uploads.advance(leased, { lease: { holder, until: now + ttl } }),
              (renewed) => {
                if (renewed !== null) leased = renewed
              }
            )))
        )),
        Effect.forever
      )
      return Effect.acquireUseRelease(
        Effect.map(acquire(id, owner, holder), (upload) => {
          leased = upload
          return upload
        }),
        (upload): Effect.Effect<A, E | RecordError, R> =>
          Effect.flatMap(Effect.forkChild(renew), (renewal) => {
            const stop = Fiber.interrupt(renewal)
            const { lease: _, ...record } = upload
            return use({
              upload: record,
              commit: (next) => Effect.andThen(stop, end(Effect.suspend(() => uploads.advance(leased, next))))
            }).pipe(Effect.ensuring(stop))
          }),
        // A failed release (store down) leaves the lease to lapse, which is what its time limit is for.
        () => Effect.ignore(end(Effect.suspend(() => uploads.advance(leased, {}))))
      )
    })

  return Locks.of({
    withLease,
    isLocked: (id) =>
      Effect.zipWith(uploads.get(id), Clock.currentTimeMillis, (upload, now) => upload !== null && isLive(upload, now))
  })
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Locks, never, Uploads | UploadServerConfig> = Layer.effect(Locks, make)
