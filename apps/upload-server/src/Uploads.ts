/**
 * The upload records, one per upload under `upload:<id>` in the store, typed with `toSchemaStore`.
 *
 * A record says how far an upload has come; the bytes themselves are on disk (`Files.ts`). The offset only moves
 * forward through `advance`, a compare-and-set against the record read under the upload's lock, and only after the
 * bytes are on disk: a record never claims bytes the disk does not hold, and of two writers at one offset only one
 * can move it. An unfinished upload's record carries a TTL of `UPLOAD_EXPIRES_AFTER`, renewed by every write, so the
 * store itself expires abandoned uploads on every backend; a finished one is kept.
 *
 * @since 0.1.0
 */
import { BaseKvStoreService, type KvSchemaError, type KvStoreError, type SchemaStore, toSchemaStore } from "effect-kv"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { UploadServerConfig } from "./Config.ts"

/**
 * An upload as the store keeps it.
 *
 * @since 0.1.0
 * @category models
 */
export const Upload = Schema.Struct({
  id: Schema.String,
  /** Who created it (`Authorization.ts`); only this owner can see, write, read or terminate it. */
  owner: Schema.String,
  /** Total size in bytes; `null` while the client defers it (`Upload-Defer-Length`). */
  length: Schema.NullOr(Schema.Number),
  /** Bytes received and on disk. */
  offset: Schema.Number,
  /** The `Upload-Metadata` header as the client sent it (validated), or `null`. */
  metadata: Schema.NullOr(Schema.String),
  createdAt: Schema.Number,
  /** When an unfinished upload expires (epoch ms), `null` once finished. */
  expiresAt: Schema.NullOr(Schema.Number),
  /** `"partial"` or `"final"` for concatenation, `null` for a plain upload. */
  concat: Schema.NullOr(Schema.Literals(["partial", "final"])),
  /** The ids of a final upload's parts, in order. */
  parts: Schema.NullOr(Schema.Array(Schema.String)),
  /** A final upload's `Upload-Concat` header exactly as received (HEAD returns it unchanged, as tus 1.0 requires). */
  concatHeader: Schema.NullOr(Schema.String),
  /** The request writing it now (`Lock.ts`): absent when none is, or a lease that lapses at `until` (epoch ms). */
  lease: Schema.optionalKey(Schema.Struct({ holder: Schema.String, until: Schema.Number }))
})

/**
 * @since 0.1.0
 * @category models
 */
export type Upload = typeof Upload.Type

/**
 * @since 0.1.0
 * @category models
 */
export type RecordError = KvStoreError | KvSchemaError

/**
 * Whether every byte has arrived.
 *
 * @since 0.1.0
 * @category models
 */
export const isComplete = (upload: Upload): boolean => upload.length !== null && upload.offset === upload.length

/**
 * The upload records.
 *
 * @since 0.1.0
 * @category models
 */
export interface UploadRecords {
  readonly get: (id: string) => Effect.Effect<Upload | null, RecordError>
  /** Writes a new record; `null` when the id is taken. */
  readonly create: (upload: Omit<Upload, "expiresAt">) => Effect.Effect<Upload | null, RecordError>
  /**
   * Moves `current` to `next` (the offset, a length given late, a lease, a fresh expiry) if the stored record is
   * still `current`; `null` when it is not (terminated, expired or changed by another writer). The lease is the one
   * in `next`: a `next` without one releases it in the same write.
   */
  readonly advance: (
    current: Upload,
    next: Partial<Pick<Upload, "offset" | "length" | "lease">>
  ) => Effect.Effect<Upload | null, RecordError>
  readonly remove: (id: string) => Effect.Effect<void, KvStoreError>
  /** Whether a record exists, without decoding it. */
  readonly exists: (id: string) => Effect.Effect<boolean, KvStoreError>
  /** Every upload id, read page by page. */
  readonly ids: Stream.Stream<string, KvStoreError>
  /**
   * One page of `owner`'s records for the listing, in id order: store pages are read until `limit` of the owner's
   * records are found or the listing ends.
   */
  readonly page: (
    owner: string,
    cursor: string | null,
    limit: number
  ) => Effect.Effect<{ readonly uploads: ReadonlyArray<Upload>; readonly cursor: string | null }, RecordError>
}

/**
 * @since 0.1.0
 * @category services
 */
export class Uploads extends Context.Service<Uploads, UploadRecords>()("@effect-kv/upload-server/Uploads") {}

/**
 * The prefix of the records' keys, `upload:<id>`.
 *
 * @since 0.1.0
 * @category models
 */
export const PREFIX = "upload:"
const key = (id: string) => PREFIX + id

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.gen(function*() {
  const store = yield* BaseKvStoreService
  const { expiresAfter } = yield* UploadServerConfig
  const records: SchemaStore<Upload> = toSchemaStore(store, Upload)

  /** The record with its expiry renewed from `now`; a finished upload is kept until it is terminated. */
  const stamped = (upload: Omit<Upload, "expiresAt">, now: number): Upload => {
    const finished = upload.length !== null && upload.offset === upload.length
    return { ...upload, expiresAt: finished ? null : now + Duration.toMillis(expiresAfter) }
  }
  const withoutLease = ({ lease: _, ...upload }: Upload): Omit<Upload, "expiresAt"> => upload
  const lifetime = (upload: Upload) => upload.expiresAt === null ? undefined : { ttl: expiresAfter }

  return Uploads.of({
    get: (id) => records.get(key(id)),
    create: (upload) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const record = stamped(upload, now)
        return Effect.map(
          records.setIfAbsent(key(record.id), record, lifetime(record)),
          (written) => written ? record : null
        )
      }),
    advance: (current, next) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        // A change of lease alone keeps the expiry: the upload has not moved, and watchers see the same upload.
        const leaseOnly = next.offset === undefined && next.length === undefined
        const record = leaseOnly
          ? { ...withoutLease(current), ...next } as Upload
          : stamped({ ...withoutLease(current), ...next }, now)
        const options = leaseOnly && record.expiresAt !== null
          ? { ttl: Duration.millis(Math.max(1, record.expiresAt - now)) }
          : lifetime(record)
        return Effect.map(
          records.compareAndSet(key(current.id), current, record, options),
          (written) => written ? record : null
        )
      }),
    remove: (id) => records.delete(key(id)),
    exists: (id) => records.has(key(id)),
    ids: records.listStream(PREFIX),
    page: (owner, cursor, limit) =>
      Effect.gen(function*() {
        const found: Array<Upload> = []
        let next = cursor
        do {
          const page = yield* records.listPage(PREFIX, { limit: limit - found.length, cursor: next })
          const uploads = yield* records.getMany(page.keys.map(key))
          // A record may expire between the listing and the read: it is simply not shown.
          for (const upload of uploads) if (upload !== null && upload.owner === owner) found.push(upload)
          next = page.cursor
        } while (next !== null && found.length < limit)
        return { uploads: found, cursor: next }
      })
  })
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Uploads, never, BaseKvStoreService | UploadServerConfig> = Layer.effect(Uploads, make)
