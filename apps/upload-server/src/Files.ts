/**
 * The bytes of the uploads: one file per upload under `DATA_DIR`, named by its id, written with Effect's
 * `FileSystem`.
 *
 * A request body is streamed to its file chunk by chunk, at the offset the record names, so memory use does not grow
 * with the size of a PATCH, and every chunk that reached the disk is counted even when the client goes away halfway:
 * the caller commits exactly that many bytes to the record. Bytes past the committed offset (left by a write whose
 * commit failed) are overwritten by the next write from the committed offset; the caller cuts the file to the upload's
 * length when it completes (`truncate`), so a finished file holds exactly the bytes the record vouches for. Not
 * truncating on every PATCH saves a file-system round trip per request, which is most of a small PATCH's latency.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FileSystem from "effect/FileSystem"
import * as Layer from "effect/Layer"
import type * as PlatformError from "effect/PlatformError"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { Hash } from "node:crypto"
import * as Path from "node:path"
import { UploadServerConfig } from "./Config.ts"

/**
 * The body holds more bytes than the upload may take from its offset.
 *
 * @since 0.1.0
 * @category errors
 */
export class BodyTooLarge extends Data.TaggedError("BodyTooLarge")<{ readonly limit: number }> {}

/**
 * How far a write has come; read by the caller after the write ends, however it ends.
 *
 * @since 0.1.0
 * @category models
 */
export interface Progress {
  written: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface UploadFiles {
  readonly dataDir: string
  readonly path: (id: string) => string
  /** Creates the empty file of a new upload. */
  readonly create: (id: string) => Effect.Effect<void, PlatformError.PlatformError>
  /**
   * Writes `body` into the upload's file from `offset`, at most `limit` bytes (more fails with `BodyTooLarge` after
   * writing `limit`), feeding `hash` when given. `progress.written` counts the bytes on disk as they land.
   */
  readonly write: <E>(options: {
    readonly id: string
    readonly offset: number
    readonly body: Stream.Stream<Uint8Array, E>
    readonly limit: number
    readonly hash: Hash | null
    readonly progress: Progress
  }) => Effect.Effect<void, E | BodyTooLarge | PlatformError.PlatformError>
  /** Cuts the file back to `length` bytes: undoes a write that must not count. */
  readonly truncate: (id: string, length: number) => Effect.Effect<void, PlatformError.PlatformError>
  /** Writes the parts' files one after another into the upload's file. */
  readonly concatenate: (id: string, parts: ReadonlyArray<string>) => Effect.Effect<void, PlatformError.PlatformError>
  /** Removes the upload's file; succeeds when it is already gone. */
  readonly remove: (id: string) => Effect.Effect<void, PlatformError.PlatformError>
  /** The ids of the files on disk. */
  readonly list: Effect.Effect<ReadonlyArray<string>, PlatformError.PlatformError>
  /** Whether the upload's file exists. */
  readonly exists: (id: string) => Effect.Effect<boolean, PlatformError.PlatformError>
}

/**
 * @since 0.1.0
 * @category services
 */
export class Files extends Context.Service<Files, UploadFiles>()("@effect-kv/upload-server/Files") {}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const { dataDir } = yield* UploadServerConfig
  yield* fs.makeDirectory(dataDir, { recursive: true })
  const path = (id: string) => Path.join(dataDir, id)

  /**
   * Open files of uploads written recently, kept between PATCHes: an upload in small chunks would otherwise pay an
   * open and a close (two thread-pool round trips) per request on top of its one write, which is most of a 16 KB
   * PATCH's latency.
   *
   * A handle belongs to one request at a time: `borrow` marks it held for the request's scope, and a second request
   * on the same upload (a lease lost to a pause, say) opens a file of its own, since a `File` keeps one cursor. The
   * idle sweep and `forget` close only a handle nobody holds, and decide so in the same synchronous step that takes it
   * out of the map, so no request can borrow it between the check and the close: after a pause every cached handle
   * looks idle, and closing one under a request would let its next write land on a descriptor number the kernel may
   * already have handed to another upload's file. A handle retired while held is closed when its holder lets go.
   */
  interface Handle {
    readonly file: FileSystem.File
    readonly scope: Scope.Closeable
    held: boolean
    retired: boolean
    lastUsed: number
  }
  const handles = new Map<string, Handle>()
  const IDLE_MS = 2_000
  /** Takes an unheld handle out of the map and closes it; a held one is only retired, for its holder to close. */
  const retire = (id: string, handle: Handle) => {
    if (handles.get(id) === handle) handles.delete(id)
    handle.retired = true
    return handle.held ? Effect.void : Scope.close(handle.scope, Exit.void)
  }
  const closeIdle = Effect.flatMap(Clock.currentTimeMillis, (now) => {
    const idle = [...handles].filter(([, handle]) => !handle.held && now - handle.lastUsed > IDLE_MS)
    // Retired now, all of them, before the first close yields: see above.
    return Effect.all(idle.map(([id, handle]) => retire(id, handle)), { discard: true })
  })
  yield* Effect.forkScoped(Effect.repeat(closeIdle, Schedule.spaced(IDLE_MS / 2)))
  yield* Effect.addFinalizer(() =>
    Effect.suspend(() => Effect.all([...handles].map(([id, handle]) => retire(id, handle)), { discard: true }))
  )

  const open = (id: string, cache: boolean) =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const file = yield* Scope.provide(fs.open(path(id), { flag: "r+" }), scope).pipe(
        Effect.onError(() => Scope.close(scope, Exit.void))
      )
      // Two requests racing to open the same upload: the second one's handle is used once, then closed.
      const cached = cache && !handles.has(id)
      const handle: Handle = { file, scope, held: true, retired: !cached, lastUsed: 0 }
      if (cached) handles.set(id, handle)
      return handle
    })

  const borrow = (id: string) =>
    Effect.acquireRelease(
      Effect.suspend(() => {
        const cached = handles.get(id)
        if (cached === undefined) return open(id, true)
        if (cached.held) return open(id, false)
        cached.held = true
        return Effect.succeed(cached)
      }),
      (handle) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          handle.held = false
          handle.lastUsed = now
          return handle.retired ? Scope.close(handle.scope, Exit.void) : Effect.void
        })
    )

  /** Closes a cached handle before the file is removed or rewritten by another path. */
  const forget = (id: string) =>
    Effect.suspend(() => {
      const handle = handles.get(id)
      return handle === undefined ? Effect.void : retire(id, handle)
    })

  return Files.of({
    dataDir,
    path,
    create: (id) => fs.writeFile(path(id), new Uint8Array(0), { flag: "wx" }),
    write: ({ body, hash, id, limit, offset, progress }) =>
      Effect.scoped(Effect.gen(function*() {
        const { file } = yield* borrow(id)
        yield* file.seek(BigInt(offset), "start")
        yield* Stream.runForEach(body, (chunk) => {
          const room = limit - progress.written
          const part = chunk.byteLength > room ? chunk.subarray(0, room) : chunk
          // Uninterruptible per chunk: a chunk is either counted and on disk, or neither, when the client goes away.
          const write = part.byteLength === 0 ? Effect.void : Effect.uninterruptible(
            Effect.map(file.writeAll(part), () => {
              hash?.update(part)
              progress.written += part.byteLength
            })
          )
          return part === chunk ? write : Effect.andThen(write, Effect.fail(new BodyTooLarge({ limit })))
        })
      })),
    truncate: (id, length) => fs.truncate(path(id), length),
    concatenate: (id, parts) =>
      Effect.forEach(
        parts,
        (part) => Stream.run(fs.stream(path(part)), fs.sink(path(id), { flag: "a" })),
        { discard: true }
      ),
    remove: (id) => Effect.andThen(forget(id), fs.remove(path(id), { force: true })),
    list: fs.readDirectory(dataDir),
    exists: (id) => fs.exists(path(id))
  })
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<
  Files,
  PlatformError.PlatformError,
  FileSystem.FileSystem | UploadServerConfig
> = Layer.effect(Files, make)
