/**
 * The cleanup fiber: removes the bytes of uploads whose record is gone (expired by its TTL, or terminated when the
 * file could not be removed then).
 *
 * Each round lists the files first and walks the records (`listStream`) second. Records are always written before
 * their file, so a file listed before the walk began belongs to a record that existed before the walk began: if the
 * upload is live, the walk sees it. A file is removed only when the walk did not see its id, a fresh `has` still
 * finds no record, and no request holds its lock. A round that fails (store down) is logged and retried at the next
 * interval; the fiber never stops the server.
 *
 * @since 0.2.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import { UploadServerConfig } from "./Config.ts"
import { Files } from "./Files.ts"
import { Locks } from "./Lock.ts"
import { Uploads } from "./Uploads.ts"

/**
 * One round: the number of files removed.
 *
 * @since 0.2.0
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
    yield* Effect.logInfo("removed the bytes of an expired upload").pipe(Effect.annotateLogs("upload", id))
    removed++
  }
  return removed
})

/**
 * Runs `sweep` every `cleanupInterval` for as long as the server runs.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = Layer.effectDiscard(Effect.gen(function*() {
  const { cleanupInterval } = yield* UploadServerConfig
  const round = sweep.pipe(
    Effect.catchCause((cause) => Effect.logWarning("cleanup round failed; retrying at the next interval", cause))
  )
  yield* Effect.forkScoped(Effect.repeat(round, Schedule.spaced(cleanupInterval)))
}))
