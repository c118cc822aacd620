/**
 * The Redis store itself: how `get`, `set`, `delete` and `list` run on a `RedisAdapter`, with effect-kv's own
 * deadlines and error classification. The public constructors and layers in `RedisKvStore.ts` build it; the client
 * libraries are hidden behind the adapter (`redisClients.ts`).
 *
 * @internal
 */
import calculateSlot from "cluster-key-slot"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Crypto from "node:crypto"
import {
  type BackendReason,
  type BaseKvStore,
  type Expiry,
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

  /**
   * A command off the hot path, as Effect code: the deadline is Effect's, and an interrupted request leaves nothing
   * armed behind it.
   */
  const request = <A>(operation: Operation, key: string, send: () => Promise<A>): Effect.Effect<A, KvBackendError> =>
    Effect.suspend(() =>
      adapter.isReady()
        ? Effect.tryPromise({ try: send, catch: (cause) => failure(operation, key, cause) }).pipe(
          Effect.timeoutOrElse({
            duration: timeoutMs,
            orElse: () => Effect.fail(failure(operation, key, TIMED_OUT))
          })
        )
        : Effect.fail(unavailable(operation, key))
    )

  const call = (key: string, args: ReadonlyArray<string>, readonly = false) =>
    adapter.call(keyPrefix + key, args, readonly)

  /**
   * EVALSHA, and EVAL when the server does not know the script (a restart, a failover to a replica that never ran
   * it, SCRIPT FLUSH): the script cache is an optimisation Redis may drop at any time.
   */
  const evalScript = (script: Script, keys: ReadonlyArray<string>, args: ReadonlyArray<string>) => {
    const full = keys.map((key) => keyPrefix + key)
    const tail = [String(full.length), ...full, ...args]
    return adapter.call(full[0], ["EVALSHA", script.sha, ...tail], false).catch((error) =>
      isNoScript(error) ? adapter.call(full[0], ["EVAL", script.source, ...tail], false) : Promise.reject(error)
    )
  }

  /** The keys' positions grouped by hash slot on a cluster, where one command may not span slots; one group else. */
  const bySlot = (keys: ReadonlyArray<string>): ReadonlyArray<ReadonlyArray<number>> => {
    if (!adapter.cluster) return [keys.map((_, i) => i)]
    const groups = new Map<number, Array<number>>()
    keys.forEach((key, i) => {
      const slot = calculateSlot(keyPrefix + key)
      const group = groups.get(slot)
      if (group === undefined) groups.set(slot, [i])
      else group.push(i)
    })
    return [...groups.values()]
  }

  /** One command per slot group, all in flight at once: one round trip on a standalone server. */
  const perSlot = <A>(
    operation: Operation,
    keys: ReadonlyArray<string>,
    send: (positions: ReadonlyArray<number>) => Promise<A>
  ) =>
    Effect.forEach(bySlot(keys), (positions) => request(operation, keys[positions[0]], () => send(positions)), {
      concurrency: "unbounded"
    })

  const list = (prefix: string): Effect.Effect<ReadonlyArray<string>, KvBackendError> =>
    Effect.callback<ReadonlyArray<string>, KvBackendError>((resume, signal) => {
      if (!adapter.isReady()) return resume(Effect.fail(unavailable("list", prefix)))
      scanAll(prefix, signal).then(
        (keys) => resume(Effect.succeed(keys)),
        (cause) => resume(Effect.fail(failure("list", prefix, cause)))
      )
    })

  const deleteKeys = (operation: Operation, keys: ReadonlyArray<string>) =>
    Effect.map(
      perSlot(operation, keys, (positions) =>
        call(keys[positions[0]], [
          "DEL",
          ...positions.map((i) => keyPrefix + keys[i])
        ])),
      (deleted) => deleted.reduce((sum: number, n) => sum + Number(n), 0)
    )

  return make({
    get: (key) => command<string | null>("get", key, ""),
    set: (key, value, expiry) =>
      expiry === null
        ? command<void>("set", key, value)
        : Effect.asVoid(request("set", key, () => call(key, ["SET", keyPrefix + key, value, ...expiryArgs(expiry)]))),
    delete: (key) => command<void>("delete", key, ""),
    list,
    has: (key) => request("has", key, () => call(key, ["EXISTS", keyPrefix + key], true).then((n) => Number(n) > 0)),
    ttl: (key) =>
      request("ttl", key, () =>
        call(key, ["PTTL", keyPrefix + key], true).then((reply) => {
          const ms = Number(reply)
          return ms === -2 ? null : ms === -1 ? Infinity : ms
        })),
    setIfAbsent: (key, value, expiry) =>
      request(
        "setIfAbsent",
        key,
        () =>
          call(key, ["SET", keyPrefix + key, value, "NX", ...(typeof expiry === "number" ? expiryArgs(expiry) : [])])
            .then((reply) => reply !== null)
      ),
    compareAndSet: (key, expected, next, expiry) =>
      request("compareAndSet", key, () =>
        expected === null && next === null
          ? call(key, ["EXISTS", keyPrefix + key]).then((n) => Number(n) === 0)
          : expected === null
          // A missing key is what SET NX tests, in one command and without a script.
          ? call(key, ["SET", keyPrefix + key, next!, "NX", ...(typeof expiry === "number" ? expiryArgs(expiry) : [])])
            .then((reply) => reply !== null)
          : evalScript(COMPARE_AND_SET, [key], [
            expected,
            next === null ? "0" : "1",
            next ?? "",
            expiry === null ? "" : String(expiry)
          ]).then((reply) => Number(reply) === 1)),
    getMany: (keys) =>
      Effect.map(
        perSlot("getMany", keys, (positions) =>
          call(keys[positions[0]], [
            "MGET",
            ...positions.map((i) => keyPrefix + keys[i])
          ], true).then((values) => [positions, values as ReadonlyArray<string | null>] as const)),
        (groups) => {
          const values = new Array<string | null>(keys.length)
          for (const [positions, replies] of groups) {
            positions.forEach((at, i) => values[at] = replies[i] ?? null)
          }
          return values
        }
      ),
    setMany: (entries, expiry) => {
      const keys = entries.map(([key]) => key)
      return perSlot("setMany", keys, (positions) =>
        expiry === null
          ? call(keys[positions[0]], ["MSET", ...positions.flatMap((i) => [keyPrefix + entries[i][0], entries[i][1]])])
          : evalScript(
            SET_MANY,
            positions.map((i) => keys[i]),
            [String(expiry), ...positions.map((i) => entries[i][1])]
          )).pipe(Effect.asVoid)
    },
    deleteMany: (keys) => Effect.asVoid(deleteKeys("deleteMany", keys)),
    // One SCAN, then deletes in batches that each count what they removed: a key deleted meanwhile is not counted.
    clear: (prefix) =>
      Effect.flatMap(list(prefix), (keys) =>
        Effect.map(
          Effect.forEach(
            chunks(keys.map((key) => prefix + key), CLEAR_BATCH),
            (batch) => deleteKeys("clear", batch),
            { concurrency: 4 }
          ),
          (counts) => counts.reduce((sum, n) => sum + n, 0)
        ))
  })
}

/** Keys per DEL when clearing: large enough to amortise round trips, small enough not to hold the server long. */
const CLEAR_BATCH = 1000

const chunks = <A>(items: ReadonlyArray<A>, size: number): Array<ReadonlyArray<A>> => {
  const result: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < items.length; i += size) result.push(items.slice(i, i + size))
  return result
}

const expiryArgs = (expiry: Expiry): ReadonlyArray<string> =>
  expiry === null ? [] : expiry === "keep" ? ["KEEPTTL"] : ["PX", String(expiry)]

interface Script {
  readonly source: string
  readonly sha: string
}

const script = (source: string): Script => ({ source, sha: Crypto.createHash("sha1").update(source).digest("hex") })

const isNoScript = (error: unknown): boolean => String((error as Error | undefined)?.message).startsWith("NOSCRIPT")

/**
 * Compare-and-set in one atomic step on the key's master. KEYS[1]: the key; ARGV: the expected value, "1" to write
 * ARGV[3] or "0" to delete, and the expiry ("" none, "keep", or milliseconds).
 */
const COMPARE_AND_SET = script(`if redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == "0" then redis.call("DEL", KEYS[1]) return 1 end
if ARGV[4] == "" then redis.call("SET", KEYS[1], ARGV[3])
elseif ARGV[4] == "keep" then redis.call("SET", KEYS[1], ARGV[3], "KEEPTTL")
else redis.call("SET", KEYS[1], ARGV[3], "PX", ARGV[4]) end
return 1`)

/** MSET with an expiry, which MSET lacks. ARGV[1]: "keep" or milliseconds; ARGV[i + 1]: the value of KEYS[i]. */
const SET_MANY = script(`for i, key in ipairs(KEYS) do
  if ARGV[1] == "keep" then redis.call("SET", key, ARGV[i + 1], "KEEPTTL")
  else redis.call("SET", key, ARGV[i + 1], "PX", ARGV[1]) end
end
return #KEYS`)
