/**
 * Effect's `KeyValueStore` (`effect/persistence/KeyValueStore`) over any effect-kv store.
 *
 * A program written against Effect's `KeyValueStore` runs unchanged on memory, Redis (standalone or Cluster),
 * PostgreSQL or SQLite: provide `layerKeyValueStore` on top of an effect-kv backend layer. What it gains over Effect's
 * own stores:
 *
 * - `modify` and `modifyUint8Array` are effect-kv's atomic `modify`: concurrent updates of one key lose nothing, on
 *   every backend (Effect's derived `modify` is a get-then-set).
 * - `keys`, `size`, `clear` and `clearPrefix` page through effect-kv's listing, `count` and `clear`: no `KEYS`, and
 *   Redis Cluster safe.
 * - Strings are stored verbatim, and binary values round-trip as bytes behind a type marker no stored string can
 *   collide with (a string that looks like base64 stays a string). `get` of a binary value is its base64, and
 *   `getUint8Array` of a string value is its UTF-8 bytes, as in Effect's own stores.
 *
 * Keys effect-kv refuses (empty, longer than `MAX_KEY_LENGTH`, malformed Unicode) fail with `KeyValueStoreError`
 * whose `cause` is the `KvInputError`; backend failures likewise carry the `KvBackendError`.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Base64 from "effect/encoding/Base64"
import * as Layer from "effect/Layer"
import * as KeyValueStore from "effect/persistence/KeyValueStore"
import * as Result from "effect/Result"
import { type BaseKvStore, BaseKvStoreService, type KvStoreError } from "./BaseKvStore.ts"

/**
 * The first character of a stored value the adapter tagged: U+FFFF, a Unicode noncharacter that every backend stores
 * (it is well-formed, unlike a lone surrogate) and that text practically never starts with. The character after it
 * says what follows: `b` base64 bytes, `s` a string that itself started with the marker. Every other string is
 * stored as it is, so the tagging costs nothing for ordinary strings and cannot be confused with them.
 */
const MARK = "\uFFFF"
const MARK_CODE = 0xFFFF
const BINARY = MARK + "b"
const ESCAPED = MARK + "s"

const encoder = new TextEncoder()

/** What the adapter stores for a value of Effect's `set`. */
const encodeValue = (value: string | Uint8Array): string =>
  typeof value === "string"
    ? value.charCodeAt(0) === MARK_CODE ? ESCAPED + value : value
    : BINARY + Base64.encode(value)

const isBinary = (stored: string): boolean => stored.charCodeAt(0) === MARK_CODE && stored.charCodeAt(1) === 0x62 // b

/** A stored value as Effect's `get` returns it: the string, or the base64 of binary. */
const decodeString = (stored: string): string =>
  stored.charCodeAt(0) !== MARK_CODE
    ? stored
    : stored.startsWith(BINARY) || stored.startsWith(ESCAPED)
    ? stored.slice(2)
    // Written by something other than the adapter: returned as it is.
    : stored

/** A stored value as Effect's `getUint8Array` returns it: the bytes, or the UTF-8 of a string. */
const decodeBytes = (stored: string): Result.Result<Uint8Array, unknown> =>
  isBinary(stored) ? Base64.decode(stored.slice(2)) : Result.succeed(encoder.encode(decodeString(stored)))

const fail = (method: string, key: string | undefined, error: unknown) =>
  new KeyValueStore.KeyValueStoreError({
    method,
    ...(key === undefined ? {} : { key }),
    message: error instanceof Error ? error.message : `effect-kv ${method} failed`,
    cause: error
  })

const mapError = <A>(
  effect: Effect.Effect<A, KvStoreError>,
  method: string,
  key?: string
): Effect.Effect<A, KeyValueStore.KeyValueStoreError> => Effect.mapError(effect, (error) => fail(method, key, error))

const bytesOrFail = (key: string, method: string, stored: string) => {
  const bytes = decodeBytes(stored)
  return Result.isSuccess(bytes)
    ? Effect.succeed(bytes.success)
    : Effect.fail(fail(method, key, new Error(`${method}: the binary value is corrupt (not base64)`)))
}

/**
 * Effect's `KeyValueStore` over `store`: every key of the store is a key of the `KeyValueStore`. For a namespace of
 * its own, pass a view (`withPrefix(store, "app:")`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const toKeyValueStore = (store: BaseKvStore): KeyValueStore.KeyValueStore =>
  KeyValueStore.make({
    get: (key) =>
      mapError(Effect.map(store.get(key), (stored) => stored === null ? undefined : decodeString(stored)), "get", key),
    getUint8Array: (key) =>
      Effect.flatMap(
        mapError(store.get(key), "getUint8Array", key),
        (stored) => stored === null ? Effect.undefined : bytesOrFail(key, "getUint8Array", stored)
      ),
    set: (key, value) => mapError(store.set(key, encodeValue(value)), "set", key),
    remove: (key) => mapError(store.delete(key), "remove", key),
    clear: mapError(Effect.asVoid(store.clear("")), "clear"),
    clearPrefix: (prefix) => mapError(Effect.asVoid(store.clear(prefix)), "clearPrefix", prefix),
    size: mapError(store.count(""), "size"),
    keys: mapError(store.list(""), "keys"),
    has: (key) => mapError(store.has(key), "has", key),
    isEmpty: mapError(Effect.map(store.listPage("", { limit: 1 }), (page) => page.keys.length === 0), "isEmpty"),
    modify: (key, f) =>
      mapError(
        Effect.map(
          store.modify(key, (current) => current === null ? null : encodeValue(f(decodeString(current)))),
          (stored) => stored === null ? undefined : decodeString(stored)
        ),
        "modify",
        key
      ),
    modifyUint8Array: (key, f) =>
      Effect.flatMap(
        mapError(
          store.modify(key, (current) => {
            if (current === null) return null
            const bytes = decodeBytes(current)
            // A corrupt value is left as it is; the read below reports it.
            return Result.isSuccess(bytes) ? encodeValue(f(bytes.success)) : current
          }),
          "modifyUint8Array",
          key
        ),
        (stored) => stored === null ? Effect.undefined : bytesOrFail(key, "modifyUint8Array", stored)
      )
  })

/**
 * Effect's `KeyValueStore` service over the `BaseKvStoreService` in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerKeyValueStore: Layer.Layer<KeyValueStore.KeyValueStore, never, BaseKvStoreService> = Layer.effect(
  KeyValueStore.KeyValueStore,
  BaseKvStoreService.useSync(toKeyValueStore)
)
