/**
 * The operations `make` derives for a backend that does not supply them, each built on the required primitives once
 * for every backend: `has` on `get`, batches on single-key operations, `count` and `listAfter` on `list`, `clear` on
 * `listAfter` and `deleteMany`, `modify` on `compareAndSet` (see `modify.ts`), and the pages and stream of a listing on
 * `listAfter`. A backend supplies its own when it can do better (one `MGET` instead of many `GET`s).
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import {
  type Expiry,
  KvBackendError,
  type KvStoreError,
  type ListPage,
  type MakeOptions,
  MAX_BATCH_SIZE,
  type Primitives
} from "../BaseKvStore.ts"
import { encodeCursor } from "./cursor.ts"
import { deriveModify } from "./modify.ts"

/** Concurrency of the derived batch operations: enough to fill a pipeline, few enough not to flood a server. */
const BATCH_CONCURRENCY = 16

/** Keys per page of `listStream`: large enough to amortise a backend round trip, small enough to bound memory. */
export const STREAM_PAGE = 1000

/** Every primitive of `options`, the missing ones derived from the required ones. */
export const derivePrimitives = (options: MakeOptions): Primitives => {
  const { compareAndSet, get } = options
  // Read even when the backend has its own modify, so a bad timeout fails `make` on every backend alike.
  const modifyTimeout = Duration.fromInputUnsafe(options.modifyTimeout ?? "5 seconds")

  const listAfter = options.listAfter ??
    ((prefix: string, after: string | null, limit: number) =>
      Effect.map(options.list(prefix), (keys) => {
        let start = 0
        if (after !== null) {
          // The first key after the cursor: a binary search, since `list` is sorted.
          let high = keys.length
          while (start < high) {
            const middle = (start + high) >>> 1
            if (keys[middle] <= after) start = middle + 1
            else high = middle
          }
        }
        return keys.slice(start, start + limit + 1)
      }))

  const has = options.has ?? ((key: string) => Effect.map(get(key), (value) => value !== null))
  const setMany = options.setMany ??
    ((entries: ReadonlyArray<readonly [string, string]>, expiry: Expiry) =>
      Effect.forEach(entries, ([key, value]) => options.set(key, value, expiry), {
        concurrency: BATCH_CONCURRENCY,
        discard: true
      }))
  const getMany = options.getMany ??
    ((keys: ReadonlyArray<string>) => Effect.forEach(keys, get, { concurrency: BATCH_CONCURRENCY }))
  const deleteMany = options.deleteMany ??
    ((keys: ReadonlyArray<string>) =>
      Effect.forEach(keys, options.delete, { concurrency: BATCH_CONCURRENCY, discard: true }))

  const modify = options.modify ?? deriveModify({ get, compareAndSet, modifyTimeout })

  const count = options.count ?? ((prefix: string) => Effect.map(options.list(prefix), (keys) => keys.length))

  // Page by page, so clearing a large prefix holds one page of keys at a time.
  const clear = options.clear ?? ((prefix: string) => {
    const loop = (cleared: number): Effect.Effect<number, KvStoreError> =>
      Effect.flatMap(
        listAfter(prefix, null, MAX_BATCH_SIZE - 1),
        (keys) =>
          keys.length === 0 ? Effect.succeed(cleared) : Effect.flatMap(
            deleteMany(keys.map((key) => prefix + key)),
            () => loop(cleared + keys.length)
          )
      )
    return loop(0)
  })

  const subscribe = options.subscribe ??
    ((prefix: string) =>
      Effect.fail(
        new KvBackendError({
          operation: "watch",
          reason: "Failure",
          key: prefix,
          message: "watch: this backend cannot deliver changes (its make was given no subscribe primitive)."
        })
      ))

  return {
    get,
    set: options.set,
    delete: options.delete,
    list: options.list,
    setIfAbsent: options.setIfAbsent,
    compareAndSet,
    ttl: options.ttl,
    has,
    getMany,
    setMany,
    deleteMany,
    count,
    clear,
    listAfter,
    modify,
    subscribe
  }
}

/** One page of a listing on `listAfter`: it asks for one key more than `limit` to know whether another page follows. */
export const derivePage =
  (listAfter: Primitives["listAfter"]) =>
  (prefix: string, after: string | null, limit: number): Effect.Effect<ListPage, KvStoreError> =>
    Effect.map(listAfter(prefix, after, limit), (keys) =>
      keys.length > limit
        ? { keys: keys.slice(0, limit), cursor: encodeCursor(keys[limit - 1]) }
        : { keys, cursor: null })

/** The keys under `prefix` as a stream, `STREAM_PAGE` keys per request. */
export const deriveListStream = (page: ReturnType<typeof derivePage>) => (prefix: string) =>
  Stream.paginate(null as string | null, (after) =>
    Effect.map(page(prefix, after, STREAM_PAGE), ({ cursor, keys }) =>
      [
        keys,
        cursor === null ? Option.none() : Option.some(keys[keys.length - 1])
      ] as const))
