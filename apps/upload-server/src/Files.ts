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
 * The write path is the server's hottest: a body from Node's HTTP server (`IncomingMessage`) is pumped to the file's
 * descriptor with Node's `fs`, one Effect step for the whole body, rather than as an Effect `Stream` of chunks.
 * Measured on one Redis in 16 KB PATCHes (BENCHMARKS.md, "The upload server's PATCH path"), the `Stream` cost about a
 * fifth of the server's CPU per request. Any other body (another platform's request, one that expects `100 Continue`)
 * takes the `Stream` path.
 *
 * Chunks up to `syncWriteBytes` (64 KiB, every chunk of a socket read) are written from the event loop: handing a
 * write to Node's thread pool and back wakes two threads, which on the same benchmark cost more than writing 16 KB into
 * the page cache (BENCHMARKS.md has the figures). A write on the loop holds up every request of the instance while it
 * runs, so when the writes there turn slow (a disk under write-back pressure, a network file system: their running
 * average passes `SLOW_WRITE_MS`) every write goes to the thread pool for `POOL_FOR_MS`, with a warning in the log.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Layer from "effect/Layer"
import * as PlatformError from "effect/PlatformError"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import type { Hash } from "node:crypto"
import * as NodeFs from "node:fs"
import * as Path from "node:path"
import { Readable } from "node:stream"
import { UploadServerConfig } from "./Config.ts"

/**
 * The body holds more bytes than the upload may take from its offset.
 *
 * @since 0.1.0
 * @category errors
 */
export class BodyTooLarge extends Data.TaggedError("BodyTooLarge")<{ readonly limit: number }> {}

/**
 * The request body could not be read to its end: the client went away or sent a malformed body.
 *
 * @since 0.1.0
 * @category errors
 */
export class BodyUnreadable extends Data.TaggedError("BodyUnreadable")<{ readonly cause: unknown }> {}

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
 * What `UploadFiles.write` writes, and where.
 *
 * @since 0.1.0
 * @category models
 */
export interface WriteOptions<E> {
  readonly id: string
  readonly offset: number
  readonly body: Stream.Stream<Uint8Array, E> | Readable
  readonly limit: number
  readonly hash: Hash | null
  readonly progress: Progress
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
   * writing `limit`), feeding `hash` when given. `progress.written` counts the bytes on disk as they land. A Node
   * `Readable` (the request of Node's HTTP server) is read directly and fails with `BodyUnreadable` when it breaks off.
   */
  readonly write: <E>(
    options: WriteOptions<E>
  ) => Effect.Effect<void, E | BodyUnreadable | BodyTooLarge | PlatformError.PlatformError>
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

/** A failed file call as the `PlatformError` Effect's `FileSystem` gives, so callers see one kind of file error. */
const systemError = (method: string, id: string, error: NodeJS.ErrnoException) =>
  PlatformError.systemError({
    _tag: error.code === "ENOENT"
      ? "NotFound"
      : error.code === "EACCES" || error.code === "EPERM"
      ? "PermissionDenied"
      : "Unknown",
    module: "FileSystem",
    method,
    pathOrDescriptor: id,
    // What an operator needs from the log, such as "ENOSPC: no space left on device, write".
    description: error.message,
    syscall: error.syscall,
    cause: error
  })

/**
 * Writes on the event loop whose running average takes longer than this send writes to the thread pool (see the
 * module's doc). A 16 KB write into the page cache takes tens of microseconds; the average (each write weighing 1/16)
 * passes 1 ms after one write of 16 ms or a run of writes of a millisecond or more, not after the odd few milliseconds a
 * busy machine takes the process off its CPU mid-write.
 *
 * @since 0.1.0
 * @category models
 */
export const SLOW_WRITE_MS = 1

/**
 * For this long after the writes on the loop turned slow, every write goes to the thread pool.
 *
 * @since 0.1.0
 * @category models
 */
export const POOL_FOR_MS = 30_000

/**
 * Where each chunk is written: on the event loop when it is at most `maxBytes` and the writes there have not turned
 * slow in the last `POOL_FOR_MS`, else in the thread pool. `took` reports how long a write on the loop took, and says
 * whether that sent writes to the thread pool.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeWritePolicy = (maxBytes: number, now: () => number) => {
  /** Until when writes go to the thread pool; 0 when they need not (no clock read per write then). */
  let poolUntil = 0
  let average = 0
  return {
    onLoop: (bytes: number): boolean => {
      if (bytes > maxBytes) return false
      if (poolUntil === 0) return true
      if (now() < poolUntil) return false
      poolUntil = 0
      return true
    },
    took: (ms: number): boolean => {
      average += (ms - average) / 16
      if (average <= SLOW_WRITE_MS) return false
      average = 0
      poolUntil = now() + POOL_FOR_MS
      return true
    }
  }
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const { dataDir, syncWriteBytes } = yield* UploadServerConfig
  yield* fs.makeDirectory(dataDir, { recursive: true })
  const path = (id: string) => Path.join(dataDir, id)

  /**
   * Open files of uploads written recently, kept between PATCHes: an upload in small chunks would otherwise pay an
   * open and a close (two thread-pool round trips) per request on top of its one write, which is most of a 16 KB
   * PATCH's latency. They are plain descriptors, written at explicit positions, so the hot path runs no Effect step per
   * chunk (see the module's doc).
   *
   * A handle belongs to one request at a time: `borrow` marks it held until `giveBack`, and a second request on the
   * same upload (a lease lost to a pause, say) opens a file of its own. The idle sweep and `forget` close only a handle
   * nobody holds, and decide so in the same synchronous step that takes it out of the map, so no request can borrow it
   * between the check and the close: after a pause every cached handle looks idle, and closing one under a request
   * would let its next write land on a descriptor number the kernel may already have handed to another upload's file.
   * A handle retired while held is closed when its holder gives it back.
   */
  interface Handle {
    readonly fd: number
    held: boolean
    retired: boolean
    lastUsed: number
  }
  const handles = new Map<string, Handle>()
  const IDLE_MS = 2_000
  const close = (handle: Handle) =>
    Effect.callback<void>((resume) => NodeFs.close(handle.fd, () => resume(Effect.void)))
  /** Takes an unheld handle out of the map and closes it; a held one is only retired, for its holder to close. */
  const retire = (id: string, handle: Handle) => {
    if (handles.get(id) === handle) handles.delete(id)
    handle.retired = true
    return handle.held ? Effect.void : close(handle)
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

  // Uninterruptible: a descriptor opened for a request that is gone by then would never be closed.
  const open = (id: string) =>
    Effect.uninterruptible(
      Effect.callback<number, PlatformError.PlatformError>((resume) =>
        NodeFs.open(path(id), "r+", (error, fd) =>
          resume(error ? Effect.fail(systemError("open", id, error)) : Effect.succeed(fd)))
      )
    )

  const borrow = (id: string) =>
    Effect.suspend(() => {
      const cached = handles.get(id)
      if (cached !== undefined && !cached.held) {
        cached.held = true
        return Effect.succeed(cached)
      }
      return Effect.map(open(id), (fd): Handle => {
        // Two requests racing to open the same upload: the second one's handle is used once, then closed.
        const handle: Handle = { fd, held: true, retired: handles.has(id), lastUsed: 0 }
        if (!handle.retired) handles.set(id, handle)
        return handle
      })
    })

  const giveBack = (handle: Handle) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      handle.held = false
      handle.lastUsed = now
      return handle.retired ? close(handle) : Effect.void
    })

  const policy = makeWritePolicy(syncWriteBytes, () => performance.now())
  const services = yield* Effect.context<never>()
  const warnSlow = (ms: number) =>
    Effect.runForkWith(services)(
      Effect.logWarning(
        `writes held up the event loop (the last took ${Math.round(ms)} ms): writing in the thread pool for the next ` +
          `${POOL_FOR_MS / 1000} seconds (a syncWriteBytes of 0, UPLOAD_SYNC_WRITE_BYTES=0, always does)`
      )
    )

  /** Writes all of `part` at `position`: a short write (a signal, a full disk) goes on from where it stopped. */
  const writeFully = (
    fd: number,
    id: string,
    part: Uint8Array,
    position: number,
    done: (error: PlatformError.PlatformError | null) => void
  ) => {
    if (policy.onLoop(part.byteLength)) {
      const start = performance.now()
      let error: PlatformError.PlatformError | null = null
      try {
        for (let at = 0; at < part.byteLength;) {
          at += NodeFs.writeSync(fd, part, at, part.byteLength - at, position + at)
        }
      } catch (cause) {
        error = systemError("write", id, cause as NodeJS.ErrnoException)
      }
      const took = performance.now() - start
      if (policy.took(took)) warnSlow(took)
      // Outside the try: what `done` runs next is not this write's failure.
      return done(error)
    }
    const from = (at: number) =>
      NodeFs.write(fd, part, at, part.byteLength - at, position + at, (error, written) => {
        if (error) return done(systemError("write", id, error))
        if (at + written < part.byteLength) return from(at + written)
        done(null)
      })
    from(0)
  }

  /** Where one request's body goes, and how far it has come. */
  interface Target {
    readonly id: string
    readonly fd: number
    readonly offset: number
    readonly limit: number
    readonly hash: Hash | null
    readonly progress: Progress
  }
  /**
   * The part of a chunk that fits the limit: only that part is written, and a chunk cut short fails the write with
   * `BodyTooLarge` once it is on disk. A chunk counts once all of it has landed: it is on disk and counted, or neither.
   */
  const fitting = (target: Target, chunk: Uint8Array) => {
    const room = target.limit - target.progress.written
    return chunk.byteLength > room ? chunk.subarray(0, room) : chunk
  }
  const counted = (target: Target, part: Uint8Array) => {
    target.hash?.update(part)
    target.progress.written += part.byteLength
  }

  /**
   * A Node body pumped to the file: a chunk at a time, the body paused while its chunk is written. However the pump
   * ends (the body's end, a read error, interruption when the client goes away or the server stops), it ends only once
   * the chunk being written has landed, and that chunk counts: a write still in flight after the handle is given back
   * could land on a descriptor the idle sweep has closed and the kernel handed to another file.
   */
  const pump = (target: Target, body: Readable) =>
    Effect.callback<void, BodyUnreadable | BodyTooLarge | PlatformError.PlatformError>((resumeFiber) => {
      let resume = resumeFiber
      let writing = false
      let ended = false
      /** How the pump ends, once set: resumed with at once, or when the chunk being written lands. */
      let outcome: Effect.Effect<void, BodyUnreadable | BodyTooLarge | PlatformError.PlatformError> | null = null
      const detach = () => body.off("data", onData).off("end", onEnd).off("error", onBroken).off("close", onClose)
      const finish = (ending: NonNullable<typeof outcome>) => {
        if (outcome !== null) return
        outcome = ending
        detach()
        if (!writing) resume(ending)
      }
      const onData = (chunk: Uint8Array) => {
        if (chunk.byteLength === 0) return
        const part = fitting(target, chunk)
        if (part.byteLength === 0) return finish(Effect.fail(new BodyTooLarge({ limit: target.limit })))
        body.pause()
        writing = true
        writeFully(target.fd, target.id, part, target.offset + target.progress.written, (error) => {
          writing = false
          if (error === null) counted(target, part)
          if (outcome !== null) return resume(outcome)
          if (error !== null) return finish(Effect.fail(error))
          if (part !== chunk) return finish(Effect.fail(new BodyTooLarge({ limit: target.limit })))
          if (ended) return finish(Effect.void)
          body.resume()
        })
      }
      const onEnd = () => {
        ended = true
        if (!writing) finish(Effect.void)
      }
      const onBroken = (cause: unknown) => finish(Effect.fail(new BodyUnreadable({ cause })))
      const onClose = () => {
        if (!body.readableEnded) onBroken(new Error("the connection closed before the body ended"))
      }
      if (body.readableEnded) return resume(Effect.void)
      body.on("data", onData).on("end", onEnd).on("error", onBroken).on("close", onClose)
      // Interrupted: what the fiber resumes with no longer matters, only that it waits for the write in flight.
      return Effect.callback<void>((landed) => {
        resume = () => landed(Effect.void)
        finish(Effect.void)
      })
    })

  /** Any other body, as an Effect stream: each chunk written uninterruptibly, so it is counted and on disk, or neither. */
  const drain = <E>(target: Target, body: Stream.Stream<Uint8Array, E>) =>
    Stream.runForEach(body, (chunk) => {
      const part = fitting(target, chunk)
      const write = part.byteLength === 0 ? Effect.void : Effect.uninterruptible(
        Effect.callback<void, PlatformError.PlatformError>((resume) =>
          writeFully(target.fd, target.id, part, target.offset + target.progress.written, (error) => {
            if (error !== null) return resume(Effect.fail(error))
            counted(target, part)
            resume(Effect.void)
          })
        )
      )
      return part === chunk ? write : Effect.andThen(write, Effect.fail(new BodyTooLarge({ limit: target.limit })))
    })

  /** Closes a cached handle before the file is removed or rewritten by another path. */
  const forget = (id: string) =>
    Effect.suspend(() => {
      const handle = handles.get(id)
      return handle === undefined ? Effect.void : retire(id, handle)
    })

  const write: UploadFiles["write"] = <E>({ body, hash, id, limit, offset, progress }: WriteOptions<E>) =>
    Effect.acquireUseRelease(
      borrow(id),
      ({ fd }): Effect.Effect<void, E | BodyUnreadable | BodyTooLarge | PlatformError.PlatformError> => {
        const target: Target = { id, fd, offset, limit, hash, progress }
        return body instanceof Readable ? pump(target, body) : drain(target, body)
      },
      giveBack
    )

  return Files.of({
    dataDir,
    path,
    create: (id) => fs.writeFile(path(id), new Uint8Array(0), { flag: "wx" }),
    write,
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
