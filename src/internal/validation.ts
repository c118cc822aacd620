/**
 * The input rules of `BaseKvStore`, checked once in front of every backend by `make`: what a key, value, prefix,
 * batch and option may be, and the `KvInputError` (with a message that says what was wrong and what to do) for each
 * argument that breaks them.
 *
 * The checks are plain functions that return an error or `undefined`, so the per-operation path of `make` calls them
 * without building an effect or allocating anything for a valid argument.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import {
  type Argument,
  DEFAULT_WATCH_BUFFER,
  type Expiry,
  type InputReason,
  KvInputError,
  type ListPageOptions,
  MAX_BATCH_SIZE,
  MAX_KEY_LENGTH,
  MAX_PAGE_LIMIT,
  MAX_VALUE_LENGTH,
  MAX_WATCH_BUFFER,
  type Operation,
  type WatchOptions,
  type WriteOptions
} from "../BaseKvStore.ts"

/** How a refused argument is shown in a message: short, and never a whole value. */
export const describe = (input: unknown): string => {
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
      return input instanceof String
        ? "a String object (pass a primitive string)"
        : Array.isArray(input)
        ? "an array"
        : "an object"
    default:
      return `a ${typeof input}`
  }
}

/** The key as a message names it after the operation: `set("upload:1")`, cut short past 60 characters. */
export const quote = (key: string | undefined): string =>
  key === undefined ? "" : `(${key.length > 60 ? `${JSON.stringify(key.slice(0, 60))}...` : JSON.stringify(key)})`

const valueArguments: ReadonlySet<Argument> = new Set(["value", "expected", "next"])

const refuse = (
  operation: Operation,
  argument: Argument,
  input: unknown,
  key: string | undefined,
  limit: number,
  at: string
): KvInputError => {
  const fail = (reason: InputReason, message: string) =>
    new KvInputError({ operation, argument, reason, key, message: `${at}: ${message}` })
  if (typeof input !== "string") {
    const hint = valueArguments.has(argument)
      ? `Serialize it to a string first, e.g. with JSON.stringify${argument === "value" ? "" : ", or pass null"}.`
      : argument === "prefix"
      ? "Pass \"\" for every key."
      : "Pass a non-empty string."
    return fail("NotAString", `the ${argument} must be a string, received ${describe(input)}. ${hint}`)
  }
  if (input.length === 0) return fail("Empty", `the key must be a non-empty string, received "".`)
  if (input.length > limit) {
    return fail(
      "TooLong",
      `the ${argument} is ${input.length} characters long; the maximum is ${limit}.${
        valueArguments.has(argument) ? "" : " Shorten it, e.g. by hashing the variable part."
      }`
    )
  }
  return fail(
    "MalformedUnicode",
    `the ${argument} contains a lone UTF-16 surrogate, so backends that store UTF-8 would change it. ` +
      "Pass well-formed Unicode."
  )
}

export const isValidKey = (key: unknown): key is string =>
  typeof key === "string" && key.length !== 0 && key.length <= MAX_KEY_LENGTH && key.isWellFormed()

export const isValidValue = (value: unknown): value is string =>
  typeof value === "string" && value.length <= MAX_VALUE_LENGTH && value.isWellFormed()

export const isValidPrefix = (prefix: unknown): prefix is string =>
  typeof prefix === "string" && prefix.length <= MAX_KEY_LENGTH && prefix.isWellFormed()

export const invalidKey = (operation: Operation, key: unknown): KvInputError =>
  refuse(operation, "key", key, typeof key === "string" ? key : undefined, MAX_KEY_LENGTH, operation)

export const invalidValue = (
  key: string,
  value: unknown,
  operation: Operation = "set",
  argument: "value" | "expected" | "next" = "value"
): KvInputError => refuse(operation, argument, value, key, MAX_VALUE_LENGTH, `${operation}${quote(key)}`)

export const invalidPrefix = (prefix: unknown, operation: Operation = "list"): KvInputError =>
  refuse(operation, "prefix", prefix, typeof prefix === "string" ? prefix : undefined, MAX_KEY_LENGTH, operation)

export const invalidOption = (
  operation: Operation,
  argument: Argument,
  key: string | undefined,
  message: string,
  reason: InputReason = "InvalidOption"
) => new KvInputError({ operation, argument, reason, key, message: `${operation}${quote(key)}: ${message}` })

const ttlMillis = (input: unknown): number | undefined => {
  // Milliseconds, the common form, without building a Duration.
  if (typeof input === "number") return Number.isFinite(input) && input >= 1 ? Math.ceil(input) : undefined
  // Duration.fromInput throws on some malformed objects instead of returning None; both mean "not a duration".
  let duration: Option.Option<Duration.Duration>
  try {
    duration = input === null || typeof input === "boolean" ? Option.none() : Duration.fromInput(input as never)
  } catch {
    return undefined
  }
  if (Option.isNone(duration) || !Duration.isFinite(duration.value)) return undefined
  const ms = Duration.toMillis(duration.value)
  // Rounded up: a key never expires before the ttl it was given.
  return Number.isFinite(ms) && ms >= 1 ? Math.ceil(ms) : undefined
}

/** The `Expiry` of a write's options, or the error for options that break the rules. */
export const expiryOf = (
  operation: Operation,
  key: string | undefined,
  options: WriteOptions | undefined
): Expiry | KvInputError => {
  if (options === undefined) return null
  if (options === null || typeof options !== "object") {
    return invalidOption(operation, "options", key, `options must be an object, received ${describe(options)}.`)
  }
  const { keepTtl, ttl } = options
  if (keepTtl !== undefined && typeof keepTtl !== "boolean") {
    return invalidOption(operation, "keepTtl", key, `keepTtl must be a boolean, received ${describe(keepTtl)}.`)
  }
  if (ttl === undefined) return keepTtl === true ? "keep" : null
  if (keepTtl === true) {
    return invalidOption(
      operation,
      "ttl",
      key,
      "give either ttl (a new expiry) or keepTtl (the current one), not both."
    )
  }
  const ms = ttlMillis(ttl)
  if (ms === undefined) {
    return invalidOption(
      operation,
      "ttl",
      key,
      `ttl must be a finite duration of at least 1 millisecond ("30 minutes", 5000 for milliseconds), received ${
        describe(ttl)
      }.`
    )
  }
  return ms
}

export const checkKey = (operation: Operation, key: unknown): KvInputError | undefined =>
  isValidKey(key) ? undefined : invalidKey(operation, key)

export const checkKeys = (operation: Operation, keys: unknown): KvInputError | undefined => {
  if (!Array.isArray(keys)) {
    return invalidOption(operation, "keys", undefined, `keys must be an array of keys, received ${describe(keys)}.`)
  }
  if (keys.length > MAX_BATCH_SIZE) {
    return invalidOption(
      operation,
      "keys",
      undefined,
      `${keys.length} keys is more than the ${MAX_BATCH_SIZE} one batch takes; split it.`,
      "TooLong"
    )
  }
  for (let i = 0; i < keys.length; i++) {
    if (!isValidKey(keys[i])) {
      const error = invalidKey(operation, keys[i])
      return new KvInputError({ ...error, message: `${error.message} (keys[${i}]; nothing was read or written)` })
    }
  }
  return undefined
}

export const checkEntries = (entries: unknown): KvInputError | undefined => {
  if (!Array.isArray(entries)) {
    return invalidOption(
      "setMany",
      "entries",
      undefined,
      `entries must be an array of [key, value] pairs, received ${describe(entries)}.`
    )
  }
  if (entries.length > MAX_BATCH_SIZE) {
    return invalidOption(
      "setMany",
      "entries",
      undefined,
      `${entries.length} entries is more than the ${MAX_BATCH_SIZE} one batch takes; split it.`,
      "TooLong"
    )
  }
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]
    const error = !Array.isArray(entry) || entry.length !== 2
      ? invalidOption(
        "setMany",
        "entries",
        undefined,
        `entries[${i}] is ${describe(entry)}, not a [key, value] pair.`
      )
      : !isValidKey(entry[0])
      ? invalidKey("setMany", entry[0])
      : !isValidValue(entry[1])
      ? invalidValue(entry[0], entry[1], "setMany")
      : undefined
    if (error !== undefined) {
      return new KvInputError({ ...error, message: `${error.message} (entries[${i}]; nothing was written)` })
    }
  }
  return undefined
}

export const checkValueOrNull = (
  operation: Operation,
  key: string,
  value: unknown,
  argument: "expected" | "next"
): KvInputError | undefined =>
  value === null || isValidValue(value) ? undefined : invalidValue(key, value, operation, argument)

export const checkModifyFunction = (key: string, f: unknown): KvInputError | undefined =>
  typeof f === "function"
    ? undefined
    : invalidOption("modify", "f", key, `f must be a function, received ${describe(f)}.`)

/** Runs `f` as an untyped caller may have written it: a throw, or a result that is no value, is an input error. */
export const applyModify =
  (key: string, f: (current: string | null) => string | null) =>
  (current: string | null): Result.Result<string | null, KvInputError> => {
    let next: unknown
    try {
      next = f(current)
    } catch (cause) {
      return Result.fail(
        new KvInputError({
          operation: "modify",
          argument: "f",
          reason: "FunctionThrew",
          key,
          message: `modify${quote(key)}: the update function threw (${
            cause instanceof Error ? cause.message : String(cause)
          }); nothing was written.`,
          cause
        })
      )
    }
    const error = checkValueOrNull("modify", key, next, "next")
    return error === undefined ? Result.succeed(next as string | null) : Result.fail(
      new KvInputError({
        ...error,
        message: `${error.message} (returned by the update function; nothing was written)`
      })
    )
  }

/** The options of `listPage` apart from the cursor, which `decodeCursor` checks. */
export const checkPageOptions = (prefix: string, options: ListPageOptions): KvInputError | undefined => {
  if (options === null || typeof options !== "object") {
    return invalidOption(
      "listPage",
      "options",
      prefix,
      `options must be an object such as { limit: 100 }, received ${describe(options)}.`
    )
  }
  const { limit } = options
  if (!(Number.isInteger(limit) && limit >= 1 && limit <= MAX_PAGE_LIMIT)) {
    return invalidOption(
      "listPage",
      "limit",
      prefix,
      `limit must be an integer from 1 to ${MAX_PAGE_LIMIT}, received ${describe(limit)}.`
    )
  }
  return undefined
}

/** The settings of a `watch` given options, or the error for options that break the rules. */
export const watchSettings = (
  prefix: string,
  options: WatchOptions
): { readonly initial: boolean; readonly bufferSize: number } | KvInputError => {
  if (options === null || typeof options !== "object") {
    return invalidOption(
      "watch",
      "options",
      prefix,
      `options must be an object such as { initial: true }, received ${describe(options)}.`
    )
  }
  const { bufferSize = DEFAULT_WATCH_BUFFER, initial = false } = options
  if (typeof initial !== "boolean") {
    return invalidOption("watch", "options", prefix, `initial must be a boolean, received ${describe(initial)}.`)
  }
  if (!(Number.isInteger(bufferSize) && bufferSize >= 1 && bufferSize <= MAX_WATCH_BUFFER)) {
    return invalidOption(
      "watch",
      "bufferSize",
      prefix,
      `bufferSize must be an integer from 1 to ${MAX_WATCH_BUFFER}, received ${describe(bufferSize)}.`
    )
  }
  return { initial, bufferSize }
}
