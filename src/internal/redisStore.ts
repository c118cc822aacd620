/**
 * The Redis store itself: how `get`, `set`, `delete` and `list` run on a `RedisAdapter`, with effect-kv's own
 * deadlines and error classification. The public constructors and layers in `RedisKvStore.ts` build it; the client
 * libraries are hidden behind the adapter (`redisClients.ts`).
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import {
  type BackendReason,
  type BaseKvStore,
  isValidPrefix,
  KvBackendError,
  make,
  MAX_KEY_LENGTH,
  type Operation
} from "../BaseKvStore.ts"
import type { RedisStoreOptions } from "../RedisKvStore.ts"
import type { RedisAdapter } from "./redisClients.ts"

export const DEFAULT_TIMEOUT: Duration.Input = "2 seconds"
export const DEFAULT_CONNECT_TIMEOUT: Duration.Input = "5 seconds"
const DEFAULT_SCAN_COUNT = 1000

/** Escapes the characters SCAN MATCH treats as glob syntax, so the pattern matches the prefix literally. */
const escapeGlob = (literal: string): string => literal.replace(/[*?[\]\\]/g, "\\$&")

export const millis = (name: string, input: Duration.Input | undefined, fallback: Duration.Input): number => {
  const ms = Duration.toMillis(input ?? fallback)
  if (!(ms > 0 && ms < 2 ** 31)) {
    throw new TypeError(`effect-kv redis: ${name} must be a positive duration below 24 days`)
  }
  return ms
}

export interface Settings {
  readonly keyPrefix: string
  readonly timeoutMs: number
  readonly scanCount: number
}

export const settings = (options: RedisStoreOptions): Settings => {
  const keyPrefix = options.keyPrefix ?? ""
  if (!isValidPrefix(keyPrefix)) {
    throw new TypeError(
      `effect-kv redis: keyPrefix must be a well-formed string of at most ${MAX_KEY_LENGTH} characters`
    )
  }
  const scanCount = options.scanCount ?? DEFAULT_SCAN_COUNT
  if (!(Number.isSafeInteger(scanCount) && scanCount > 0)) {
    throw new TypeError(`effect-kv redis: scanCount must be a positive integer, received ${String(scanCount)}`)
  }
  return { keyPrefix, timeoutMs: millis("timeout", options.timeout, DEFAULT_TIMEOUT), scanCount }
}

export const describeCause = (cause: unknown): string => cause instanceof Error ? cause.message : String(cause)

export const backendError = (
  operation: Operation | "connect",
  key: string | undefined,
  reason: BackendReason,
  detail: string,
  cause?: unknown
) =>
  new KvBackendError({
    operation,
    key,
    reason,
    message: `${operation}${key === undefined ? "" : `(${JSON.stringify(key)})`}: ${detail}`,
    ...(cause === undefined ? {} : { cause })
  })

const TIMED_OUT = Symbol("timed out")

export const makeStore = (adapter: RedisAdapter, { keyPrefix, scanCount, timeoutMs }: Settings): BaseKvStore => {
  const unavailable = (operation: Operation, key: string) =>
    backendError(operation, key, "Unavailable", "Redis is not connected (it is down, unreachable or reconnecting)")

  const failure = (operation: Operation, key: string, cause: unknown) =>
    cause === TIMED_OUT
      ? backendError(operation, key, "Timeout", `Redis did not answer within ${timeoutMs} ms`)
      : backendError(operation, key, adapter.classify(cause), `Redis command failed: ${describeCause(cause)}`, cause)

  const send = (operation: "get" | "set" | "delete", key: string, value: string): Promise<unknown> =>
    operation === "get"
      ? adapter.get(keyPrefix + key)
      : operation === "set"
      ? adapter.set(keyPrefix + key, value)
      : adapter.del(keyPrefix + key)

  /**
   * One command with a deadline. The check of `isReady` keeps a client that queues while disconnected (a caller's own
   * client, or NodeRedis's) from holding the command until it reconnects.
   *
   * This is the hot path, written for the fewest allocations per command: with a hundred commands in flight, garbage
   * collection is the largest cost after the client's own work. A timer per command is cheaper than it looks (Node
   * keeps timers of one duration in one list); an interrupted command's timer just fires into a resumed fiber.
   */
  const command = <A>(
    operation: "get" | "set" | "delete",
    key: string,
    value: string
  ): Effect.Effect<A, KvBackendError> =>
    Effect.callback<A, KvBackendError>((resume) => {
      if (!adapter.isReady()) return resume(Effect.fail(unavailable(operation, key)))
      const timer = setTimeout(() => resume(Effect.fail(failure(operation, key, TIMED_OUT))), timeoutMs)
      let reply: Promise<unknown>
      try {
        reply = send(operation, key, value)
      } catch (cause) {
        clearTimeout(timer)
        return resume(Effect.fail(failure(operation, key, cause)))
      }
      reply.then((result) => {
        clearTimeout(timer)
        resume(operation === "get" ? Effect.succeed(result as A) : Effect.void as Effect.Effect<A>)
      }, (cause) => {
        clearTimeout(timer)
        resume(Effect.fail(failure(operation, key, cause)))
      })
    })

  /** A promise with a deadline, for the many SCAN calls of one `list`. */
  const bounded = <A>(promise: Promise<A>): Promise<A> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(TIMED_OUT), timeoutMs)
      promise.then((value) => {
        clearTimeout(timer)
        resolve(value)
      }, (cause) => {
        clearTimeout(timer)
        reject(cause)
      })
    })

  const scanAll = async (prefix: string, signal: AbortSignal): Promise<Array<string>> => {
    const full = keyPrefix + prefix
    const pattern = `${escapeGlob(full)}*`
    const found = new Set<string>()
    const scans = await bounded(adapter.masters())
    await Promise.all(scans.map(async (scan) => {
      let cursor = "0"
      do {
        if (signal.aborted) return
        const [next, keys] = await bounded(scan(cursor, pattern, scanCount))
        // Slicing, not `replace`: only the leading occurrence is the prefix. The check guards against keys that
        // reached the namespace without going through effect-kv (binary keys decoded lossily, for one). A Redis key
        // equal to the namespace itself (or "" without one) would be the store's key "", which no operation accepts.
        for (const key of keys) {
          if (key.startsWith(full) && key.length > keyPrefix.length) found.add(key.slice(full.length))
        }
        cursor = next
      } while (cursor !== "0")
    }))
    return [...found].sort()
  }

  return make({
    get: (key) => command<string | null>("get", key, ""),
    set: (key, value) => command<void>("set", key, value),
    delete: (key) => command<void>("delete", key, ""),
    list: (prefix) =>
      Effect.callback<ReadonlyArray<string>, KvBackendError>((resume, signal) => {
        if (!adapter.isReady()) return resume(Effect.fail(unavailable("list", prefix)))
        scanAll(prefix, signal).then(
          (keys) => resume(Effect.succeed(keys)),
          (cause) => resume(Effect.fail(failure("list", prefix, cause)))
        )
      })
  })
}
