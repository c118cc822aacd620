/**
 * What the mounting program runs around an upload's life: `onCreate` before a record is written (it may refuse the
 * upload or set its metadata, e.g. a server-side name or the owner's tenant) and `onFinish` once its last byte is on
 * disk (e.g. to start post-processing). Both are Effects: a program forks long work itself. A failing `onFinish` is
 * logged and does not fail the request, whose bytes are already committed.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { Upload } from "./Uploads.ts"

/**
 * `onCreate` refuses the upload; `status`, `reason` and `headers` (e.g. `Retry-After` on a 429) go to the client.
 *
 * @since 0.1.0
 * @category errors
 */
export class UploadRejected extends Data.TaggedError("UploadRejected")<{
  readonly status: number
  readonly reason: string
  readonly headers?: Record<string, string>
}> {}

/**
 * An upload about to be created.
 *
 * @since 0.1.0
 * @category models
 */
export interface NewUpload {
  readonly id: string
  readonly owner: string
  /** `null` while the client defers the length. */
  readonly length: number | null
  /** The decoded `Upload-Metadata` pairs. */
  readonly metadata: ReadonlyMap<string, string>
  readonly concat: "partial" | "final" | null
}

/**
 * @since 0.1.0
 * @category models
 */
export interface UploadHooks {
  /** Before the record is written: fail to refuse, or return metadata to store instead of the client's. */
  readonly onCreate: (
    upload: NewUpload
  ) => Effect.Effect<{ readonly metadata?: ReadonlyMap<string, string> } | void, UploadRejected>
  /** After the last byte is committed. */
  readonly onFinish: (upload: Upload) => Effect.Effect<void, unknown>
}

/**
 * @since 0.1.0
 * @category services
 */
export class Hooks extends Context.Service<Hooks, UploadHooks>()("@effect-kv/upload-server/Hooks") {}

/**
 * Hooks that accept every upload and do nothing; give only the ones you need.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (hooks: Partial<UploadHooks> = {}): UploadHooks => ({
  onCreate: hooks.onCreate ?? (() => Effect.void),
  onFinish: hooks.onFinish ?? (() => Effect.void)
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (hooks: Partial<UploadHooks> = {}): Layer.Layer<Hooks> => Layer.succeed(Hooks, make(hooks))
