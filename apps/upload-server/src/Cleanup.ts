/**
 * The cleanup fiber: removes what no client can use any more, and says what it removed.
 *
 * - **Files without a record** (expired by the store's TTL, or terminated when the file could not be removed then).
 *   Each round lists the files first and walks the records (`listStream`) second. Records are always written before
 *   their file, so a file listed before the walk began belongs to a record that existed before the walk began: if
 *   the upload is live, the walk sees it. A file is removed only when the walk did not see its id, a fresh `has`
 *   still finds no record, and no request holds its lock.
 * - **Records without a file** (a creation cut between its record and its file by a crash, or a file removed by
 *   hand): every PATCH of such an upload would fail. One is removed once it is older than `ORPHAN_GRACE`, far longer
 *   than a creation takes, and its file is still missing.
 * - **Abandoned uploads**: a client that lost an upload's URL starts the same file again as a new upload, and the old
 *   one would hold its bytes until it expires (a day by default). An unfinished upload is removed once a newer upload
 *   of the same file (same owner, length and metadata) exists and it has received no bytes for `abandonedAfter`.
 *   Without metadata two uploads cannot be told to be the same file: such uploads are left to expire.
 *
 * The records are read at most every `RECORDS_EVERY` (a read per record), the files every `cleanupInterval`. A round
 * that fails (store down) is logged and retried at the next interval; the fiber never stops the server.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import { UploadServerConfig } from "./Config.ts"
import { Files } from "./Files.ts"
import { Locks } from "./Lock.ts"
import { isComplete, type Upload, Uploads } from "./Uploads.ts"

/** How old a record without a file must be before it is taken for an orphan. */
const ORPHAN_GRACE = Duration.minutes(1)

/** The longest time between two reads of the records. */
const RECORDS_EVERY = Duration.minutes(1)

/**
 * One round over the files: the number of files removed.
 *
 * @since 0.1.0
 * @category constructors
 */
export const sweep = Effect.gen(function*() {
  const files = yield* Files
  const uploads = yield* Uploads
  const locks = yield* Locks
  const onDisk = yield* files.list
  if (onDisk.length === 0) return 0
  const live = new Set<string>()
  yield* Stream.runForEach(uploads.ids, (id) => Effect.sync(() => live.add(id)))
  let removed = 0
  for (const id of onDisk) {
    if (live.has(id)) continue
    if ((yield* uploads.exists(id)) || (yield* locks.isLocked(id))) continue
    yield* files.remove(id)
    yield* Effect.logInfo("cleanup removed the bytes of an expired upload").pipe(Effect.annotateLogs("upload", id))
    removed++
  }
  return removed
})

/** The same file, as far as the server can tell. */
const sameFile = (upload: Upload) => JSON.stringify([upload.owner, upload.length, upload.metadata])

/**
 * One round over the records: removes records without a file and abandoned uploads, and gives how many of each.
 *
 * @since 0.1.0
 * @category constructors
 */
export const sweepRecords = Effect.gen(function*() {
  const files = yield* Files
  const uploads = yield* Uploads
  const locks = yield* Locks
  const { abandonedAfter, expiresAfter } = yield* UploadServerConfig
  const ids = yield* Stream.runCollect(uploads.ids)
  const records = (yield* Effect.forEach(ids, uploads.get, { concurrency: 16 })).filter((upload) => upload !== null)
  const now = yield* Clock.currentTimeMillis

  /** Removes the upload as a termination does: under its lease, the record first. */
  const remove = (upload: Upload, why: string) =>
    locks.withLease(
      upload.id,
      upload.owner,
      () => Effect.andThen(uploads.remove(upload.id), Effect.ignore(files.remove(upload.id)))
    ).pipe(
      Effect.andThen(
        Effect.logInfo(`cleanup removed ${why}`).pipe(
          Effect.annotateLogs({ upload: upload.id, offset: upload.offset, length: upload.length ?? "deferred" })
        )
      ),
      Effect.as(1),
      // Taken by a request meanwhile: it is in use after all. Or removed meanwhile: nothing left to do.
      Effect.catchTag(["UploadLocked", "UploadNotFound"], () => Effect.succeed(0))
    )

  let withoutFile = 0
  for (const upload of records) {
    if (now - upload.createdAt < Duration.toMillis(ORPHAN_GRACE) || (yield* files.exists(upload.id))) continue
    withoutFile += yield* remove(upload, "the record of an upload without its file")
  }

  // The last byte of an unfinished upload arrived when its expiry was last pushed back.
  const lastWrite = (upload: Upload) => upload.expiresAt! - Duration.toMillis(expiresAfter)
  const newest = new Map<string, Upload>()
  for (const upload of records) {
    if (isComplete(upload) || upload.metadata === null) continue
    const current = newest.get(sameFile(upload))
    if (current === undefined || upload.createdAt > current.createdAt) newest.set(sameFile(upload), upload)
  }
  let abandoned = 0
  for (const upload of records) {
    if (isComplete(upload) || upload.metadata === null || upload.expiresAt === null) continue
    if (newest.get(sameFile(upload)) === upload || now - lastWrite(upload) < Duration.toMillis(abandonedAfter)) continue
    abandoned += yield* remove(upload, "an abandoned upload (the same file was started again as a newer upload)")
  }
  return { withoutFile, abandoned }
})

/**
 * Runs `sweep` every `cleanupInterval`, and `sweepRecords` every `RECORDS_EVERY` (or a quarter of `abandonedAfter`,
 * when that is shorter), for as long as the server runs.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = Layer.effectDiscard(Effect.gen(function*() {
  const { abandonedAfter, cleanupInterval } = yield* UploadServerConfig
  const recordsEvery = Duration.max(
    cleanupInterval,
    Duration.min(RECORDS_EVERY, Duration.divideUnsafe(abandonedAfter, 4))
  )
  const logged = <A, E, R>(round: Effect.Effect<A, E, R>) =>
    round.pipe(
      Effect.catchCause((cause) => Effect.logWarning("cleanup round failed; retrying at the next interval", cause))
    )
  yield* Effect.forkScoped(Effect.repeat(logged(sweep), Schedule.spaced(cleanupInterval)))
  yield* Effect.forkScoped(Effect.repeat(logged(sweepRecords), Schedule.spaced(recordsEvery)))
}))
