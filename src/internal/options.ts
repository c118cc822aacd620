/**
 * The rules every backend applies to its options, in one place, so they cannot drift apart: what a duration option
 * accepts, what a namespace is, how a URL is shown in a message, and the one error a bad option fails with.
 *
 * **One error.** A bad option is a `KvInputError` with reason `"InvalidOption"`, operation `"options"` and the option's
 * name as its `argument`, with a message of one shape: `effect-kv <backend>: <option> must be <what it accepts>,
 * received <what it got>`. A layer fails with it in its error channel while it builds, before it opens any connection,
 * so a typo is never reported as an outage; a plain constructor (`makeMemoryBaseKvStore`, `makeRedisBaseKvStore`,
 * `withPrefix`) throws it at once.
 *
 * **Durations** (`timeout`, `connectTimeout`, `purgeInterval`, ...) are what `Duration.Input` accepts (milliseconds,
 * a `Duration`, or a string such as `"2 seconds"`) from 1 ms to 2^31 - 1 ms (about 24.8 days, the longest timer Node
 * keeps), rounded up to whole milliseconds: the rule a write's `ttl` follows.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { isKvInputError, isValidPrefix, KvInputError, MAX_KEY_LENGTH } from "../BaseKvStore.ts"

/** What a thrown or failed value says, for messages. */
export const describeCause = (cause: unknown): string => cause instanceof Error ? cause.message : String(cause)

/** A value as a message shows it: strings quoted, so `""` and `" "` are visible. */
export const describeValue = (value: unknown): string =>
  typeof value === "string"
    ? JSON.stringify(value)
    : typeof value === "function"
    ? "a function"
    : Array.isArray(value)
    ? "an array"
    : value !== null && typeof value === "object"
    ? `an object${value.constructor?.name && value.constructor.name !== "Object" ? ` (${value.constructor.name})` : ""}`
    : String(value)

/**
 * The error of a bad option, for a message that is not of the form "must be ..., received ..." (two options that
 * exclude each other, a required variable that is missing).
 */
export const optionError = (backend: string, option: string, message: string): KvInputError =>
  new KvInputError({
    operation: "options",
    argument: option,
    reason: "InvalidOption",
    key: undefined,
    message: `effect-kv ${backend}: ${message}`
  })

/**
 * The error of an option that is not what it must be. `received` is shown as it is: pass a redacted form (or none)
 * for anything that may hold a secret.
 */
export const invalidOption = (backend: string, option: string, accepts: string, received: unknown): KvInputError =>
  optionError(backend, option, `${option} must be ${accepts}, received ${describeValue(received)}`)

/**
 * Runs option checks that throw `KvInputError`, as an effect that fails with it: how layers check their options when
 * they build, before they connect. Anything else thrown is a defect.
 */
export const checkOptions = <A>(check: () => A): Effect.Effect<A, KvInputError> =>
  Effect.suspend(() => {
    try {
      return Effect.succeed(check())
    } catch (error) {
      if (isKvInputError(error)) return Effect.fail(error)
      throw error
    }
  })

/** The longest delay `setTimeout` keeps: a longer one fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1

const DURATION = "a duration from 1 ms to about 24 days (milliseconds, a Duration or a string such as \"2 seconds\")"

/** A duration option in whole milliseconds (`fallback` when it is not given); throws `KvInputError` otherwise. */
export const durationMillis = (
  backend: string,
  option: string,
  input: Duration.Input | undefined,
  fallback: Duration.Input
): number => {
  let duration: Option.Option<Duration.Duration>
  try {
    duration = Duration.fromInput(input ?? fallback)
  } catch {
    // Duration.fromInput throws on some malformed objects instead of returning None; both mean "not a duration".
    duration = Option.none()
  }
  const ms = Option.isSome(duration) ? Math.ceil(Duration.toMillis(duration.value)) : NaN
  if (!(ms >= 1 && ms <= MAX_TIMER_MS)) throw invalidOption(backend, option, DURATION, input)
  return ms
}

/** An integer option of at least 1; throws `KvInputError` otherwise. */
export const positiveInteger = (backend: string, option: string, value: unknown): number => {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
    throw invalidOption(backend, option, "a positive integer", value)
  }
  return value
}

/**
 * A namespace prepended to keys (a backend's `keyPrefix`, a view's prefix): a well-formed string of at most
 * `MAX_KEY_LENGTH` code units, as a listing's prefix. `""` is no namespace.
 */
export const namespace = (backend: string, option: string, prefix: unknown): string => {
  if (isValidPrefix(prefix)) return prefix
  const accepts = `a string of at most ${MAX_KEY_LENGTH} characters without lone surrogates`
  // Not the string itself: it may be megabytes long.
  throw typeof prefix === "string"
    ? optionError(backend, option, `${option} must be ${accepts}, received a string of ${prefix.length} characters`)
    : invalidOption(backend, option, accepts, prefix)
}

/**
 * The URL without its password, for messages, spans and errors. Everything between `//` and the last `@` is the
 * user information (a password may hold `@`, `/` or `:` unescaped, and URL parsers take the last `@`); the user name
 * before its first `:` is kept, the rest becomes `***`. A URL with a user name only is shown as it is; one whose
 * query holds an `@` loses more than its password, never less.
 */
export const redactUrl = (url: string): string => {
  const start = url.indexOf("//")
  const at = url.lastIndexOf("@")
  if (start < 0 || at < start) return url
  const colon = url.indexOf(":", start + 2)
  if (colon < 0 || colon > at) return url
  return `${url.slice(0, colon)}:***${url.slice(at)}`
}
