/**
 * The per-owner byte quota (`UPLOAD_BYTES_PER_OWNER`): how many bytes of uploads, finished or not, one owner may
 * hold, counted in the store so that every instance on it shares the count.
 *
 * Each owner has one ledger, `quota:<sha-256 of the owner>`, mapping each of their uploads to the bytes it holds: its length once
 * known, what it has received while its length is deferred. Reserving is one atomic `modify` of the ledger, so two
 * instances creating at once cannot both take the last bytes. A terminated upload leaves the ledger at once; an
 * expired one leaves no trace in the ledger's writers, so before refusing, the ledger drops the uploads whose records
 * are gone and whose bytes were reserved longer than an expiry ago (a younger entry may be a creation whose record is
 * not written yet), and tries once more: nobody is refused for bytes they no longer hold, and the common case reads
 * no record.
 *
 * @since 0.1.0
 */
import { BaseKvStoreService, type KvSchemaError, type KvStoreError, toSchemaStore } from "effect-kv"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import { createHash } from "node:crypto"
import { UploadServerConfig } from "./Config.ts"
import { Uploads } from "./Uploads.ts"

/**
 * @since 0.1.0
 * @category models
 */
export interface OwnerQuotas {
  /** The quota in bytes, or `null` when there is none (then every call below succeeds without a store call). */
  readonly limit: number | null
  /** Lets upload `id` of `owner` hold `bytes`; `false`, and nothing changed, when the owner has not that much room. */
  readonly reserve: (owner: string, id: string, bytes: number) => Effect.Effect<boolean, KvStoreError | KvSchemaError>
  /**
   * Lets upload `id` of `owner` hold up to `bytes`: the bytes granted, `bytes` or fewer when the owner's other
   * uploads leave less room (never less than the upload already held).
   */
  readonly reserveUpTo: (
    owner: string,
    id: string,
    bytes: number
  ) => Effect.Effect<number, KvStoreError | KvSchemaError>
  /** Sets what upload `id` holds to `bytes` (after a write that took less than it reserved). */
  readonly settle: (owner: string, id: string, bytes: number) => Effect.Effect<void, KvStoreError | KvSchemaError>
  /** Forgets upload `id` (terminated). */
  readonly release: (owner: string, id: string) => Effect.Effect<void, KvStoreError | KvSchemaError>
  /** The bytes `owner`'s uploads hold. */
  readonly used: (owner: string) => Effect.Effect<number, KvStoreError | KvSchemaError>
}

/**
 * @since 0.1.0
 * @category services
 */
export class Quotas extends Context.Service<Quotas, OwnerQuotas>()("@effect-kv/upload-server/Quotas") {}

/** Each upload's bytes and when they were last reserved (epoch ms). */
const Ledger = Schema.Record(Schema.String, Schema.Struct({ bytes: Schema.Number, at: Schema.Number }))
type Ledger = typeof Ledger.Type

/** Owners are whatever the authorization says (a JWT `sub` can be any string): the key holds a digest instead. */
const key = (owner: string) => `quota:${createHash("sha256").update(owner).digest("hex")}`

const sum = (ledger: Ledger | null, except?: string) => {
  let total = 0
  if (ledger !== null) { for (const id in ledger) if (id !== except) total += ledger[id].bytes }
  return total
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.gen(function*() {
  const { bytesPerOwner: limit, expiresAfter } = yield* UploadServerConfig
  const store = yield* BaseKvStoreService
  const uploads = yield* Uploads
  const ledgers = toSchemaStore(store, Ledger)

  /** One atomic update of the ledger; `f` gives the upload's new entry (or `null` to drop it). */
  const update = (owner: string, f: (ledger: Ledger | null) => Ledger | null) => ledgers.modify(key(owner), f)

  const grant = (ledger: Ledger | null, id: string, bytes: number) =>
    Math.max(ledger?.[id]?.bytes ?? 0, Math.min(bytes, limit! - sum(ledger, id)))

  const reserve = (owner: string, id: string, bytes: number, partial: boolean) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      let granted = 0
      const take = (ledger: Ledger | null): Ledger | null => {
        granted = grant(ledger, id, bytes)
        if (granted < bytes && !partial) return ledger
        return { ...ledger, [id]: { bytes: granted, at: now } }
      }
      yield* update(owner, take)
      if (granted >= bytes) return granted
      // Short of room: the ledger may still count uploads that expired. Drop those whose records are gone, then try
      // once more.
      const ledger = yield* ledgers.get(key(owner))
      // Only entries older than an expiry: a younger one may be a creation whose record is not written yet.
      const stale = now - Duration.toMillis(expiresAfter)
      const others = Object.keys(ledger ?? {}).filter((other) => other !== id && ledger![other].at < stale)
      const present = yield* Effect.forEach(others, (other) => uploads.exists(other), { concurrency: 8 })
      const gone = new Set(others.filter((_, i) => !present[i]))
      if (gone.size === 0) return granted
      yield* update(owner, (ledger) => {
        const kept: Record<string, Ledger[string]> = {}
        for (const other in ledger) if (!gone.has(other)) kept[other] = ledger[other]
        return take(kept)
      })
      return granted
    })

  return Quotas.of({
    limit,
    reserve: (owner, id, bytes) =>
      limit === null
        ? Effect.succeed(true)
        : Effect.map(reserve(owner, id, bytes, false), (granted) => granted >= bytes),
    reserveUpTo: (owner, id, bytes) => limit === null ? Effect.succeed(bytes) : reserve(owner, id, bytes, true),
    settle: (owner, id, bytes) =>
      limit === null
        ? Effect.void
        : Effect.flatMap(
          Clock.currentTimeMillis,
          (now) => Effect.asVoid(update(owner, (ledger) => ({ ...ledger, [id]: { bytes, at: now } })))
        ),
    release: (owner, id) =>
      limit === null ? Effect.void : Effect.asVoid(update(owner, (ledger) => {
        if (ledger === null || !(id in ledger)) return ledger
        const { [id]: _, ...rest } = ledger
        return Object.keys(rest).length === 0 ? null : rest
      })),
    used: (owner) => limit === null ? Effect.succeed(0) : Effect.map(ledgers.get(key(owner)), (ledger) => sum(ledger))
  })
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Quotas, never, BaseKvStoreService | UploadServerConfig | Uploads> = Layer.effect(
  Quotas,
  make
)
