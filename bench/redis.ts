/**
 * Child process: one Redis contender against the server the orchestrator started and filled.
 *
 * `--suite ops --contender a,b,...`: get, set (overwrite) and a 100-key batch get, with 1 and with 100 operations in
 * flight, for a group of contenders in one process, sampled in turn (see `runOps`). "100 in flight" has the same shape
 * for everyone: 100 workers (async functions, or fibers under `Effect.all` with unbounded concurrency) each run their
 * share of the sample sequentially; the sample's time is divided by its operations.
 *
 * `--suite list`: `list` of the 100 keys under `upload:g100:` in a keyspace of `--size` keys, by effect-kv (SCAN
 * COUNT 1000 on every master, or its ordered index: one ZRANGEBYLEX) over either client, by two raw node-redis SCAN
 * loops: COUNT 1000 (the floor for effect-kv's way) and COUNT 20 (how the peers list: a SCAN MATCH loop with a small
 * COUNT), and by Keyv and unstorage as their users list.
 */
import { createKeyv } from "@keyv/redis"
import * as Effect from "effect/Effect"
import { parseArgs } from "node:util"
import { createStorage } from "unstorage"
import redisDriver from "unstorage/drivers/redis"
import { existingKeys, groupKeys, groupPrefix, layout, valuePool } from "./support/data.ts"
import {
  type Budget,
  check,
  consume,
  emit,
  log,
  main,
  now,
  ONCE_NS,
  sampleBatches,
  single,
  type Stats,
  statsOf,
  warmUp
} from "./support/measure.ts"
import {
  effectKvStore,
  isRedisContenderName,
  LIST_CONTENDERS,
  type ListContenderName,
  LISTED,
  makeRedisContender,
  OPS_KEYSPACE,
  rawNodeRedis,
  type RedisContender,
  type RedisContenderName
} from "./support/redisContenders.ts"

const HIT_POOL = 10_000
const WORKERS = 100

export type RedisOp = "get" | "set" | "batch-get"

export interface RedisOpsRow {
  readonly op: RedisOp
  readonly inFlight: 1 | 100
  readonly stats: Stats
}

export interface RedisOpsResult {
  readonly contender: string
  readonly rows: ReadonlyArray<RedisOpsRow>
}

export interface RedisListResult {
  readonly contender: ListContenderName
  readonly size: number
  readonly stats: Stats
}

/** Operation `i` of a sample, whichever kind the contender is. */
type Body = <X>(
  ops: {
    get: (key: string) => X
    set: (key: string, value: string) => X
    getBatch: (keys: ReadonlyArray<string>) => X
  },
  i: number
) => X

/** Runs `count` operations with `inFlight` workers and returns nanoseconds per operation. */
const timed = async (contender: RedisContender, inFlight: number, count: number, body: Body): Promise<number> => {
  const share = count / inFlight
  if (contender.kind === "effect") {
    const ops = contender.ops
    const worker = (w: number) =>
      Effect.gen(function*() {
        for (let j = 0; j < share; j++) consume(yield* body(ops, w * share + j))
      })
    const program = inFlight === 1
      ? worker(0)
      : Effect.all(Array.from({ length: inFlight }, (_, w) => worker(w)), { concurrency: "unbounded", discard: true })
    const start = now()
    await Effect.runPromise(program)
    return ((now() - start) * 1e6) / count
  }
  const ops = contender.ops
  const worker = async (w: number) => {
    for (let j = 0; j < share; j++) consume(await body(ops, w * share + j))
  }
  const start = now()
  await Promise.all(Array.from({ length: inFlight }, (_, w) => worker(w)))
  return ((now() - start) * 1e6) / count
}

const once = (contender: RedisContender, body: Body): Promise<unknown> =>
  contender.kind === "effect" ? Effect.runPromise(body(contender.ops, 0)) : body(contender.ops, 0)

/** `items` starting at position `by`: who samples first changes from one turn to the next. */
const rotate = <A>(items: ReadonlyArray<A>, by: number): Array<A> => items.map((_, i) => items[(i + by) % items.length])

/**
 * The contenders of one group (`REDIS_OPS_GROUPS`) in one process. For each operation every contender is warmed up,
 * then sampled in turn: one sample of each, in an order that rotates, until each has its samples. So the samples of
 * effect-kv and of the raw client it is compared with are taken moments apart, and the noise of a shared machine falls
 * on both alike. No collection is forced between samples: the first 2,000 raw node-redis gets at 100 in flight after a
 * forced full GC took 12–27 µs each against 2 µs before it (measured here), a slowdown that would fall on whoever
 * samples next. A scavenge costs what survives it, not the garbage, so one contender's garbage costs the next little.
 *
 * The warm-up is a number of samples, not a time: the Effect contenders run several times more code per operation than
 * a raw client and need about a second of operations here before V8 has optimised it (measured: a fresh process's
 * first 2,000-get samples at 100 in flight took 90, then 36, then 11 µs per get before settling at 3–5).
 */
const runOps = async (names: ReadonlyArray<string>, url: string, quick: boolean): Promise<Array<RedisOpsResult>> => {
  const unknown = names.filter((name) => !isRedisContenderName(name))
  if (names.length === 0 || unknown.length > 0) throw new Error(`unknown --contender ${unknown.join(",")}`)
  const { samples: sampleCount, warmUp: warmUpCount } = quick ? { warmUp: 20, samples: 8 } : { warmUp: 40, samples: 25 }
  const keys = existingKeys(layout(OPS_KEYSPACE, [LISTED]), HIT_POOL, 7)
  const batches = Array.from({ length: keys.length / 100 }, (_, b) => keys.slice(b * 100, b * 100 + 100))
  const values = valuePool(1024)
  const contenders: Array<RedisContender> = []
  try {
    for (const name of names) contenders.push(await makeRedisContender(name as RedisContenderName, url))
    for (const contender of contenders) {
      const name = contender.name
      // Every key read is first written through the contender itself: Keyv reads back only its own JSON envelopes.
      await timed(contender, WORKERS, keys.length, (ops, i) => ops.set(keys[i], values[i % values.length]))
      check(await once(contender, (ops) => ops.get(keys[0])) === values[0], `${name}: get did not return the value set`)
      const batch = await once(contender, (ops) => ops.getBatch(batches[0])) as ReadonlyArray<unknown>
      check(
        batch.length === 100 && batch.every((value, i) => value === values[i % values.length]),
        `${name}: the 100-key batch get did not return the 100 values set`
      )
    }

    const rows = contenders.map((): Array<RedisOpsRow> => [])
    const shapes: ReadonlyArray<{ op: RedisOp; inFlight: 1 | 100; count: number; body: (offset: number) => Body }> = [
      { op: "get", inFlight: 1, count: 200, body: (o) => (ops, i) => ops.get(keys[(o + i) % keys.length]) },
      { op: "get", inFlight: 100, count: 2000, body: (o) => (ops, i) => ops.get(keys[(o + i) % keys.length]) },
      {
        op: "set",
        inFlight: 1,
        count: 200,
        body: (o) => (ops, i) => ops.set(keys[(o + i) % keys.length], values[i % values.length])
      },
      {
        op: "set",
        inFlight: 100,
        count: 2000,
        body: (o) => (ops, i) => ops.set(keys[(o + i) % keys.length], values[i % values.length])
      },
      {
        op: "batch-get",
        inFlight: 1,
        count: 20,
        body: (o) => (ops, i) => ops.getBatch(batches[(o + i) % batches.length])
      },
      {
        op: "batch-get",
        inFlight: 100,
        // One batch per worker: 10,000 gets at once already take as long as the other shapes' samples.
        count: 100,
        body: (o) => (ops, i) => ops.getBatch(batches[(o + i) % batches.length])
      }
    ]
    for (const shape of shapes) {
      let offset = 0
      const sample = (contender: RedisContender) => {
        const body = shape.body(offset)
        offset += shape.count
        return timed(contender, shape.inFlight, shape.count, body)
      }
      const order = contenders.map((_, c) => c)
      for (let turn = 0; turn < warmUpCount; turn++) {
        for (const c of rotate(order, turn)) await sample(contenders[c])
      }
      const taken = contenders.map((): Array<number> => [])
      for (let turn = 0; turn < sampleCount; turn++) {
        for (const c of rotate(order, turn)) {
          taken[c].push(await sample(contenders[c]))
        }
      }
      const stats = taken.map((samples) => statsOf(samples, shape.count))
      stats.forEach((s, c) => rows[c].push({ op: shape.op, inFlight: shape.inFlight, stats: s }))
      log(
        `${shape.op} x${shape.inFlight} p50: ${
          contenders.map((contender, c) =>
            `${contender.name} ${(stats[c].p50 / 1000).toFixed(2)} µs${
              c === 0 ? "" : ` (${(stats[c].p50 / stats[0].p50).toFixed(2)}×)`
            }`
          ).join(", ")
        }`
      )
    }
    return contenders.map((contender, c) => ({ contender: contender.name, rows: rows[c] }))
  } finally {
    for (const contender of contenders) await contender.close()
  }
}

/** A listing function and what closes its client. */
const listerOf = async (
  name: ListContenderName,
  url: string
): Promise<
  { readonly list: (prefix: string) => Promise<ReadonlyArray<string>>; readonly close: () => Promise<void> }
> => {
  switch (name) {
    case "effect-kv/node-redis":
    case "effect-kv/ioredis":
    case "effect-kv+index/node-redis":
    case "effect-kv+index/ioredis": {
      const { close, store } = await effectKvStore(
        url,
        name.endsWith("ioredis") ? "ioredis" : "node-redis",
        name.startsWith("effect-kv+index")
      )
      return { list: (prefix) => Effect.runPromise(store.list(prefix)), close }
    }
    case "keyv": {
      // Keyv lists by walking its iterator: a SCAN MATCH * loop (COUNT left to Redis, 10) that MGETs every key it
      // finds; the keys are filtered by prefix here. Its namespaced iterator would match `<namespace>::*` only.
      const keyv = createKeyv(url)
      return {
        list: async (prefix) => {
          const found: Array<string> = []
          for await (const [key] of keyv.store.iterator!(undefined)) {
            if (typeof key === "string" && key.startsWith(prefix)) found.push(key.slice(prefix.length))
          }
          return found.sort()
        },
        close: () => keyv.disconnect()
      }
    }
    case "unstorage": {
      // getKeys(base) is a SCAN MATCH `base:*` loop (COUNT left to Redis) over ioredis.
      const storage = createStorage<string>({ driver: redisDriver({ url }) })
      const base = (prefix: string) => prefix.replace(/:$/, "")
      return {
        list: async (prefix) => (await storage.getKeys(base(prefix))).map((key) => key.slice(prefix.length)).sort(),
        close: () => storage.dispose()
      }
    }
    case "scan-1000":
    case "scan-20": {
      const { client, fast } = await rawNodeRedis(url)
      const count = name === "scan-1000" ? 1000 : 20
      return {
        // The prefixes listed here have no glob characters, so they need no escaping.
        list: async (prefix) => {
          const found = new Set<string>()
          let cursor = "0"
          do {
            const reply = await fast.scan(cursor, { MATCH: `${prefix}*`, COUNT: count })
            for (const key of reply.keys) found.add(key.slice(prefix.length))
            cursor = String(reply.cursor)
          } while (cursor !== "0")
          return [...found].sort()
        },
        close: () => client.close()
      }
    }
  }
}

const runList = async (name: string, url: string, size: number, quick: boolean): Promise<RedisListResult> => {
  const contender = LIST_CONTENDERS.find((candidate) => candidate === name)
  if (contender === undefined) throw new Error(`unknown --contender ${name}`)
  const prefix = groupPrefix(LISTED)
  const expected = groupKeys(LISTED).map((key) => key.slice(prefix.length)).sort()
  const lister = await listerOf(contender, url)
  try {
    const start = now()
    const result = await lister.list(prefix)
    const first = (now() - start) * 1e6
    if (!(result.length === LISTED && result.every((key, i) => key === expected[i]))) {
      // Say what the server holds, so a wrong listing is not mistaken for a wrongly filled server.
      const raw = await listerOf("scan-1000", url)
      const seen = await raw.list(prefix)
      await raw.close()
      check(
        false,
        `${name}: list(${prefix}) returned ${result.length} keys, not the ${LISTED} expected (${
          JSON.stringify(result.slice(0, 3))
        }...); a raw SCAN COUNT 1000 loop finds ${seen.length} right after`
      )
    }
    const sample = async () => {
      const begin = now()
      consume(await lister.list(prefix))
      return (now() - begin) * 1e6
    }
    const budget: Budget = quick
      ? { minSamples: 1, maxSamples: 20, minTimeMs: 100 }
      : { minSamples: 3, maxSamples: 200, minTimeMs: 1500 }
    // A listing of seconds (the COUNT 20 loop over a million keys) is timed once per round: the checked call above.
    // Any other is first run for a while: the index's listing is one round trip, and a few dozen calls of it with the
    // Effect code still unoptimised (all --quick used to time) were slow enough to put it under its 1000× target.
    if (first <= ONCE_NS) await warmUp(sample, quick ? 300 : 1000, 2)
    const stats = first > ONCE_NS ? single(first) : await sampleBatches(sample, 1, { ...budget, collect: false })
    log(`${name} @ ${size}: list ${LISTED} p50 ${(stats.p50 / 1e6).toFixed(1)} ms`)
    return { contender, size, stats }
  } finally {
    await lister.close()
  }
}

main(async () => {
  const { values: args } = parseArgs({
    options: {
      suite: { type: "string" },
      contender: { type: "string" },
      url: { type: "string" },
      size: { type: "string" },
      quick: { type: "boolean", default: false }
    }
  })
  const url = args.url ?? ""
  const name = args.contender ?? ""
  const quick = args.quick === true
  if (args.suite === "ops") emit(await runOps(name.split(","), url, quick))
  else if (args.suite === "list") emit(await runList(name, url, Number(args.size), quick))
  else throw new Error(`unknown --suite ${String(args.suite)}`)
})
