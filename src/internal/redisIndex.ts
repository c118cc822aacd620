/**
 * The opt-in ordered index of the Redis store (`orderedIndex: true`): a sorted set of the namespace's keys, kept
 * exact by Lua scripts that write the data and the index in one atomic step, so `list`, `listPage`, `listStream`,
 * `count` and `clear` read a range of it (`ZRANGEBYLEX`, `ZLEXCOUNT`) in O(log n + k) instead of SCANning the whole
 * keyspace.
 *
 * Three Redis keys hold it, next to the namespace (`keyPrefix`) and named with a `0xFF` byte, which no UTF-8 key
 * contains, so no store key can collide with them:
 *
 * - `<keyPrefix>\xFFindex`: every key of the namespace, score 0, as its UTF-8 bytes with the lead bytes `0xEE`/`0xEF`
 *   (U+E000..U+FFFF) rewritten to `0xF5`/`0xF6`. Redis compares members bytewise, and UTF-8 byte order puts
 *   U+E000..U+FFFF before the characters beyond U+FFFF, where JavaScript's UTF-16 order puts them after; the rewrite
 *   (two byte values UTF-8 never uses) moves them after, so a range comes back in the contract's order, and a
 *   prefix of a key is still a byte prefix of its member.
 * - `<keyPrefix>\xFFexpiry`: the keys that have an expiry, scored by their absolute expiry time (`PEXPIRETIME`).
 *   Every script first removes the entries whose time has passed and whose key Redis confirms gone (writes a few,
 *   listings all of them), so expired keys leave the index without anyone reading them, and never show in a listing.
 * - `<keyPrefix>\xFFready`: the marker of a complete index. The listing, count and clear scripts refuse to run
 *   without it (`EKVNOINDEX`); the store then rebuilds the index from a SCAN of the namespace and sets the marker, so
 *   a namespace written without the index (or flushed) is indexed on first use instead of being listed partially.
 *
 * On a cluster a script may only touch keys of one hash slot, so the whole namespace must live in one slot: the
 * `keyPrefix` must contain a hash tag (`"{app}:"`). See `RedisKvStore.ts` for the trade-off.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Crypto from "node:crypto"
import { type Expiry, isValidKey, type KvBackendError, type MakeOptions, type Operation } from "../BaseKvStore.ts"
import { invalidOption } from "./options.ts"
import type { RedisAdapter } from "./redisClients.ts"

/** The suffixes of the index's keys after the namespace, each after a `0xFF` byte (see the module doc). */
export const INDEX_KEY_SUFFIXES = ["index", "expiry", "ready"] as const

/** The index's keys as a client decodes them from a SCAN reply (`0xFF` is not UTF-8: it reads as U+FFFD). */
export const indexKeyNames = (keyPrefix: string): ReadonlyArray<string> =>
  INDEX_KEY_SUFFIXES.map((suffix) => `${keyPrefix}\uFFFD${suffix}`)

/** Keys per page of a whole `list`, per batch of `clear` and of the rebuild: each script holds Redis this long. */
const PAGE = 1000

/** How many expired entries a write removes on its way: enough to keep up with the keys that expire meanwhile. */
const WRITE_SWEEP = 16

/**
 * Whether the namespace lies in one hash slot: `keyPrefix` holds a hash tag (a `{`, later a `}`, something between),
 * so every key under it hashes by that tag alone.
 */
export const hasHashTag = (keyPrefix: string): boolean => {
  const open = keyPrefix.indexOf("{")
  if (open < 0) return false
  const close = keyPrefix.indexOf("}", open + 1)
  return close > open + 1
}

/** Refuses an index that cannot be kept atomically: on a cluster, a namespace spread over many slots. */
export const checkIndexOptions = (keyPrefix: string, cluster: boolean): void => {
  if (cluster && !hasHashTag(keyPrefix)) {
    throw invalidOption(
      "redis",
      "keyPrefix",
      "a namespace with a hash tag, such as \"{app}:\", for orderedIndex on a cluster (the index is updated in the " +
        "same atomic script as the keys, and a script may only touch one hash slot)",
      keyPrefix
    )
  }
}

interface Script {
  readonly source: string
  readonly sha: string
}

const script = (body: string): Script => {
  const source = PRELUDE + body
  return { source, sha: Crypto.createHash("sha1").update(source).digest("hex") }
}

/**
 * What every script starts with. KEYS[1] is the namespace itself (`keyPrefix`), which is never a store key (the store
 * key "" is refused), so it routes the script to the namespace's slot; the index's keys are derived from it, and the
 * store keys follow in KEYS[2..].
 */
const PRELUDE = `local ns = KEYS[1]
local idx, exp, ready = ns .. "\\255index", ns .. "\\255expiry", ns .. "\\255ready"
local ENC, DEC = { ["\\238"] = "\\245", ["\\239"] = "\\246" }, { ["\\245"] = "\\238", ["\\246"] = "\\239" }
local function enc(s) return (string.gsub(s, "[\\238\\239]", ENC)) end
local function dec(s) return (string.gsub(s, "[\\245\\246]", DEC)) end
local n = #ns
-- Brings the entry of one key (its Redis name) in line with the key, whatever was done to it.
local function sync(key)
  local m = enc(string.sub(key, n + 1))
  local at = redis.call("PEXPIRETIME", key)
  if at == -2 then
    redis.call("ZREM", idx, m)
    redis.call("ZREM", exp, m)
  else
    redis.call("ZADD", idx, 0, m)
    if at == -1 then redis.call("ZREM", exp, m) else redis.call("ZADD", exp, at, m) end
  end
end
-- Drops the entries of expired keys: at most limit of them, or all with limit 0. The clock is TIME's, read after
-- Redis froze its own for the script, so it is never behind it: an entry picked too early is kept by sync, which asks
-- Redis whether the key is still there.
local function sweep(limit)
  local t = redis.call("TIME")
  local now = "(" .. string.format("%d", t[1] * 1000 + math.floor(t[2] / 1000))
  local offset = 0
  while true do
    local batch = redis.call("ZRANGEBYSCORE", exp, "-inf", now, "LIMIT", offset, limit > 0 and limit or 1000)
    for _, m in ipairs(batch) do
      sync(ns .. dec(m))
      if redis.call("ZSCORE", exp, m) then offset = offset + 1 end
    end
    if limit > 0 or #batch < 1000 then return end
  end
end
-- The exclusive upper bound of the members that start with p: p with its last byte incremented (no member holds 0xFF).
local function after(p)
  if p == "" then return "+" end
  return "(" .. string.sub(p, 1, -2) .. string.char(string.byte(p, -1) + 1)
end
`

/**
 * Reads must not trust an index without its marker; writes need not check it: each keeps its own entries exact, and
 * a rebuild adds to what they wrote.
 */
const READY = `if redis.call("EXISTS", ready) == 0 then
  return redis.error_reply("EKVNOINDEX the ordered index of this namespace is missing or incomplete")
end
`

/**
 * SET of KEYS[2..] to ARGV[2..]. ARGV[1]: the expiry, "" none, "keep" or milliseconds. Without an expiry the entry is
 * known without asking Redis (the write of the whole index's cost measured in BENCHMARKS.md is mostly these calls).
 */
const SET = script(`sweep(${WRITE_SWEEP})
for i = 2, #KEYS do
  if ARGV[1] == "" then
    redis.call("SET", KEYS[i], ARGV[i])
    local m = enc(string.sub(KEYS[i], n + 1))
    redis.call("ZADD", idx, 0, m)
    redis.call("ZREM", exp, m)
  elseif ARGV[1] == "keep" then redis.call("SET", KEYS[i], ARGV[i], "KEEPTTL")
  else redis.call("SET", KEYS[i], ARGV[i], "PX", ARGV[1]) end
  if ARGV[1] ~= "" then sync(KEYS[i]) end
end
return #KEYS - 1`)

/** SET NX of KEYS[2] to ARGV[2]; ARGV[1]: "" or milliseconds. 1 when written. */
const SET_IF_ABSENT = script(`sweep(${WRITE_SWEEP})
local written
if ARGV[1] == "" then written = redis.call("SET", KEYS[2], ARGV[2], "NX")
else written = redis.call("SET", KEYS[2], ARGV[2], "PX", ARGV[1], "NX") end
if not written then return 0 end
sync(KEYS[2])
return 1`)

/**
 * Compare-and-set of KEYS[2]. ARGV: "1" and the expected value, or "0" (expects a missing key) and ""; "1" and the
 * next value, or "0" (delete) and ""; the expiry ("" none, "keep" or milliseconds). 1 when it matched.
 */
const COMPARE_AND_SET = script(`sweep(${WRITE_SWEEP})
local current = redis.call("GET", KEYS[2])
if ARGV[1] == "0" then
  if current then return 0 end
elseif current ~= ARGV[2] then return 0 end
if ARGV[3] == "0" then redis.call("DEL", KEYS[2])
elseif ARGV[5] == "" then redis.call("SET", KEYS[2], ARGV[4])
elseif ARGV[5] == "keep" then redis.call("SET", KEYS[2], ARGV[4], "KEEPTTL")
else redis.call("SET", KEYS[2], ARGV[4], "PX", ARGV[5]) end
sync(KEYS[2])
return 1`)

/** DEL of KEYS[2..]; the number of keys that were there. */
const DELETE = script(`sweep(${WRITE_SWEEP})
local deleted = 0
for i = 2, #KEYS do
  deleted = deleted + redis.call("DEL", KEYS[i])
  sync(KEYS[i])
end
return deleted`)

/**
 * At most ARGV[4] keys under the prefix ARGV[1], after ARGV[3] when ARGV[2] is "1", prefix included (the caller strips
 * it). Every call through Lua costs: one ZRANGEBYLEX, and the members decoded only when one of them needs it (a
 * gsub per member tripled the script's time for 100 keys).
 */
const LIST = script(`${READY}sweep(0)
local p = enc(ARGV[1])
local min = ARGV[2] == "1" and ("(" .. p .. enc(ARGV[3])) or ("[" .. p)
local keys = redis.call("ZRANGEBYLEX", idx, min, after(p), "LIMIT", 0, tonumber(ARGV[4]))
if string.find(table.concat(keys), "[\\245\\246]") then
  for i, m in ipairs(keys) do keys[i] = dec(m) end
end
return keys`)

/** The number of keys under the prefix ARGV[1]. */
const COUNT = script(`${READY}sweep(0)
local p = enc(ARGV[1])
return redis.call("ZLEXCOUNT", idx, "[" .. p, after(p))`)

/** Deletes the first ARGV[2] keys under the prefix ARGV[1]: {keys deleted, entries removed}. */
const CLEAR = script(`${READY}sweep(0)
local p = enc(ARGV[1])
local batch = redis.call("ZRANGEBYLEX", idx, "[" .. p, after(p), "LIMIT", 0, tonumber(ARGV[2]))
local deleted = 0
for _, m in ipairs(batch) do
  deleted = deleted + redis.call("DEL", ns .. dec(m))
  redis.call("ZREM", idx, m)
  redis.call("ZREM", exp, m)
end
return { deleted, #batch }`)

/** Rebuild, step 1: brings the entries of KEYS[2..] (keys a SCAN found) in line with the keys. */
const REBUILD_ADD = script(`for i = 2, #KEYS do sync(KEYS[i]) end
return #KEYS - 1`)

/**
 * Rebuild, step 2: checks the next ARGV[2] entries after the key ARGV[1] ("" from the start) against their keys,
 * dropping those of keys that are gone; returns the last key checked, or false at the end.
 */
const REBUILD_CHECK = script(`local min = ARGV[1] == "" and "-" or ("(" .. enc(ARGV[1]))
local batch = redis.call("ZRANGEBYLEX", idx, min, "+", "LIMIT", 0, tonumber(ARGV[2]))
for _, m in ipairs(batch) do sync(ns .. dec(m)) end
if #batch == 0 then return false end
return dec(batch[#batch])`)

/** Rebuild, step 3: the index is complete. */
const REBUILD_DONE = script(`redis.call("SET", ready, "1")
return 1`)

/** Escapes the characters SCAN MATCH treats as glob syntax, so the pattern matches the prefix literally. */
const escapeGlob = (literal: string): string => literal.replace(/[*?[\]\\]/g, "\\$&")

const isNoScript = (error: unknown): boolean => String((error as Error | undefined)?.message).startsWith("NOSCRIPT")
const isNoIndex = (error: unknown): boolean => String((error as Error | undefined)?.message).startsWith("EKVNOINDEX")

const expiryArg = (expiry: Expiry): string => expiry === null ? "" : String(expiry)

/** The `Array<string>` a client's reply of strings (or Buffers) is. */
const strings = (reply: unknown): Array<string> =>
  (reply as ReadonlyArray<unknown>).map((item) =>
    typeof item === "string" ? item : Buffer.from(item as Uint8Array).toString("utf8")
  )

/** What the store lends the index: its client, namespace and the deadline of its commands. */
export interface IndexContext {
  readonly adapter: RedisAdapter
  readonly keyPrefix: string
  readonly scanCount: number
  /** One call with the store's per-command deadline and error classification. */
  readonly cold: <A>(operation: Operation, key: string, run: () => Promise<A>) => Effect.Effect<A, KvBackendError>
}

/** The primitives of `make` that the index serves, replacing the store's SCAN-based and unindexed ones. */
export const makeIndex = (
  { adapter, cold, keyPrefix, scanCount }: IndexContext
): Pick<
  Required<MakeOptions>,
  | "set"
  | "delete"
  | "list"
  | "setIfAbsent"
  | "compareAndSet"
  | "setMany"
  | "deleteMany"
  | "count"
  | "clear"
  | "listAfter"
> => {
  checkIndexOptions(keyPrefix, adapter.cluster)

  const run = (script: Script, keys: ReadonlyArray<string>, args: ReadonlyArray<string>): Promise<unknown> => {
    const command = new Array<string>(4 + keys.length + args.length)
    command[0] = "EVALSHA"
    command[1] = script.sha
    command[2] = String(1 + keys.length)
    command[3] = keyPrefix
    for (let i = 0; i < keys.length; i++) command[4 + i] = keyPrefix + keys[i]
    for (let i = 0; i < args.length; i++) command[4 + keys.length + i] = args[i]
    // Routed by the namespace, which shares the keys' slot (a cluster namespace holds a hash tag).
    return adapter.call(keyPrefix, command, false).catch((error) => {
      if (!isNoScript(error)) throw error
      command[0] = "EVAL"
      command[1] = script.source
      return adapter.call(keyPrefix, command, false)
    })
  }

  /**
   * Rebuilds the index from a SCAN of the namespace, then marks it complete. Safe beside other stores writing through
   * the index and beside another rebuild: each step re-reads, inside its script, the keys whose entries it touches.
   * A SCAN page may repeat keys; syncing a key twice changes nothing.
   */
  const rebuild = (operation: Operation) =>
    Effect.gen(function*() {
      const pattern = `${escapeGlob(keyPrefix)}*`
      const scans = yield* cold(operation, "", adapter.masters)
      for (const scan of scans) {
        let cursor = "0"
        do {
          const [next, found] = yield* cold(operation, "", () => scan(cursor, pattern, scanCount))
          const keys = strings(found).map((name) => name.slice(keyPrefix.length)).filter(isValidKey)
          if (keys.length > 0) yield* cold(operation, keys[0], () => run(REBUILD_ADD, keys, []))
          cursor = next
        } while (cursor !== "0")
      }
      let last: string | null = ""
      while (last !== null) {
        const from: string = last
        last = yield* cold(operation, from, () =>
          run(REBUILD_CHECK, [], [from, String(PAGE)]).then((reply) =>
            reply === null || reply === undefined ? null : strings([reply])[0]
          ))
      }
      yield* cold(operation, "", () =>
        run(REBUILD_DONE, [], []))
    })
  let rebuilding: Effect.Effect<void, KvBackendError> | undefined = undefined

  /** One script call; when the index is missing (never built, or flushed), rebuilds it and calls again. */
  const call = <A>(
    operation: Operation,
    key: string,
    script: Script,
    keys: ReadonlyArray<string>,
    args: ReadonlyArray<string>,
    map: (reply: unknown) => A
  ): Effect.Effect<A, KvBackendError> => {
    const once = cold(operation, key, () => run(script, keys, args).then(map))
    return Effect.catchIf(once, (error) => isNoIndex(error.cause), () =>
      Effect.suspend(() => {
        // Concurrent callers wait for one rebuild; a later loss of the marker starts another.
        rebuilding ??= Effect.ensuring(
          Effect.runSync(Effect.cached(rebuild(operation))),
          Effect.sync(() => rebuilding = undefined)
        )
        return Effect.andThen(rebuilding, once)
      }))
  }

  const listAfter = (prefix: string, after: string | null, limit: number) =>
    call(
      "list",
      prefix,
      LIST,
      [],
      [prefix, after === null ? "0" : "1", after ?? "", String(limit + 1)],
      (reply) => strings(reply).map((key) => key.slice(prefix.length))
    )

  const list = (prefix: string): Effect.Effect<ReadonlyArray<string>, KvBackendError> =>
    Effect.gen(function*() {
      const keys: Array<string> = []
      let after: string | null = null
      while (true) {
        const page: ReadonlyArray<string> = yield* listAfter(prefix, after, PAGE - 1)
        for (const key of page) keys.push(key)
        if (page.length < PAGE) return keys
        after = page[page.length - 1]
      }
    })

  const deleteMany = (operation: Operation, keys: ReadonlyArray<string>) =>
    call(operation, keys[0], DELETE, keys, [], Number)

  return {
    set: (key, value, expiry) => call("set", key, SET, [key], [expiryArg(expiry), value], () => undefined),
    delete: (key) => Effect.asVoid(deleteMany("delete", [key])),
    setMany: (entries, expiry) =>
      Effect.asVoid(
        call("setMany", entries[0][0], SET, entries.map(([key]) => key), [
          expiryArg(expiry),
          ...entries.map(([, value]) => value)
        ], Number)
      ),
    deleteMany: (keys) => Effect.asVoid(deleteMany("deleteMany", keys)),
    setIfAbsent: (key, value, expiry) =>
      call(
        "setIfAbsent",
        key,
        SET_IF_ABSENT,
        [key],
        [typeof expiry === "number" ? String(expiry) : "", value],
        (reply) => Number(reply) === 1
      ),
    compareAndSet: (key, expected, next, expiry) =>
      call(
        "compareAndSet",
        key,
        COMPARE_AND_SET,
        [key],
        [expected === null ? "0" : "1", expected ?? "", next === null ? "0" : "1", next ?? "", expiryArg(expiry)],
        (reply) => Number(reply) === 1
      ),
    listAfter,
    list,
    count: (prefix) => call("count", prefix, COUNT, [], [prefix], Number),
    clear: (prefix) =>
      Effect.gen(function*() {
        let cleared = 0
        while (true) {
          const [deleted, removed] = yield* call(
            "clear",
            prefix,
            CLEAR,
            [],
            [prefix, String(PAGE)],
            (reply) => (reply as ReadonlyArray<unknown>).map(Number)
          )
          cleared += deleted
          if (removed < PAGE) return cleared
        }
      })
  }
}
