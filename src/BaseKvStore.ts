/**
 * The contract every effect-kv backend keeps.
 *
 * `BaseKvStore` is a string key-value store as an Effect service: programs ask for `BaseKvStoreService`, develop and
 * test against the in-memory backend, and run on Redis in production without changing a line. This module holds the
 * one definition of what the four operations mean, the errors they fail with, and the rules for keys, values and
 * prefixes. Backends build their store with `make`, which enforces the input rules, so a backend only says how it
 * stores things. The conformance suite in `effect-kv/testing` proves a backend keeps this contract.
 *
 * **Semantics**
 *
 * - `get(key)` succeeds with the value, or `null` when the key is missing.
 * - `set(key, value)` stores the value, overwriting any previous one.
 * - `delete(key)` removes the key, and succeeds when it is already missing.
 * - `list(prefix)` succeeds with the keys that start with `prefix`, with the prefix removed, sorted ascending in
 *   JavaScript string order (UTF-16 code units, as `Array.prototype.sort` does), each exactly once. `list("")` lists
 *   every key. For every `k` it returns, `get(prefix + k)` found a value when the listing ran.
 *
 * **Keys, values and prefixes** are plain strings: `* ? [ ] \ : / %`, spaces, newlines and non-ASCII characters have
 * no special meaning. A key is a non-empty string of at most `MAX_KEY_LENGTH` UTF-16 code units; a value is a string of
 * at most `MAX_VALUE_LENGTH` code units; a prefix is a string (possibly empty) of at most `MAX_KEY_LENGTH` code units.
 * All three must be well-formed Unicode (no lone surrogate), because a backend that stores UTF-8, as Redis does,
 * would otherwise turn two different keys into the same one. Anything else fails with a `KvInputError` and nothing is
 * read or written.
 *
 * **Effects are lazy.** Building `store.set("a", "1")` does nothing; running it writes; running it twice writes twice;
 * a `get` built earlier reads the value at the time it runs.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"

/**
 * A string key-value store. Every operation is a lazy `Effect`.
 *
 * @since 0.1.0
 * @category models
 */
export interface BaseKvStore {
  /** The value stored under `key`, or `null` when the key is missing. */
  readonly get: (key: string) => Effect.Effect<string | null, KvStoreError>
  /** Stores `value` under `key`, overwriting any previous value. */
  readonly set: (key: string, value: string) => Effect.Effect<void, KvStoreError>
  /** Removes `key`; succeeds when the key is already missing. */
  readonly delete: (key: string) => Effect.Effect<void, KvStoreError>
  /** The keys starting with `prefix`, with the prefix removed, sorted ascending, each once. */
  readonly list: (prefix: string) => Effect.Effect<ReadonlyArray<string>, KvStoreError>
}

/**
 * The longest key, in UTF-16 code units (`key.length`), that every backend accepts. Prefixes share the limit.
 *
 * Long enough for any structured key (`upload:<uuid>:part:<n>` is 50); short enough that a key is never mistaken for
 * a value. A longer natural key should be hashed.
 *
 * @since 0.1.0
 * @category limits
 */
export const MAX_KEY_LENGTH = 1024

/**
 * The longest value, in UTF-16 code units (`value.length`): 16 Mi. As UTF-8 that is at most 48 MiB, far below Redis's
 * 512 MB limit, so a value one backend accepts every backend accepts. Store larger blobs elsewhere and keep a
 * reference here.
 *
 * @since 0.1.0
 * @category limits
 */
export const MAX_VALUE_LENGTH = 16 * 1024 * 1024

/**
 * The operations of a `BaseKvStore`, as named in errors.
 *
 * @since 0.1.0
 * @category models
 */
export type Operation = "get" | "set" | "delete" | "list"

/**
 * Why an argument was refused.
 *
 * - `NotAString`: the argument is not a primitive string (a number, `undefined`, an object, a `String` object...).
 * - `Empty`: the key is `""`.
 * - `TooLong`: longer than `MAX_KEY_LENGTH` (keys, prefixes) or `MAX_VALUE_LENGTH` (values).
 * - `MalformedUnicode`: contains a lone UTF-16 surrogate.
 *
 * @since 0.1.0
 * @category errors
 */
export type InputReason = "NotAString" | "Empty" | "TooLong" | "MalformedUnicode"

/**
 * An argument broke the input rules. Nothing was read or written. Retrying cannot help: fix the caller.
 *
 * @since 0.1.0
 * @category errors
 */
export class KvInputError extends Data.TaggedError("KvInputError")<{
  readonly operation: Operation
  readonly argument: "key" | "value" | "prefix"
  readonly reason: InputReason
  /** The key, when the caller passed a string as the key; `undefined` otherwise. */
  readonly key: string | undefined
  readonly message: string
}> {}

/**
 * Why a backend could not complete an operation.
 *
 * - `Unavailable`: the backend cannot be reached (connection refused or lost, not connected yet). Retrying later can
 *   succeed.
 * - `Timeout`: no answer within the backend's timeout. The operation may or may not have been applied.
 * - `Failure`: the backend answered with an error, or failed in a way that retrying will not fix.
 *
 * @since 0.1.0
 * @category errors
 */
export type BackendReason = "Unavailable" | "Timeout" | "Failure"

/**
 * The backend failed to perform the operation.
 *
 * @since 0.1.0
 * @category errors
 */
export class KvBackendError extends Data.TaggedError("KvBackendError")<{
  readonly operation: Operation | "connect"
  readonly reason: BackendReason
  /** The key or prefix the operation was given, when there was one. */
  readonly key: string | undefined
  readonly message: string
  readonly cause?: unknown
}> {}

/**
 * Every error a `BaseKvStore` operation can fail with.
 *
 * @since 0.1.0
 * @category errors
 */
export type KvStoreError = KvInputError | KvBackendError

/**
 * The service programs ask for: `const store = yield* BaseKvStoreService`.
 *
 * @since 0.1.0
 * @category services
 */
export class BaseKvStoreService extends Context.Service<BaseKvStoreService, BaseKvStore>()("effect-kv/BaseKvStore") {}

const describe = (input: unknown): string => {
  if (input === null) return "null"
  switch (typeof input) {
    case "string":
      return input.length > 40 ? `a string of ${input.length} characters` : JSON.stringify(input)
    case "number":
    case "bigint":
    case "boolean":
      return `a ${typeof input} (${String(input)})`
    case "undefined":
      return "undefined"
    case "object":
      return input instanceof String ? "a String object (pass a primitive string)" : "an object"
    default:
      return `a ${typeof input}`
  }
}

const quote = (key: string | undefined): string =>
  key === undefined ? "" : `(${key.length > 60 ? `${JSON.stringify(key.slice(0, 60))}...` : JSON.stringify(key)})`

const refuse = (
  operation: Operation,
  argument: "key" | "value" | "prefix",
  input: unknown,
  key: string | undefined,
  limit: number
): KvInputError => {
  const at = `${operation}${argument === "value" ? quote(key) : ""}`
  if (typeof input !== "string") {
    const hint = argument === "value"
      ? "Serialize it to a string first, e.g. with JSON.stringify."
      : argument === "prefix"
      ? "Pass \"\" to list every key."
      : "Pass a non-empty string."
    return new KvInputError({
      operation,
      argument,
      reason: "NotAString",
      key,
      message: `${at}: the ${argument} must be a string, received ${describe(input)}. ${hint}`
    })
  }
  if (input.length === 0) {
    return new KvInputError({
      operation,
      argument,
      reason: "Empty",
      key,
      message: `${at}: the key must be a non-empty string, received "".`
    })
  }
  if (input.length > limit) {
    return new KvInputError({
      operation,
      argument,
      reason: "TooLong",
      key,
      message: `${at}: the ${argument} is ${input.length} characters long; the maximum is ${limit}.${
        argument === "value" ? "" : " Shorten it, e.g. by hashing the variable part."
      }`
    })
  }
  return new KvInputError({
    operation,
    argument,
    reason: "MalformedUnicode",
    key,
    message: `${at}: the ${argument} contains a lone UTF-16 surrogate, so backends that store UTF-8 would change it. ` +
      "Pass well-formed Unicode."
  })
}

/**
 * Whether `key` is a valid key: a non-empty, well-formed string of at most `MAX_KEY_LENGTH` code units.
 *
 * @since 0.1.0
 * @category validation
 */
export const isValidKey = (key: unknown): key is string =>
  typeof key === "string" && key.length !== 0 && key.length <= MAX_KEY_LENGTH && key.isWellFormed()

/**
 * Whether `value` is a valid value: a well-formed string of at most `MAX_VALUE_LENGTH` code units.
 *
 * @since 0.1.0
 * @category validation
 */
export const isValidValue = (value: unknown): value is string =>
  typeof value === "string" && value.length <= MAX_VALUE_LENGTH && value.isWellFormed()

/**
 * Whether `prefix` is a valid prefix: a well-formed string (possibly empty) of at most `MAX_KEY_LENGTH` code units.
 *
 * @since 0.1.0
 * @category validation
 */
export const isValidPrefix = (prefix: unknown): prefix is string =>
  typeof prefix === "string" && prefix.length <= MAX_KEY_LENGTH && prefix.isWellFormed()

/**
 * The error for a key that `isValidKey` refuses.
 *
 * @since 0.1.0
 * @category validation
 */
export const invalidKey = (operation: Operation, key: unknown): KvInputError =>
  refuse(operation, "key", key, typeof key === "string" ? key : undefined, MAX_KEY_LENGTH)

/**
 * The error for a value that `isValidValue` refuses.
 *
 * @since 0.1.0
 * @category validation
 */
export const invalidValue = (key: string, value: unknown): KvInputError =>
  refuse("set", "value", value, key, MAX_VALUE_LENGTH)

/**
 * The error for a prefix that `isValidPrefix` refuses.
 *
 * @since 0.1.0
 * @category validation
 */
export const invalidPrefix = (prefix: unknown): KvInputError =>
  refuse("list", "prefix", prefix, typeof prefix === "string" ? prefix : undefined, MAX_KEY_LENGTH)

/**
 * The primitives a backend supplies to `make`. They receive only arguments that passed the input rules.
 *
 * @since 0.1.0
 * @category constructors
 */
export interface MakeOptions {
  readonly get: (key: string) => Effect.Effect<string | null, KvStoreError>
  readonly set: (key: string, value: string) => Effect.Effect<void, KvStoreError>
  readonly delete: (key: string) => Effect.Effect<void, KvStoreError>
  /** Must return the stripped, sorted, duplicate-free keys the contract asks for. */
  readonly list: (prefix: string) => Effect.Effect<ReadonlyArray<string>, KvStoreError>
}

/**
 * Builds a `BaseKvStore` from a backend's primitives, enforcing the input rules in front of them.
 *
 * A refused argument fails with `KvInputError` before the backend is touched. The check runs when the effect is
 * built, which is safe because it only reads the (immutable) string arguments; the backend's effect is returned as
 * is, so its laziness is the backend's.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: MakeOptions): BaseKvStore =>
  BaseKvStoreService.of({
    get: (key) => isValidKey(key) ? options.get(key) : Effect.fail(invalidKey("get", key)),
    set: (key, value) =>
      !isValidKey(key)
        ? Effect.fail(invalidKey("set", key))
        : isValidValue(value)
        ? options.set(key, value)
        : Effect.fail(invalidValue(key, value)),
    delete: (key) => isValidKey(key) ? options.delete(key) : Effect.fail(invalidKey("delete", key)),
    list: (prefix) => isValidPrefix(prefix) ? options.list(prefix) : Effect.fail(invalidPrefix(prefix))
  })
