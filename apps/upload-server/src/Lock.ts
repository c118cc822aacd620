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
 * Leases are short (`lockTtl`, 3 s by default) and renewed while the request runs, once a third of the lease has
 * passed, so a long PATCH keeps its upload and an instance that dies mid-PATCH blocks it for at most one lease. One
 * fiber per instance renews every lease it holds, looking every sixth of a lease: a fiber and a timer per PATCH (forked,
 * then interrupted) showed in the server's CPU per 16 KB PATCH (BENCHMARKS.md, "The upload server's PATCH path"), and
 * almost no PATCH lives long enough to need a renewal. A lapsed lease is
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
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
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

/** A lease this instance holds. */
interface Lease {
  readonly holder: string
  /** The record as stored while the lease is held: each renewal replaces it, the commit or release ends it. */
  leased: Upload
  /** Set once the commit or release has begun: no renewal starts after it. */
  ending: boolean
  /** A renewal in flight, which the commit or release waits for so that it starts from the record as stored. */
  renewal: Deferred.Deferred<void> | null
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.gen(function*() {
  const uploads = yield* Uploads
  const { lockTtl } = yield* UploadServerConfig
  const ttl = Duration.toMillis(lockTtl)
  // Renewed with two thirds of the lease left: one lost renewal (a slow store) never lets it lapse under a live writer.
  const renewWhenLeft = (ttl * 2) / 3
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

  const held = new Set<Lease>()

  /**
   * Renews one lease, unless its commit or release has begun: that check and the mark of a renewal in flight are one
   * synchronous step, as is the commit's mark, so a renewal and a commit never write the record at once.
   */
  const renew = (lease: Lease, now: number) =>
    Effect.uninterruptible(Effect.suspend(() => {
      if (lease.ending) return Effect.void
      const renewal = Deferred.makeUnsafe<void>()
      lease.renewal = renewal
      return uploads.advance(lease.leased, { lease: { holder: lease.holder, until: now + ttl } }).pipe(
        Effect.map((renewed) => {
          if (renewed !== null) lease.leased = renewed
        }),
        Effect.ignore,
        Effect.ensuring(Effect.suspend(() => {
          lease.renewal = null
          return Deferred.succeed(renewal, undefined)
        }))
      )
    }))

  const renewDue = Effect.flatMap(Clock.currentTimeMillis, (now) => {
    const due = [...held].filter((lease) => lease.renewal === null && lease.leased.lease!.until - now <= renewWhenLeft)
    return Effect.forEach(due, (lease) => renew(lease, now), { concurrency: "unbounded", discard: true })
  })
  yield* Effect.forkScoped(Effect.repeat(renewDue, Schedule.spaced(Duration.millis(ttl / 6))))

  /** Ends the lease with `write`, once: no renewal starts after this, and one in flight is waited for. */
  const end = (
    lease: Lease,
    write: (leased: Upload) => Effect.Effect<Upload | null, RecordError>
  ): Effect.Effect<Upload | null, RecordError> =>
    Effect.suspend(() => {
      if (lease.ending) return Effect.succeed(null)
      lease.ending = true
      held.delete(lease)
      const written = Effect.map(Effect.suspend(() => write(lease.leased)), (upload) => {
        if (upload !== null) remember(upload)
        return upload
      })
      return lease.renewal === null ? written : Effect.andThen(Deferred.await(lease.renewal), written)
    })

  const withLease = <A, E, R>(
    id: string,
    owner: string,
    use: (held: Held) => Effect.Effect<A, E, R>
  ): Effect.Effect<A, E | UploadLocked | UploadNotFound | RecordError, R> =>
    Effect.suspend(() => {
      const holder = randomUUID()
      return Effect.acquireUseRelease(
        Effect.map(acquire(id, owner, holder), (leased): Lease => {
          const lease: Lease = { holder, leased, ending: false, renewal: null }
          held.add(lease)
          return lease
        }),
        (lease): Effect.Effect<A, E | RecordError, R> => {
          const { lease: _, ...record } = lease.leased
          return use({ upload: record, commit: (next) => end(lease, (leased) => uploads.advance(leased, next)) })
        },
        // A failed release (store down) leaves the lease to lapse, which is what its time limit is for.
        (lease) => Effect.ignore(end(lease, (leased) => uploads.advance(leased, {})))
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
