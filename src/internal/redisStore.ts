/**
 * The Redis store itself: how `get`, `set`, `delete` and `list` run on a `RedisAdapter`, with effect-kv's own
 * deadlines and error classification. The public constructors and layers in `RedisKvStore.ts` build it; the client
 * libraries are hidden behind the adapter (`redisClients.ts`).
 *
 * @internal
 */
import calculateSlot from "cluster-key-slot"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Crypto from "node:crypto"
import {
  type BaseKvStore,
  type Expiry,
  KvBackendError,
  make,
  type MakeOptions,
  type Operation,
  type Traced,
  tracedPrimitive
} from "../BaseKvStore.ts"
import type { RedisStoreOptions } from "../RedisKvStore.ts"
import { backendError } from "./backendError.ts"
import { describeCause, durationMillis, invalidOption, namespace, positiveInteger } from "./options.ts"
import type { RedisAdapter } from "./redisClients.ts"
import { makeCoalescer, type Payload, type Queued } from "./redisCoalesce.ts"
import { indexKeyNames, makeIndex } from "./redisIndex.ts"
import { redisSubscribe } from "./redisWatch.ts"
import { isTracing, type Telemetry } from "./tracing.ts"

export const DEFAULT_TIMEOUT: Duration.Input = "2 seconds"
export const DEFAULT_CONNECT_TIMEOUT: Duration.Input = "5 seconds"
const DEFAULT_SCAN_COUNT = 1000

/** Escapes the characters SCAN MATCH treats as glob syntax, so the pattern matches the prefix literally. */
const escapeGlob = (literal: string): string => literal.replace(/[*?[\]\\]/g, "\\$&")

export interface Settings {
  readonly keyPrefix: string
  readonly timeoutMs: number
  readonly listTimeoutMs: number
  readonly scanCount: number
  readonly orderedIndex: boolean
}

/** The store's options, checked: throws `KvInputError` naming the first bad one. */
export const settings = (options: RedisStoreOptions): Settings => {
  const timeoutMs = durationMillis("redis", "timeout", options.timeout, DEFAULT_TIMEOUT)
  const orderedIndex = options.orderedIndex ?? false
  if (typeof orderedIndex !== "boolean") {
    throw invalidOption("redis", "orderedIndex", "true or false", options.orderedIndex)
  }
  return {
    keyPrefix: namespace("redis", "keyPrefix", options.keyPrefix ?? ""),
    timeoutMs,
    // One deadline for the whole listing; by default the same as every other operation's.
    listTimeoutMs: durationMillis("redis", "listTimeout", options.listTimeout, timeoutMs),
    scanCount: positiveInteger("redis", "scanCount", options.scanCount ?? DEFAULT_SCAN_COUNT),
    orderedIndex
  }
}

/** A reply from a client configured to return Buffers: Redis stores bytes, and effect-kv writes UTF-8. */
const decode = (reply: unknown): string | null =>
  reply === null || typeof reply === "string"
    ? reply
    : reply instanceof Uint8Array
    ? Buffer.from(reply.buffer, reply.byteOffset, reply.byteLength).toString("utf8")
    : String(reply)

/** The deadline of the commands sent together at the end of one tick. */
interface Tick {
  at: number
}

/**
 * A command in flight: queued for the end of the tick (`redisCoalesce.ts`), then sent. With the store's own timeout
 * it is linked into the store's queue of deadlines, sharing its tick's deadline; with another deadline it has a
 * `timer` of its own.
 */
class InFlight implements Queued {
  prev: InFlight | undefined = undefined
  next: InFlight | undefined = undefined
  timer: ReturnType<typeof setTimeout> | undefined = undefined
  tick: Tick | undefined = undefined
  constructor(
    readonly operation: Operation,
    readonly key: string,
    readonly payload: Payload,
    readonly resume: (effect: Effect.Effect<any, KvBackendError>) => void
  ) {}
}

export const makeStore = (
  adapter: RedisAdapter,
  { keyPrefix, listTimeoutMs, orderedIndex, scanCount, timeoutMs }: Settings,
  telemetry: Telemetry = { system: "redis" }
): BaseKvStore => {
  const timedOut = (operation: Operation, key: string, ms: number) =>
    backendError(operation, key, "Timeout", `Redis did not answer within ${ms} ms`)

  const failure = (operation: Operation, key: string, cause: unknown) =>
    backendError(operation, key, adapter.classify(cause), `Redis command failed: ${describeCause(cause)}`, cause)

  // The deadlines of the commands in flight with the store's own timeout, in order: every command gets the same
  // `timeoutMs`, so the order they were issued in is the order they expire in, and one timer serves them all.
  let head: InFlight | undefined = undefined
  let tail: InFlight | undefined = undefined
  let timer: ReturnType<typeof setTimeout> | undefined = undefined
  // The commands of one tick are sent together at its end, and their deadline counts from then: the clock is read once
  // per tick, not once per command (BENCHMARKS.md, Redis). No timer runs before the end of the tick, so no deadline is
  // looked at before it is set.
  let tick: Tick | undefined = undefined

  const unlink = (entry: InFlight): void => {
    if (entry.timer !== undefined) return clearTimeout(entry.timer)
    if (entry.prev !== undefined) entry.prev.next = entry.next
    else if (head === entry) head = entry.next
    else return // already expired
    if (entry.next !== undefined) entry.next.prev = entry.prev
    else tail = entry.prev
    entry.prev = entry.next = undefined
  }

  const arm = (delay: number): void => {
    timer = setTimeout(expire, delay)
    // A command waiting for its reply is kept alive by its socket; the deadline timer alone never holds the process.
    timer.unref()
  }

  const expire = (): void => {
    timer = undefined
    const now = Date.now()
    while (head !== undefined && head.tick!.at <= now) {
      const entry = head
      unlink(entry)
      entry.resume(Effect.fail(timedOut(entry.operation, entry.key, timeoutMs)))
    }
    if (head !== undefined) arm(head.tick!.at - now)
  }

  // A caller interrupted or timed out meanwhile has resumed already: its resume is a no-op, and nobody else's
  // outcome depends on it.
  const enqueue = makeCoalescer<InFlight>(adapter, keyPrefix, {
    sending: () => {
      if (tick === undefined) return
      tick.at = Date.now() + timeoutMs
      tick = undefined
    },
    succeed: (entry, reply) => {
      unlink(entry)
      entry.resume(
        typeof entry.payload === "function"
          ? Effect.succeed(reply)
          : entry.operation === "get"
          ? Effect.succeed(decode(reply))
          : Effect.void
      )
    },
    fail: (entry, cause) => {
      unlink(entry)
      entry.resume(Effect.fail(failure(entry.operation, entry.key, cause)))
    }
  })

  /**
   * Issues one command with a deadline of `ms`; it is sent at the end of the tick, with the others issued in it, and
   * resumes with its outcome.
   *
   * This is the hot path, written for the fewest allocations and the least work per command: with a hundred commands
   * in flight, garbage collection is the largest cost after the client's own work. A timer per command, cleared on
   * interruption by a finalizer, cost measurably more CPU per get at 100 in flight than no cleanup (BENCHMARKS.md,
   * Redis); the shared queue of deadlines above needs no timer and no finalizer per command, so an interrupted command leaves nothing armed behind it: its entry is dropped at its
   * deadline, when its resume is a no-op. A deadline of another length (the rest of a deadline after waiting for a
   * first connection: a cold path) gets a timer of its own, cleared on interruption.
   *
   * An interrupted command that is queued is still sent, as one that had reached the socket already would be.
   */
  const send = <A>(
    operation: Operation,
    key: string,
    payload: Payload,
    ms: number,
    resume: (effect: Effect.Effect<A, KvBackendError>) => void
  ): Effect.Effect<void> | undefined => {
    const entry = new InFlight(operation, key, payload, resume)
    if (ms !== timeoutMs) {
      const own = entry.timer = setTimeout(() => resume(Effect.fail(timedOut(operation, key, ms))), ms)
      enqueue(entry)
      return Effect.sync(() => clearTimeout(own))
    }
    entry.tick = tick ??= { at: Infinity }
    if (tail === undefined) head = tail = entry
    else {
      entry.prev = tail
      tail = tail.next = entry
    }
    if (timer === undefined) arm(ms)
    enqueue(entry)
    return undefined
  }

  /**
   * Waits until a client that has never been ready becomes ready (`new Redis(url)` used at once, or a node-redis
   * client whose `connect()` is not awaited yet), at most `ms`. A client that has been ready and is not ready now is
   * disconnected: the operation fails at once instead of waiting in a queue for the reconnection. The check of
   * `isReady` before every command keeps a client that queues while disconnected (a caller's own client, or
   * NodeRedis's) from holding the command until it reconnects.
   */
  const whenReady = (operation: Operation, key: string, ms: number): Effect.Effect<void, KvBackendError> => {
    if (adapter.isReady()) return Effect.void
    const closed = adapter.closed()
    if (closed !== undefined) {
      return Effect.fail(
        backendError(
          operation,
          key,
          "Failure",
          closed === "layer"
            ? "the store was used after its layer closed; use it only within the scope of the layer that provides it"
            : "the Redis client is closed (closed by its owner, or it gave up reconnecting)"
        )
      )
    }
    if (adapter.hasBeenReady()) {
      return Effect.fail(
        backendError(operation, key, "Unavailable", "Redis is not connected (it is down, unreachable or reconnecting)")
      )
    }
    return Effect.callback<void>((resume) => {
      const cancel = adapter.onReady(() => resume(Effect.void))
      if (adapter.isReady()) {
        cancel()
        return resume(Effect.void)
      }
      return Effect.sync(cancel)
    }).pipe(
      Effect.timeoutOrElse({
        duration: ms,
        orElse: () =>
          Effect.fail(
            backendError(
              operation,
              key,
              "Unavailable",
              `the Redis client has never connected and did not become ready within ${ms} ms (is connect() called, ` +
                "and is Redis reachable?)"
            )
          )
      })
    )
  }

  /**
   * A command with the per-command deadline: `payload` is the value of a get/set/delete, or a function that sends
   * any other command (the operations beyond the hot path share the same timer and readiness logic: Effect's own
   * `timeoutOrElse` there cost several times the raw client's time per compareAndSet at 100 in flight).
   *
   * With `traced` (a point operation, see `tracedPrimitive`), the command checks for a tracer in the same step and,
   * when one is installed, runs again inside its span: an untraced get costs one fiber step instead of two
   * (BENCHMARKS.md, Redis).
   */
  const command = <A>(
    operation: Operation,
    key: string,
    payload: Payload,
    traced?: Traced
  ): Effect.Effect<A, KvBackendError> =>
    Effect.callback<A, KvBackendError>((resume) => {
      if (traced !== undefined) {
        const fiber = Fiber.getCurrent()
        if (fiber !== undefined && isTracing(fiber)) return resume(traced(command<A>(operation, key, payload)))
      }
      if (adapter.isReady()) return send(operation, key, payload, timeoutMs, resume)
      // The cold path: wait for a first connection within the same deadline, or fail as whenReady says.
      const started = Date.now()
      resume(Effect.andThen(
        whenReady(operation, key, timeoutMs),
        Effect.callback<A, KvBackendError>((resume) =>
          send(operation, key, payload, Math.max(1, timeoutMs - (Date.now() - started)), resume)
        )
      ))
    })

  /** One call with the per-command deadline, for the calls of a listing. */
  const attempt = <A>(prefix: string, call: () => Promise<A>): Effect.Effect<A, KvBackendError> =>
    Effect.tryPromise({ try: call, catch: (cause) => failure("list", prefix, cause) }).pipe(
      Effect.timeoutOrElse({ duration: timeoutMs, orElse: () => Effect.fail(timedOut("list", prefix, timeoutMs)) })
    )

  /**
   * Every master is scanned at once, page by page; the first failure interrupts the other scans (no further pages
   * are requested from them), and the whole listing shares one deadline, `listTimeout`.
   */
  const list = (prefix: string): Effect.Effect<ReadonlyArray<string>, KvBackendError> =>
    Effect.gen(function*() {
      yield* whenReady("list", prefix, listTimeoutMs)
      const full = keyPrefix + prefix
      const pattern = `${escapeGlob(full)}*`
      const found = new Set<string>()
      // The ordered index's own keys, should a store with the index have written this namespace.
      const index = new Set(indexKeyNames(keyPrefix))
      const scans = yield* attempt(prefix, adapter.masters)
      yield* Effect.forEach(scans, (scan) =>
        Effect.gen(function*() {
          let cursor = "0"
          do {
            const [next, keys] = yield* attempt(prefix, () => scan(cursor, pattern, scanCount))
            // Slicing, not `replace`: only the leading occurrence is the prefix. The check guards against keys that
            // reached the namespace without going through effect-kv (binary keys decoded lossily, for one). A Redis
            // key equal to the namespace itself (or "" without one) would be the store's key "", which no operation
            // accepts.
            for (const raw of keys) {
              const key = decode(raw)!
              if (key.startsWith(full) && key.length > keyPrefix.length && !index.has(key)) {
                found.add(key.slice(full.length))
              }
            }
            cursor = next
          } while (cursor !== "0")
        }), { concurrency: "unbounded", discard: true })
      return [...found].sort()
    }).pipe(
      Effect.timeoutOrElse({
        duration: listTimeoutMs,
        orElse: () =>
          Effect.fail(backendError("list", prefix, "Timeout", `the listing did not finish within ${listTimeoutMs} ms`))
      })
    )

  const cold = <A>(operation: Operation, key: string, run: () => Promise<A>): Effect.Effect<A, KvBackendError> =>
    command<A>(operation, key, run)

  const call = (key: string, args: ReadonlyArray<string>, readonly = false) =>
    adapter.call(keyPrefix + key, args, readonly)

  /**
   * EVALSHA, and EVAL when the server does not know the script (a restart, a failover to a replica that never ran
   * it, SCRIPT FLUSH): the script cache is an optimisation Redis may drop at any time.
   */
  const evalScript = <A>(
    script: Script,
    keys: ReadonlyArray<string>,
    args: ReadonlyArray<string>,
    map: (reply: unknown) => A
  ): Promise<A> => {
    // Built in one array, mapped in one `then`: at 100 compareAndSets in flight every allocation here shows.
    const command = new Array<string>(3 + keys.length + args.length)
    command[0] = "EVALSHA"
    command[1] = script.sha
    command[2] = String(keys.length)
    for (let i = 0; i < keys.length; i++) command[3 + i] = keyPrefix + keys[i]
    for (let i = 0; i < args.length; i++) command[3 + keys.length + i] = args[i]
    return adapter.call(command[3], command, false).then(map, (error) => {
      if (!isNoScript(error)) throw error
      command[0] = "EVAL"
      command[1] = script.source
      return adapter.call(command[3], command, false).then(map)
    })
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
  ) => {
    const groups = bySlot(keys)
    // One group (always, on a standalone server): no fibers to fork for it.
    return groups.length === 1
      ? Effect.map(cold(operation, keys[groups[0][0]], () => send(groups[0])), (result) => [result])
      : Effect.forEach(groups, (positions) => cold(operation, keys[positions[0]], () => send(positions)), {
        concurrency: "unbounded"
      })
  }

  const deleteKeys = (operation: Operation, keys: ReadonlyArray<string>) =>
    Effect.map(
      perSlot(operation, keys, (positions) =>
        call(keys[positions[0]], [
          "DEL",
          ...positions.map((i) => keyPrefix + keys[i])
        ])),
      (deleted) => deleted.reduce((sum: number, n) => sum + Number(n), 0)
    )

  const primitives: MakeOptions = {
    telemetry,
    subscribe: redisSubscribe(adapter, keyPrefix),
    get: tracedPrimitive((traced, key: string) => command<string | null>("get", key, "", traced)),
    set: tracedPrimitive((traced, key: string, value: string, expiry: Expiry) => {
      if (expiry === null) return command<void>("set", key, value, traced)
      const set = Effect.asVoid(
        cold("set", key, () => call(key, ["SET", keyPrefix + key, value, ...expiryArgs(expiry)]))
      )
      return traced === undefined ? set : traced(set)
    }),
    delete: tracedPrimitive((traced, key: string) => command<void>("delete", key, "", traced)),
    list,
    has: (key) => cold("has", key, () => call(key, ["EXISTS", keyPrefix + key], true).then((n) => Number(n) > 0)),
    ttl: (key) =>
      cold("ttl", key, () =>
        call(key, ["PTTL", keyPrefix + key], true).then((reply) => {
          const ms = Number(reply)
          return ms === -2 ? null : ms === -1 ? Infinity : ms
        })),
    setIfAbsent: (key, value, expiry) =>
      cold(
        "setIfAbsent",
        key,
        () =>
          call(key, ["SET", keyPrefix + key, value, "NX", ...(typeof expiry === "number" ? expiryArgs(expiry) : [])])
            .then((reply) => reply !== null)
      ),
    compareAndSet: (key, expected, next, expiry) =>
      cold("compareAndSet", key, () =>
        expected === null && next === null
          ? call(key, ["EXISTS", keyPrefix + key]).then((n) => Number(n) === 0)
          : expected === null
          // A missing key is what SET NX tests, in one command and without a script.
          ? call(key, ["SET", keyPrefix + key, next!, "NX", ...(typeof expiry === "number" ? expiryArgs(expiry) : [])])
            .then((reply) => reply !== null)
          : evalScript(
            COMPARE_AND_SET,
            [key],
            [expected, next === null ? "0" : "1", next ?? "", expiry === null ? "" : String(expiry)],
            isOne
          )),
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
            positions.forEach((at, i) => values[at] = decode(replies[i]))
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
            [String(expiry), ...positions.map((i) => entries[i][1])],
            Number
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
  }
  // With the ordered index, every write and listing goes through its scripts; the reads stay as they are.
  return make(
    orderedIndex ? { ...primitives, ...makeIndex({ adapter, cold, keyPrefix, scanCount }) } : primitives
  )
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

const isOne = (reply: unknown): boolean => Number(reply) === 1

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

export { backendError }
