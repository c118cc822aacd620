/**
 * Coalescing of the Redis store's point operations. The gets, sets without ttl and deletes issued in one turn of the
 * event loop go to Redis as one `MGET`, `MSET` or `DEL` per hash slot, instead of one command each: Redis parses one
 * command instead of a hundred and the client decodes one reply, which is how effect-kv at 100 operations in flight
 * costs less per operation than the raw client it runs on (bench/redis.ts, BENCHMARKS.md).
 *
 * What each caller sees does not change:
 * - **Its own result and error.** Replies are split per caller; a batch that fails fails each of its callers with an
 *   error naming that caller's own operation and key. The store keeps each caller's deadline and interruption.
 * - **No delay.** The queue is flushed at the end of the current tick (`process.nextTick`), never on a timer: a lone
 *   operation goes out in the same tick as a plain `GET`/`SET`/`DEL`, just as node-redis itself (which writes on
 *   `setImmediate`) would have sent it.
 * - **Order per key.** Commands are sent in groups, in an order where every operation on a key comes after the earlier
 *   operations on that key (within one `MSET` the later pair wins, as it would have). Any other command (`EVALSHA`,
 *   `SET NX`, a batch of the caller's own...) is a barrier: nothing issued before it is sent after it, and nothing
 *   issued after it before it. A standalone server runs one connection's commands in order, so there the operations
 *   of one tick run in the order they were issued, as with the raw client. On a cluster the clients themselves do not
 *   keep that order between commands issued together (node-redis v6 routes DEL, MGET and MSET through more steps
 *   than GET; ioredis reorders the first commands to a node), with or without coalescing; what holds there, as
 *   everywhere, is linearizability: an operation issued after another completed sees it.
 * - **A key of another type.** `GET` of a list fails with `WRONGTYPE`, but `MGET` reads it as missing. So a batch's
 *   missing keys are checked with one `EXISTS` (only when some are missing); if any of them exists after all, those
 *   callers are answered by a `GET` of their own, which returns the value written meanwhile or fails with
 *   `WRONGTYPE`, exactly as a lone get would. Each answer is what the key held at some moment during the caller's
 *   operation, so reads stay linearizable; a batch with misses costs a second round trip, one without costs one.
 * - **Slot migrations.** A multi-key command on a slot being migrated may be refused with `TRYAGAIN` where single
 *   commands follow the `ASK` redirection: such a batch is sent again as single commands. That works with
 *   node-redis; ioredis first retries the batch itself for about 1.6 s, and the single commands sent after that fail
 *   with "Too many Cluster redirections" (a known gap: with ioredis, a batch over keys on both sides of a migration
 *   fails `Unavailable`). `MOVED`, `ASK` and failovers are otherwise the clients' business, as for any command.
 *
 * @internal
 */
import calculateSlot from "cluster-key-slot"
import type { Operation } from "../BaseKvStore.ts"
import type { RedisAdapter } from "./redisClients.ts"

/** What an operation sends: the value of a get/set/delete (coalesced), or a function sending any other command. */
export type Payload = string | (() => Promise<unknown>)

/** An operation waiting for the end of the tick. */
export interface Queued {
  readonly operation: Operation
  readonly key: string
  readonly payload: Payload
}

/** Where the outcome of each queued operation goes. */
export interface Sink<Q extends Queued> {
  /** Called once per tick, as the tick's operations are about to be sent. */
  readonly sending: () => void
  /** `reply` is the raw reply: the value (or `null`) of a get, the client's reply to anything else. */
  readonly succeed: (entry: Q, reply: unknown) => void
  readonly fail: (entry: Q, cause: unknown) => void
}

/**
 * Keys per batch command. Large enough that at any realistic concurrency a tick's operations go in a few commands,
 * small enough that one `MGET` does not hold the server (or a reply buffer) for long.
 */
export const MAX_BATCH = 512

/**
 * Characters of keys and values per `MSET`. At 100 sets in flight with 200-character values, one 25 KB `MSET` per tick
 * cost as much per set as the raw client's hundred `SET`s; cut at 16 K characters, about three quarters as much
 * (BENCHMARKS.md, Redis). Small values still go in one `MSET`, where cutting gained nothing.
 */
export const MAX_SET_CHARS = 16 * 1024

const GET = 0
const SET = 1
const DEL = 2
const OTHER = 3
type Batched = typeof GET | typeof SET | typeof DEL
type Kind = Batched | typeof OTHER

const COMMANDS = ["MGET", "MSET", "DEL"] as const

const kindOf = (entry: Queued): Kind =>
  typeof entry.payload === "function"
    ? OTHER
    : entry.operation === "get"
    ? GET
    : entry.operation === "set"
    ? SET
    : DEL

const SLOTS = 16384

/** One command to send: a batch of one kind and one slot, or one other operation. */
interface Group<Q> {
  readonly kind: Kind
  readonly entries: Array<Q>
}

// ioredis retries TRYAGAIN itself (`retryDelayOnTryAgain`, 100 ms, up to `maxRedirections`, 16) and then rejects
// with "Too many Cluster redirections. Last error: ReplyError: TRYAGAIN ...".
const isTryAgain = (cause: unknown): boolean => String((cause as Error | undefined)?.message).includes("TRYAGAIN")

/** `process.nextTick` where there is one: it runs once the microtasks queued by the current tick have run. */
const atEndOfTick: (f: () => void) => void = typeof process === "object" && typeof process.nextTick === "function"
  ? (f) => process.nextTick(f)
  : queueMicrotask

/**
 * A function that queues one operation; the queue is sent at the end of the tick. `keyPrefix` is the store's
 * namespace, prepended to every key.
 */
export const makeCoalescer = <Q extends Queued>(
  adapter: RedisAdapter,
  keyPrefix: string,
  sink: Sink<Q>
): (entry: Q) => void => {
  let queue: Array<Q> = []
  let scheduled = false

  /** One operation as its own command: a plain GET, SET or DEL, or the other command it sends. */
  const single = (entry: Q): void => {
    const payload = entry.payload
    let reply: Promise<unknown>
    try {
      reply = typeof payload === "function"
        ? payload()
        : entry.operation === "get"
        ? adapter.get(keyPrefix + entry.key)
        : entry.operation === "set"
        ? adapter.set(keyPrefix + entry.key, payload)
        : adapter.del(keyPrefix + entry.key)
    } catch (cause) {
      sink.fail(entry, cause)
      return
    }
    reply.then((result) => sink.succeed(entry, result), (cause) => sink.fail(entry, cause))
  }

  const failAll = (entries: ReadonlyArray<Q>, cause: unknown): void => {
    for (let i = 0; i < entries.length; i++) sink.fail(entries[i], cause)
  }

  /** The missing keys of an MGET: missing, unless EXISTS finds one (another type, or written since). */
  const checkMissing = (entries: ReadonlyArray<Q>): void => {
    if (entries.length === 1) return single(entries[0])
    const args = new Array<string>(entries.length + 1)
    args[0] = "EXISTS"
    for (let i = 0; i < entries.length; i++) args[i + 1] = keyPrefix + entries[i].key
    let reply: Promise<unknown>
    try {
      reply = adapter.call(args[1], args, true)
    } catch (cause) {
      return failAll(entries, cause)
    }
    reply.then((found) => {
      if (Number(found) === 0) { for (let i = 0; i < entries.length; i++) sink.succeed(entries[i], null) }
      else for (let i = 0; i < entries.length; i++) single(entries[i])
    }, (cause) => failAll(entries, cause))
  }

  const got = (entries: ReadonlyArray<Q>, values: ReadonlyArray<unknown>): void => {
    let missing: Array<Q> | undefined
    for (let i = 0; i < entries.length; i++) {
      const value = values[i]
      if (value === null || value === undefined) (missing ??= []).push(entries[i])
      else sink.succeed(entries[i], value)
    }
    if (missing !== undefined) checkMissing(missing)
  }

  /** One MGET, MSET or DEL for operations of one kind on one slot, in the order they were issued. */
  const batch = (kind: Batched, entries: Array<Q>): void => {
    if (entries.length === 1) return single(entries[0])
    const n = entries.length
    const args = new Array<string>(kind === SET ? 1 + 2 * n : 1 + n)
    args[0] = COMMANDS[kind]
    if (kind === SET) {
      for (let i = 0; i < n; i++) {
        args[1 + 2 * i] = keyPrefix + entries[i].key
        args[2 + 2 * i] = entries[i].payload as string
      }
    } else {
      for (let i = 0; i < n; i++) args[1 + i] = keyPrefix + entries[i].key
    }
    let reply: Promise<unknown>
    try {
      reply = adapter.call(args[1], args, kind === GET)
    } catch (cause) {
      return failAll(entries, cause)
    }
    reply.then(
      kind === GET
        ? (values) => got(entries, values as ReadonlyArray<unknown>)
        : (result) => {
          for (let i = 0; i < n; i++) sink.succeed(entries[i], result)
        },
      (cause) => isTryAgain(cause) ? entries.forEach(single) : failAll(entries, cause)
    )
  }

  /** Operations of one kind: by slot on a cluster, each slot's in commands as `chunked` cuts them. */
  const sameKind = (kind: Kind, entries: Array<Q>): void => {
    if (kind === OTHER) {
      for (let i = 0; i < entries.length; i++) single(entries[i])
      return
    }
    if (!adapter.cluster) return chunked(kind, entries)
    const bySlot = new Map<number, Array<Q>>()
    for (let i = 0; i < entries.length; i++) {
      const slot = calculateSlot(keyPrefix + entries[i].key)
      const group = bySlot.get(slot)
      if (group === undefined) bySlot.set(slot, [entries[i]])
      else group.push(entries[i])
    }
    for (const group of bySlot.values()) chunked(kind, group)
  }

  /** In commands of at most MAX_BATCH keys and, for sets, MAX_SET_CHARS characters, sent in order. */
  const chunked = (kind: Batched, entries: Array<Q>): void => {
    if (kind === SET) {
      let start = 0
      let chars = 0
      for (let i = 0; i < entries.length; i++) {
        const size = keyPrefix.length + entries[i].key.length + (entries[i].payload as string).length
        if (i > start && (chars + size > MAX_SET_CHARS || i - start === MAX_BATCH)) {
          batch(kind, entries.slice(start, i))
          start = i
          chars = 0
        }
        chars += size
      }
      return batch(kind, start === 0 ? entries : entries.slice(start))
    }
    if (entries.length <= MAX_BATCH) return batch(kind, entries)
    for (let i = 0; i < entries.length; i += MAX_BATCH) batch(kind, entries.slice(i, i + MAX_BATCH))
  }

  /**
   * Operations of several kinds: each goes into the first group of its kind and slot that comes after every earlier
   * operation on its key (a group of its own kind holding that operation will do) and after the last other command.
   */
  const mixed = (entries: ReadonlyArray<Q>): void => {
    const groups: Array<Group<Q>> = []
    // Group positions by kind and slot, ascending; the group of each key's last operation; the last barrier's end.
    const open = new Map<number, Array<number>>()
    const last = new Map<string, number>()
    let floor = 0
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]
      const kind = kindOf(entry)
      if (kind === OTHER) {
        groups.push({ kind, entries: [entry] })
        floor = groups.length
        continue
      }
      const id = kind * SLOTS + (adapter.cluster ? calculateSlot(keyPrefix + entry.key) : 0)
      const min = Math.max(floor, last.get(entry.key) ?? 0)
      let candidates = open.get(id)
      let target = -1
      if (candidates !== undefined) {
        for (let c = 0; c < candidates.length; c++) {
          const at = candidates[c]
          if (at >= min && groups[at].entries.length < MAX_BATCH) {
            target = at
            break
          }
        }
      }
      if (target < 0) {
        target = groups.length
        groups.push({ kind, entries: [] })
        if (candidates === undefined) open.set(id, candidates = [])
        candidates.push(target)
      }
      groups[target].entries.push(entry)
      last.set(entry.key, target)
    }
    for (let g = 0; g < groups.length; g++) {
      const group = groups[g]
      if (group.kind === OTHER) single(group.entries[0])
      else chunked(group.kind, group.entries)
    }
  }

  const flush = (): void => {
    scheduled = false
    sink.sending()
    const entries = queue
    if (entries.length === 1) {
      // A lone operation, the common case at low concurrency: the queue is reused, nothing is allocated.
      const entry = entries[0]
      entries.length = 0
      return single(entry)
    }
    queue = []
    const kind = kindOf(entries[0])
    for (let i = 1; i < entries.length; i++) {
      if (kindOf(entries[i]) !== kind) return mixed(entries)
    }
    sameKind(kind, entries)
  }

  return (entry) => {
    queue.push(entry)
    if (!scheduled) {
      scheduled = true
      atEndOfTick(flush)
    }
  }
}
