/**
 * A typed view of a `BaseKvStore`: values are records described by an Effect `Schema`, stored as JSON strings.
 *
 * Programs keep records, not strings: `toSchemaStore(store, Upload)` encodes each record to JSON on every write and
 * decodes it on every read, so a record that does not fit the schema is never written, and a stored value that does
 * not decode is reported with the key and the Schema issue instead of reaching the program as a wrong object. The
 * operations are the store's own, typed, with the same atomicity: `modify` and `compareAndSet` are as atomic as the
 * store beneath.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Predicate from "effect/Predicate"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import type {
  BaseKvStore,
  KvStoreError,
  ListPage,
  ListPageOptions,
  Operation,
  WatchOptions,
  WriteOptions
} from "./BaseKvStore.ts"
import { isKvInputError, type KvInputError } from "./BaseKvStore.ts"

const KvSchemaErrorTypeId = "~effect-kv/KvSchemaError" as const

/**
 * A record failed its schema: a stored value that does not decode (written by another program or an older schema),
 * or a record that does not encode. Nothing was written.
 *
 * @since 0.1.0
 * @category errors
 */
export class KvSchemaError extends Data.TaggedError("KvSchemaError")<{
  readonly operation: Operation
  readonly key: string
  /** `"decode"`: the stored value does not fit the schema; `"encode"`: the record given does not. */
  readonly direction: "decode" | "encode"
  readonly issue: Schema.SchemaError["issue"]
  readonly message: string
}> {
  /** Marks the error as effect-kv's, for `isKvSchemaError`, which holds across two installed copies of the package. */
  readonly [KvSchemaErrorTypeId]: typeof KvSchemaErrorTypeId = KvSchemaErrorTypeId
}

/**
 * Whether `u` is a `KvSchemaError`, from this copy of effect-kv or another.
 *
 * @since 0.1.0
 * @category guards
 */
export const isKvSchemaError = (u: unknown): u is KvSchemaError => Predicate.hasProperty(u, KvSchemaErrorTypeId)

/**
 * A change seen by the typed `watch`: the store's `WatchEvent`s with decoded records, and `Invalid` for a written
 * value that does not fit the schema (the stream goes on).
 *
 * @since 0.1.0
 * @category models
 */
export type SchemaWatchEvent<A> =
  | { readonly _tag: "Set"; readonly key: string; readonly value: A }
  | { readonly _tag: "Invalid"; readonly key: string; readonly error: KvSchemaError }
  | { readonly _tag: "Delete"; readonly key: string }
  | { readonly _tag: "Expire"; readonly key: string }
  | { readonly _tag: "Resync" }

/**
 * The operations of `BaseKvStore`, with values of type `A`.
 *
 * @since 0.1.0
 * @category models
 */
export interface SchemaStore<A> {
  /** The untyped store beneath. */
  readonly store: BaseKvStore
  readonly get: (key: string) => Effect.Effect<A | null, KvStoreError | KvSchemaError>
  readonly set: (key: string, value: A, options?: WriteOptions) => Effect.Effect<void, KvStoreError | KvSchemaError>
  readonly delete: (key: string) => Effect.Effect<void, KvStoreError>
  readonly has: (key: string) => Effect.Effect<boolean, KvStoreError>
  readonly list: (prefix: string) => Effect.Effect<ReadonlyArray<string>, KvStoreError>
  readonly listPage: (prefix: string, options: ListPageOptions) => Effect.Effect<ListPage, KvStoreError>
  readonly listStream: (prefix: string) => Stream.Stream<string, KvStoreError>
  readonly count: (prefix: string) => Effect.Effect<number, KvStoreError>
  readonly clear: (prefix: string) => Effect.Effect<number, KvStoreError>
  readonly getMany: (
    keys: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyArray<A | null>, KvStoreError | KvSchemaError>
  readonly setMany: (
    entries: ReadonlyArray<readonly [key: string, value: A]>,
    options?: WriteOptions
  ) => Effect.Effect<void, KvStoreError | KvSchemaError>
  readonly deleteMany: (keys: ReadonlyArray<string>) => Effect.Effect<void, KvStoreError>
  readonly setIfAbsent: (
    key: string,
    value: A,
    options?: WriteOptions
  ) => Effect.Effect<boolean, KvStoreError | KvSchemaError>
  /**
   * Compares encoded JSON: `expected` matches when it encodes to the stored string. Records written through this
   * view with this schema encode the same way; for values written otherwise, prefer `modify`.
   */
  readonly compareAndSet: (
    key: string,
    expected: A | null,
    next: A | null,
    options?: WriteOptions
  ) => Effect.Effect<boolean, KvStoreError | KvSchemaError>
  /** Atomic read-modify-write of a record; `f` may run more than once under contention. */
  readonly modify: (
    key: string,
    f: (current: A | null) => A | null,
    options?: WriteOptions
  ) => Effect.Effect<A | null, KvStoreError | KvSchemaError>
  readonly ttl: (key: string) => Effect.Effect<Duration.Duration | null, KvStoreError>
  /** The store's `watch` with decoded records; a value that does not decode is an `Invalid` event. */
  readonly watch: (prefix: string, options?: WatchOptions) => Stream.Stream<SchemaWatchEvent<A>, KvStoreError>
}

/** Carries a schema failure out of the update function given to the store's `modify`. */
class Escape {
  constructor(readonly error: KvSchemaError) {}
}

/**
 * The store with values typed by `schema`, as JSON. The schema's JSON form is used (`Schema.toCodecJson`), so
 * `Date`s, `bigint`s and other non-JSON types round-trip.
 *
 * ```ts
 * const Upload = Schema.Struct({ id: Schema.String, offset: Schema.Number, length: Schema.NullOr(Schema.Number) })
 * const uploads = toSchemaStore(store, Upload)
 * yield* uploads.set("upload:1", { id: "1", offset: 0, length: 1024 })
 * yield* uploads.modify("upload:1", (u) => u && { ...u, offset: u.offset + 512 })
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const toSchemaStore: {
  <S extends Schema.Codec<any, any, never, never>>(schema: S): (store: BaseKvStore) => SchemaStore<S["Type"]>
  <S extends Schema.Codec<any, any, never, never>>(store: BaseKvStore, schema: S): SchemaStore<S["Type"]>
} = dual(2, <A>(store: BaseKvStore, schema: Schema.Codec<A, any, never, never>): SchemaStore<A> => {
  const codec = Schema.toCodecJson(schema)
  const json = Schema.fromJsonString(codec)
  const decodeJson = Schema.decodeUnknownResult(json)
  const encodeJson = Schema.encodeResult(json)
  // `fromJsonString` is `JSON.parse`/`JSON.stringify` around the codec, run as Effects inside the schema parser. The
  // codec with the JSON calls made here gives the same strings and values for less (BENCHMARKS.md, the contract table
  // "typed records": a get and a compareAndSet of the upload server's record); a value that fails either step goes
  // through `json` again, so errors are exactly the schema's own.
  const decodeCodec = Schema.decodeUnknownResult(codec)
  const encodeCodec = Schema.encodeResult(codec)
  /** The value, or `undefined` when it does not parse or fit (or decodes to `undefined`: the slow path decides). */
  const fastDecode = (value: string): A | undefined => {
    let parsed: unknown
    try {
      parsed = JSON.parse(value)
    } catch {
      return undefined
    }
    const decoded = decodeCodec(parsed)
    return Result.isSuccess(decoded) ? decoded.success : undefined
  }
  const fastEncode = (value: A): string | undefined => {
    const encoded = encodeCodec(value)
    if (Result.isFailure(encoded)) return undefined
    try {
      return JSON.stringify(encoded.success)
    } catch {
      return undefined
    }
  }

  const schemaError =
    (operation: Operation, key: string, direction: "decode" | "encode") => (error: Schema.SchemaError) =>
      new KvSchemaError({
        operation,
        key,
        direction,
        issue: error.issue,
        message: `${operation}(${JSON.stringify(key)}): ${
          direction === "decode"
            ? "the stored value does not fit the schema"
            : "the record does not fit the schema, so nothing was written"
        }: ${error.message}`
      })

  const decodeValue = (
    operation: Operation,
    key: string,
    value: string | null
  ): Result.Result<A | null, KvSchemaError> => {
    if (value === null) return Result.succeed(null)
    const decoded = fastDecode(value)
    return decoded !== undefined
      ? Result.succeed(decoded)
      : Result.mapError(decodeJson(value), schemaError(operation, key, "decode"))
  }

  const encodeValue = (
    operation: Operation,
    key: string,
    value: A | null
  ): Result.Result<string | null, KvSchemaError> => {
    if (value === null) return Result.succeed(null)
    const encoded = fastEncode(value)
    return encoded !== undefined
      ? Result.succeed(encoded)
      : Result.mapError(encodeJson(value), schemaError(operation, key, "encode"))
  }

  /** Encodes lazily: a record is checked when the effect runs, like every other argument. */
  const encoded = <B, E>(
    operation: Operation,
    key: string,
    value: A,
    f: (json: string) => Effect.Effect<B, E>
  ): Effect.Effect<B, E | KvSchemaError> =>
    Effect.suspend((): Effect.Effect<B, E | KvSchemaError> => {
      const result = encodeValue(operation, key, value)
      return Result.isFailure(result) ? Effect.fail(result.failure) : f(result.success!)
    })

  return {
    store,
    get: (key) => Effect.flatMap(store.get(key), (value) => Effect.fromResult(decodeValue("get", key, value))),
    set: (key, value, options) => encoded("set", key, value, (json) => store.set(key, json, options)),
    delete: (key) => store.delete(key),
    has: (key) => store.has(key),
    list: (prefix) => store.list(prefix),
    listPage: (prefix, options) => store.listPage(prefix, options),
    listStream: (prefix) => store.listStream(prefix),
    count: (prefix) => store.count(prefix),
    clear: (prefix) => store.clear(prefix),
    getMany: (keys) =>
      Effect.flatMap(
        store.getMany(keys),
        (values) => Effect.forEach(values, (value, i) => Effect.fromResult(decodeValue("getMany", keys[i], value)))
      ),
    setMany: (entries, options) =>
      Effect.suspend((): Effect.Effect<void, KvStoreError | KvSchemaError> => {
        const json: Array<readonly [string, string]> = []
        // Every record is encoded before anything is written, so one bad record writes nothing.
        for (const [key, value] of Array.isArray(entries) ? entries : []) {
          const result = encodeValue("setMany", key, value)
          if (Result.isFailure(result)) return Effect.fail(result.failure)
          json.push([key, result.success!])
        }
        return store.setMany(Array.isArray(entries) ? json : (entries as never), options)
      }),
    deleteMany: (keys) => store.deleteMany(keys),
    setIfAbsent: (key, value, options) =>
      encoded("setIfAbsent", key, value, (json) => store.setIfAbsent(key, json, options)),
    compareAndSet: (key, expected, next, options) =>
      Effect.suspend((): Effect.Effect<boolean, KvStoreError | KvSchemaError> => {
        const from = encodeValue("compareAndSet", key, expected)
        if (Result.isFailure(from)) return Effect.fail(from.failure)
        const to = encodeValue("compareAndSet", key, next)
        if (Result.isFailure(to)) return Effect.fail(to.failure)
        return store.compareAndSet(key, from.success, to.success, options)
      }),
    modify: (key, f, options) =>
      Effect.suspend(() => {
        // The record f returned on the attempt that won: decoding the stored string again would only cost time.
        let written: A | null = null
        return store.modify(
          key,
          (current) => {
            const decoded = decodeValue("modify", key, current)
            if (Result.isFailure(decoded)) throw new Escape(decoded.failure)
            written = f(decoded.success)
            const next = encodeValue("modify", key, written)
            if (Result.isFailure(next)) throw new Escape(next.failure)
            return next.success
          },
          options
        ).pipe(
          Effect.catchIf(
            (error): error is KvInputError => isKvInputError(error) && error.cause instanceof Escape,
            (error) => Effect.fail((error.cause as Escape).error)
          ),
          Effect.map(() => written)
        )
      }),
    ttl: (key) => store.ttl(key),
    watch: (prefix, options) =>
      Stream.map(store.watch(prefix, options), (event): SchemaWatchEvent<A> => {
        if (event._tag !== "Set") return event
        const decoded = decodeValue("watch", prefix + event.key, event.value)
        return Result.isSuccess(decoded)
          ? { _tag: "Set", key: event.key, value: decoded.success! }
          : { _tag: "Invalid", key: event.key, error: decoded.failure }
      })
  }
})
