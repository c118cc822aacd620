/**
 * Effect's `Persistence` (`effect/persistence/Persistence`) over any effect-kv store, so that `PersistedCache` and
 * everything else built on `Persistence` runs on memory, Redis (standalone or Cluster), PostgreSQL and SQLite.
 *
 * `layerBackingPersistence` provides Effect's `BackingPersistence`; `layerPersistence` the ready `Persistence` on top
 * of it. What they do beyond Effect's own backings:
 *
 * - The TTL is the backend's own (Redis `PX`, the SQL expiry column and its purge, the memory store's expiry heap), so
 *   an expired entry is reclaimed without anyone reading it (`layerBackingKvs` keeps an expiry timestamp inside the
 *   value, and the entry stays until it is read).
 * - Each `storeId` is a namespace of its own: the id is escaped so that the namespace ends at its first `:`, and no
 *   other store id can reach into it (store `"a"` with key `"b:c"` never meets store `"a:b"` with key `"c"`). `clear`
 *   empties that store only, through effect-kv's `clear` (no `KEYS`, Redis Cluster safe).
 * - `getMany` and `setMany` are one batch (`MGET` / one pipeline / one statement) on backends that batch.
 *
 * @since 0.1.0
 */
import type * as Arr from "effect/Array"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Persistence from "effect/persistence/Persistence"
import { type BaseKvStore, BaseKvStoreService, type KvStoreError, MAX_BATCH_SIZE } from "./BaseKvStore.ts"

/**
 * Options of `makeBackingPersistence` and its layers.
 *
 * @since 0.1.0
 * @category models
 */
export interface BackingPersistenceOptions {
  /** Where every persistence store lives in the effect-kv store; `"effect-persistence:"` by default. */
  readonly prefix?: string | undefined
}

/**
 * The key prefix of one persistence store. `%` and `:` are escaped, so the namespace ends at its first `:` and two
 * different ids never share one (the scheme of Effect's own `layerBackingKvs`).
 */
const storeNamespace = (prefix: string, storeId: string): string =>
  `${prefix}${storeId.replace(/%/g, "%25").replace(/:/g, "%3A")}:`

const persistenceError = (message: string, cause: unknown) => new Persistence.PersistenceError({ message, cause })

/** Milliseconds for effect-kv's `ttl`, rounded up so an entry never expires before its time-to-live. */
const ttlMillis = (ttl: Duration.Duration | undefined): number | undefined =>
  ttl === undefined || !Duration.isFinite(ttl) ? undefined : Math.max(1, Math.ceil(Duration.toMillis(ttl)))

const chunks = <A>(items: ReadonlyArray<A>): Array<ReadonlyArray<A>> => {
  if (items.length <= MAX_BATCH_SIZE) return [items]
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < items.length; i += MAX_BATCH_SIZE) out.push(items.slice(i, i + MAX_BATCH_SIZE))
  return out
}

/**
 * Effect's `BackingPersistence` over `store`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeBackingPersistence = (
  store: BaseKvStore,
  options: BackingPersistenceOptions = {}
): Persistence.BackingPersistence["Service"] => {
  const prefix = options.prefix ?? "effect-persistence:"
  return Persistence.BackingPersistence.of({
    make: (storeId) =>
      Effect.sync(() => {
        const namespace = storeNamespace(prefix, storeId)
        const mapError = <A>(effect: Effect.Effect<A, KvStoreError>, what: string) =>
          Effect.mapError(effect, (error) => persistenceError(`${what} in persistence store ${storeId}`, error))
        const parse = (
          key: string,
          stored: string | null
        ): Effect.Effect<object | undefined, Persistence.PersistenceError> => {
          if (stored === null) return Effect.undefined
          try {
            return Effect.succeed(JSON.parse(stored) as object)
          } catch (cause) {
            return Effect.fail(
              persistenceError(`Failed to parse the value of ${key} in persistence store ${storeId}`, cause)
            )
          }
        }
        const serialize = (key: string, value: object): string | Persistence.PersistenceError => {
          try {
            return JSON.stringify(value)
          } catch (cause) {
            return persistenceError(`Failed to serialize the value of ${key} for persistence store ${storeId}`, cause)
          }
        }
        return {
          get: (key) =>
            Effect.flatMap(
              mapError(store.get(namespace + key), `Failed to get ${key}`),
              (stored) => parse(key, stored)
            ),
          getMany: (keys) =>
            Effect.flatMap(
              Effect.forEach(chunks(keys), (chunk) => store.getMany(chunk.map((key) => namespace + key))).pipe(
                (effect) => mapError(effect, `Failed to get ${keys.length} keys`)
              ),
              (results) => Effect.forEach(results.flat(), (stored, i) => parse(keys[i], stored))
            ) as Effect.Effect<Arr.NonEmptyArray<object | undefined>, Persistence.PersistenceError>,
          set: (key, value, ttl) =>
            Effect.suspend(() => {
              const stored = serialize(key, value)
              if (typeof stored !== "string") return Effect.fail(stored)
              const ms = ttlMillis(ttl)
              return mapError(
                store.set(namespace + key, stored, ms === undefined ? undefined : { ttl: ms }),
                `Failed to set ${key}`
              )
            }),
          setMany: (entries) =>
            Effect.suspend(() => {
              // One batch per distinct time-to-live: usually one, since a store's entries mostly share theirs.
              const byTtl = new Map<number | undefined, Array<readonly [string, string]>>()
              for (const [key, value, ttl] of entries) {
                const stored = serialize(key, value)
                if (typeof stored !== "string") return Effect.fail(stored)
                const ms = ttlMillis(ttl)
                let batch = byTtl.get(ms)
                if (batch === undefined) byTtl.set(ms, batch = [])
                batch.push([namespace + key, stored])
              }
              return mapError(
                Effect.forEach(
                  Array.from(byTtl, ([ms, batch]) => [ms, batch] as const),
                  ([ms, batch]) =>
                    Effect.forEach(
                      chunks(batch),
                      (chunk) => store.setMany(chunk, ms === undefined ? undefined : { ttl: ms }),
                      { discard: true }
                    ),
                  { concurrency: "unbounded", discard: true }
                ),
                `Failed to set ${entries.length} keys`
              )
            }),
          remove: (key) => mapError(store.delete(namespace + key), `Failed to remove ${key}`),
          clear: mapError(Effect.asVoid(store.clear(namespace)), "Failed to clear")
        }
      })
  })
}

/**
 * Effect's `BackingPersistence` over the `BaseKvStoreService` in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerBackingPersistence = (
  options: BackingPersistenceOptions = {}
): Layer.Layer<Persistence.BackingPersistence, never, BaseKvStoreService> =>
  Layer.effect(
    Persistence.BackingPersistence,
    BaseKvStoreService.useSync((store) => makeBackingPersistence(store, options))
  )

/**
 * Effect's `Persistence` over the `BaseKvStoreService` in context: what `PersistedCache` asks for.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerPersistence = (
  options: BackingPersistenceOptions = {}
): Layer.Layer<Persistence.Persistence, never, BaseKvStoreService> =>
  Persistence.layer.pipe(Layer.provide(layerBackingPersistence(options)))
