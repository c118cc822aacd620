/**
 * Turns the pooled results into tables, the targets verdicts, and BENCHMARKS.md.
 *
 * Every row shows the median with its interquartile range (p25–p75 of all samples of all rounds) and its ratio to
 * the row's floor: the plain `Map` in memory, the raw client over Redis.
 */
import type { ContractResult } from "../contract.ts"
import type { MemoryResult, Mode, PointOp } from "../memory.ts"
import type { BytesResult } from "../memoryBytes.ts"
import type { RedisListResult, RedisOp, RedisOpsResult } from "../redis.ts"
import type { SqlOp, SqlResult } from "../sql.ts"
import type { UploadResult } from "../uploads.ts"
import type { Environment } from "./machine.ts"
import type { Stats } from "./measure.ts"
import { type MemoryStoreName } from "./memoryStores.ts"
import { type ListContenderName, LISTED, redisContenderLabel, type RedisContenderName } from "./redisContenders.ts"
import type { RedisBenchmarkRow } from "./redisData.ts"
import { databaseOf, SQL_CONTENDERS, sqlContenderLabel, type SqlContenderName } from "./sqlContenders.ts"
import { count, duration, ratio, shortCount, spread, summarize, type Summary, table } from "./stats.ts"
import { uploadSections } from "./uploadReport.ts"

export interface Results {
  readonly quick: boolean
  readonly command: string
  readonly startedAt: string
  wallMs: number
  readonly environment: Environment
  readonly memory: Array<MemoryResult & { readonly round: number }>
  readonly bytes: Array<BytesResult>
  readonly redisOps: Array<RedisOpsResult & { readonly round: number }>
  readonly redisList: Array<RedisListResult & { readonly round: number }>
  readonly redisBenchmark: Array<RedisBenchmarkRow & { readonly round: number }>
  /** How long the ordered index took to rebuild from a SCAN at each listing size; absent in older results. */
  readonly redisIndexBuild?: Array<{ readonly size: number; readonly ms: number }>
  /** The grown contract (atomic updates, expiry, batches, paging, bounded memory), each group beside its floor. */
  readonly contract: Array<ContractResult & { readonly round: number }>
  /** Absent in results written before the durable-store suite existed. */
  readonly sql?: Array<SqlResult & { readonly round: number }>
  readonly uploads: Array<UploadResult & { readonly round: number }>
  readonly failures: Array<string>
}

export interface Chart {
  readonly file: string
  readonly title: string
}

// ---------------------------------------------------------------------------------------------------------------
// Pooled lookups

const pool = (stats: ReadonlyArray<Stats>): Summary | undefined => stats.length === 0 ? undefined : summarize(stats)

export const memorySizes = (results: Results): Array<number> =>
  [...new Set(results.memory.map((result) => result.size))].sort((a, b) => a - b)

export const memorySummary = (
  results: Results,
  store: MemoryStoreName,
  size: number,
  op: string,
  mode: Mode,
  round?: number
): Summary | undefined =>
  pool(
    results.memory.filter((result) =>
      result.store === store && result.size === size && (round === undefined || result.round === round)
    ).flatMap((result) => result.rows.filter((row) => row.op === op && row.mode === mode).map((row) => row.stats))
  )

/** A row of the contract suite's groups (the contract and effect children), pooled across rounds or of one. */
const contractSummary = (results: Results, group: string, label: string, round?: number): Summary | undefined =>
  pool(
    results.contract.filter((result) => round === undefined || result.round === round).flatMap((result) =>
      result.rows.filter((row) => row.group === group && row.label === label).map((row) => row.stats)
    )
  )

export const redisOpsSummary = (
  results: Results,
  contender: RedisContenderName,
  op: RedisOp,
  inFlight: 1 | 100,
  round?: number
): Summary | undefined =>
  pool(
    results.redisOps.filter((result) =>
      result.contender === contender && (round === undefined || result.round === round)
    ).flatMap((result) =>
      result.rows.filter((row) => row.op === op && row.inFlight === inFlight).map((row) => row.stats)
    )
  )

export const listSizes = (results: Results): Array<number> =>
  [...new Set(results.redisList.map((result) => result.size))].sort((a, b) => a - b)

export const redisListSummary = (
  results: Results,
  contender: ListContenderName,
  size: number,
  round?: number
): Summary | undefined =>
  pool(
    results.redisList.filter((result) =>
      result.contender === contender && result.size === size && (round === undefined || result.round === round)
    ).map((result) => result.stats)
  )

export const sqlSummary = (results: Results, contender: SqlContenderName, op: SqlOp): Summary | undefined =>
  pool(
    (results.sql ?? []).filter((result) => result.contender === contender).flatMap((result) =>
      result.rows.filter((row) => row.op === op && row.stats !== null).map((row) => row.stats!)
    )
  )

/** The rounds a run had: 0, 1, ... */
const roundsOf = (results: Results): Array<number> =>
  [
    ...new Set([...results.memory, ...results.redisOps, ...results.redisList].map((result) => result.round))
  ].sort((a, b) => a - b)

const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

/** redis-benchmark's requests per second for a test (median over rounds), as nanoseconds per request. */
export const redisBenchmarkNs = (results: Results, test: "GET" | "SET"): number | undefined => {
  const rps = results.redisBenchmark.filter((row) => row.test === test).map((row) => row.rps)
  return rps.length === 0 ? undefined : 1e9 / median(rps)
}

// ---------------------------------------------------------------------------------------------------------------
// Row definitions

export interface MemoryVariant {
  readonly store: MemoryStoreName
  readonly mode: Mode
  readonly label: string
  /** For the charts, where space is short. */
  readonly short: string
}

export const POINT_VARIANTS: ReadonlyArray<MemoryVariant> = [
  { store: "map", mode: "direct", label: "Map (floor)", short: "Map (floor)" },
  { store: "effect-kv", mode: "runSync", label: "effect-kv memory, 1 op per runSync", short: "effect-kv, runSync" },
  {
    store: "effect-kv",
    mode: "gen",
    label: "effect-kv memory, 1,000 ops per Effect.gen",
    short: "effect-kv, 1,000 per Effect.gen"
  },
  {
    store: "layerMemory",
    mode: "runSync",
    label: "KeyValueStore.layerMemory, 1 op per runSync",
    short: "layerMemory, runSync"
  },
  {
    store: "layerMemory",
    mode: "gen",
    label: "KeyValueStore.layerMemory, 1,000 ops per Effect.gen",
    short: "layerMemory, 1,000 per Effect.gen"
  },
  { store: "keyv", mode: "await", label: "Keyv (default Map store), awaited", short: "Keyv, await" },
  { store: "unstorage", mode: "await", label: "unstorage memory driver, awaited", short: "unstorage, await" }
]

export const LIST_VARIANTS: ReadonlyArray<MemoryVariant> = [
  { store: "map", mode: "direct", label: "Map: full scan + startsWith + sort (floor)", short: "Map scan (floor)" },
  { store: "effect-kv", mode: "runSync", label: "effect-kv memory (B+ tree range read)", short: "effect-kv" },
  {
    store: "sorted-btree",
    mode: "direct",
    label: "sorted-btree range read (raw index, reference)",
    short: "sorted-btree range read (reference)"
  },
  {
    store: "layerMemory",
    mode: "runSync",
    label: "KeyValueStore.layerMemory: keys + filter",
    short: "layerMemory keys + filter"
  },
  { store: "keyv", mode: "await", label: "Keyv: iterator full scan", short: "Keyv iterator scan" },
  { store: "unstorage", mode: "await", label: "unstorage memory: getKeys", short: "unstorage getKeys" }
]

export const POINT_OPS: ReadonlyArray<readonly [PointOp, string]> = [
  ["get", "get (hit)"],
  ["overwrite", "set, overwrite"],
  ["insert", "set, new key (insert)"],
  ["delete", "delete, existing key"],
  ["delete-missing", "delete, missing key"]
]

export const LIST_COUNTS = [10, 100, 1000] as const

export const REDIS_OPS: ReadonlyArray<readonly [RedisOp, string]> = [
  ["get", "get"],
  ["set", "set (overwrite)"],
  ["batch-get", "batch get, 100 keys"]
]

export const REDIS_ROWS: ReadonlyArray<RedisContenderName> = [
  "node-redis",
  "effect/node-redis",
  "effect-kv/node-redis",
  "effect-kv+index/node-redis",
  "ioredis",
  "effect-kv/ioredis",
  "keyv",
  "unstorage"
]

/** Short names of the Redis contenders, for the charts. */
export const REDIS_SHORT: Record<RedisContenderName, string> = {
  "node-redis": "raw node-redis (floor)",
  "effect/node-redis": "Effect.promise + node-redis",
  "effect-kv/node-redis": "effect-kv / node-redis",
  "effect-kv+index/node-redis": "effect-kv / node-redis + index",
  "ioredis": "raw ioredis",
  "effect-kv/ioredis": "effect-kv / ioredis",
  "keyv": "Keyv",
  "unstorage": "unstorage"
}

export const LIST_SHORT: Record<ListContenderName, string> = {
  "effect-kv/node-redis": "effect-kv / node-redis (COUNT 1000)",
  "effect-kv/ioredis": "effect-kv / ioredis (COUNT 1000)",
  "effect-kv+index/node-redis": "effect-kv / node-redis (ordered index)",
  "effect-kv+index/ioredis": "effect-kv / ioredis (ordered index)",
  "scan-1000": "raw SCAN loop, COUNT 1000 (floor)",
  "scan-20": "raw SCAN loop, COUNT 20 (peers' way)",
  "keyv": "Keyv iterator",
  "unstorage": "unstorage getKeys"
}

export const LIST_LABELS: Record<ListContenderName, string> = {
  "effect-kv/node-redis": "effect-kv over node-redis (SCAN COUNT 1000)",
  "effect-kv/ioredis": "effect-kv over ioredis (SCAN COUNT 1000)",
  "effect-kv+index/node-redis": "effect-kv over node-redis (ordered index: ZRANGEBYLEX)",
  "effect-kv+index/ioredis": "effect-kv over ioredis (ordered index: ZRANGEBYLEX)",
  "scan-1000": "raw node-redis SCAN MATCH loop, COUNT 1000 (floor)",
  "scan-20": "raw node-redis SCAN MATCH loop, COUNT 20 (the peers' way)",
  "keyv": "Keyv @keyv/redis: iterator (SCAN MATCH *, MGET of every key) + filter",
  "unstorage": "unstorage redis driver: getKeys (SCAN MATCH prefix*, default COUNT)"
}

// ---------------------------------------------------------------------------------------------------------------
// Tables

const cell = (summary: Summary | undefined, floor: Summary | undefined): [string, string, string] =>
  summary === undefined
    ? ["—", "—", "—"]
    : [duration(summary.median), spread(summary), floor === undefined ? "—" : ratio(summary.median / floor.median)]

const memoryPointTable = (results: Results, size: number): string => {
  const rows: Array<Array<string>> = []
  for (const [op, label] of POINT_OPS) {
    const floor = memorySummary(results, "map", size, op, "direct")
    POINT_VARIANTS.forEach((variant, i) => {
      const summary = memorySummary(results, variant.store, size, op, variant.mode)
      rows.push([i === 0 ? label : "", variant.label, ...cell(summary, floor)])
    })
  }
  return table(["operation", "store", "median / op", "p25 – p75", "× Map"], rows, ["l", "l", "r", "r", "r"])
}

const memoryListTable = (results: Results, size: number): string => {
  const rows: Array<Array<string>> = []
  for (const listed of LIST_COUNTS) {
    const op = `list-${listed}`
    const floor = memorySummary(results, "map", size, op, "direct")
    LIST_VARIANTS.forEach((variant, i) => {
      const summary = memorySummary(results, variant.store, size, op, variant.mode)
      rows.push([i === 0 ? `list ${count(listed)} keys` : "", variant.label, ...cell(summary, floor)])
    })
  }
  return table(["operation", "store", "median / list", "p25 – p75", "× Map scan"], rows, ["l", "l", "r", "r", "r"])
}

/** Medians only, one column per operation: the overview at one keyspace size. */
const memoryOverview = (results: Results, size: number): string => {
  const rows = POINT_VARIANTS.map((variant) => [
    variant.label,
    ...POINT_OPS.map(([op]) => {
      const summary = memorySummary(results, variant.store, size, op, variant.mode)
      return summary === undefined ? "—" : duration(summary.median)
    }),
    (() => {
      const listVariant = LIST_VARIANTS.find((candidate) => candidate.store === variant.store)
      const summary = listVariant === undefined || listVariant.mode !== variant.mode
        ? undefined
        : memorySummary(results, variant.store, size, "list-100", variant.mode)
      return summary === undefined ? "—" : duration(summary.median)
    })()
  ])
  return table(
    ["store", ...POINT_OPS.map(([, label]) => label), "list 100"],
    rows,
    ["l", "r", "r", "r", "r", "r", "r"]
  )
}

const bytesTable = (results: Results): string => {
  const map = results.bytes.find((result) => result.store === "map")
  const order: ReadonlyArray<MemoryStoreName> = ["map", "effect-kv", "layerMemory", "keyv", "unstorage"]
  const rows = order.flatMap((store) => {
    const result = results.bytes.find((candidate) => candidate.store === store)
    if (result === undefined) return []
    const label = POINT_VARIANTS.find((variant) => variant.store === store)?.label.replace(/,.*$/, "") ?? store
    return [[
      label,
      result.bytesPerEntry.toFixed(1),
      map === undefined ? "—" : ratio(result.bytesPerEntry / map.bytesPerEntry),
      `${((result.heapAfter - result.heapBefore) / 2 ** 20).toFixed(0)} MiB`
    ]]
  })
  return table(["store", "bytes / entry", "× Map", "heap for all entries"], rows, ["l", "r", "r", "r"])
}

/** How each contender gets 100 keys at once. */
export const BATCH_HOW: Record<RedisContenderName, string> = {
  "effect-kv/node-redis": "100 concurrent gets (coalesced into MGET)",
  "effect-kv/ioredis": "100 concurrent gets (coalesced into MGET)",
  "effect-kv+index/node-redis": "100 concurrent gets (coalesced into MGET)",
  "effect/node-redis": "100 concurrent gets",
  "node-redis": "MGET",
  "ioredis": "MGET",
  "keyv": "getMany (one MGET)",
  "unstorage": "getItems (one MGET)"
}

const redisOpsTable = (results: Results): string => {
  const rows: Array<Array<string>> = []
  for (const [op, label] of REDIS_OPS) {
    for (const inFlight of [1, 100] as const) {
      const nodeRedis = redisOpsSummary(results, "node-redis", op, inFlight)
      const ioRedis = redisOpsSummary(results, "ioredis", op, inFlight)
      REDIS_ROWS.forEach((contender, i) => {
        const summary = redisOpsSummary(results, contender, op, inFlight)
        const name = op === "batch-get"
          ? `${redisContenderLabel[contender]}: ${BATCH_HOW[contender]}`
          : redisContenderLabel[contender]
        rows.push([
          i === 0 ? label : "",
          i === 0 ? String(inFlight) : "",
          name,
          ...(summary === undefined ? ["—", "—", "—"] : [
            duration(summary.median),
            spread(summary),
            count(Math.round(1e9 / summary.median))
          ]),
          summary === undefined || nodeRedis === undefined ? "—" : ratio(summary.median / nodeRedis.median),
          summary === undefined || ioRedis === undefined ? "—" : ratio(summary.median / ioRedis.median)
        ])
      })
      const ceiling = op === "batch-get" || inFlight === 1
        ? undefined
        : redisBenchmarkNs(results, op === "get" ? "GET" : "SET")
      if (ceiling !== undefined) {
        rows.push([
          "",
          "",
          "redis-benchmark, 100 connections (server ceiling)",
          duration(ceiling),
          "",
          count(Math.round(1e9 / ceiling)),
          nodeRedis === undefined ? "—" : ratio(ceiling / nodeRedis.median),
          ioRedis === undefined ? "—" : ratio(ceiling / ioRedis.median)
        ])
      }
    }
  }
  return table(
    ["operation", "in flight", "contender", "median / op", "p25 – p75", "ops/s", "× raw node-redis", "× raw ioredis"],
    rows,
    ["l", "r", "l", "r", "r", "r", "r", "r"]
  )
}

export const SQL_OPS: ReadonlyArray<readonly [SqlOp, string]> = [
  ["get", "get (hit)"],
  ["set", "set (overwrite)"],
  ["compareAndSet", "compareAndSet"],
  ["list", "list 100 keys"]
]

/** effect-kv's own contender on each database: the peers' ratios are to it. */
const SQL_REFERENCE = { memory: "memory", redis: "redis", sqlite: "sqlite", pg: "pg" } as const

const sqlTable = (results: Results): string => {
  const rows: Array<Array<string>> = []
  const listHow = (contender: SqlContenderName) =>
    (results.sql ?? []).find((result) => result.contender === contender)?.listHow ?? ""
  for (const [op, label] of SQL_OPS) {
    SQL_CONTENDERS.forEach((contender, i) => {
      const summary = sqlSummary(results, contender, op)
      const reference = sqlSummary(results, SQL_REFERENCE[databaseOf[contender]], op)
      const measured = (results.sql ?? []).some((result) => result.contender === contender)
      rows.push([
        i === 0 ? label : "",
        op === "list" && listHow(contender) !== ""
          ? `${sqlContenderLabel[contender]}: ${listHow(contender)}`
          : sqlContenderLabel[contender],
        ...(summary === undefined
          ? [measured ? "no such operation" : "—", "", ""]
          : [duration(summary.median), spread(summary), count(Math.round(1e9 / summary.median))]),
        summary === undefined || reference === undefined ? "—" : ratio(summary.median / reference.median)
      ])
    })
  }
  return table(
    ["operation", "contender", "median / op", "p25 – p75", "ops/s", "× effect-kv on the same database"],
    rows,
    ["l", "l", "r", "r", "r", "r"]
  )
}

const redisBenchmarkTable = (results: Results): string => {
  const rows = (["SET", "GET"] as const).flatMap((test) => {
    const runs = results.redisBenchmark.filter((row) => row.test === test)
    if (runs.length === 0) return []
    const rps = median(runs.map((row) => row.rps))
    return [[
      test,
      count(Math.round(rps)),
      `${count(Math.round(Math.min(...runs.map((row) => row.rps))))} – ${
        count(Math.round(Math.max(...runs.map((row) => row.rps))))
      }`,
      duration(1e9 / rps),
      `${median(runs.map((row) => row.avgMs)).toFixed(3)} ms`,
      `${median(runs.map((row) => row.p50Ms)).toFixed(3)} ms`
    ]]
  })
  return table(
    ["test", "requests/s (median)", "min – max over rounds", "per request", "avg latency", "p50 latency"],
    rows,
    ["l", "r", "r", "r", "r", "r"]
  )
}

const redisListTable = (results: Results): string => {
  const rows: Array<Array<string>> = []
  for (const size of listSizes(results)) {
    const floor = redisListSummary(results, "scan-1000", size)
    const anchor = redisListSummary(results, "scan-20", size)
    ;([
      "effect-kv+index/node-redis",
      "effect-kv+index/ioredis",
      "effect-kv/node-redis",
      "effect-kv/ioredis",
      "scan-1000",
      "scan-20",
      "keyv",
      "unstorage"
    ] as const).forEach((contender, i) => {
      const summary = redisListSummary(results, contender, size)
      rows.push([
        i === 0 ? `${count(size)} keys` : "",
        LIST_LABELS[contender],
        ...cell(summary, floor),
        summary === undefined || anchor === undefined ? "—" : ratio(anchor.median / summary.median)
      ])
    })
  }
  return table(
    ["keyspace", "contender", "median / list", "p25 – p75", "× COUNT 1000 loop", "faster than COUNT 20 loop"],
    rows,
    ["l", "l", "r", "r", "r", "r"]
  )
}

/** The mean cost of one insert while a child filled its store from empty to N keys, through the store's API. */
const fillTable = (results: Results): string => {
  const sizes = memorySizes(results)
  const stores: ReadonlyArray<readonly [MemoryStoreName, string]> = [
    ["map", "Map"],
    ["effect-kv", "effect-kv memory (runSync per insert)"],
    ["sorted-btree", "sorted-btree alone (the index effect-kv keeps)"],
    ["layerMemory", "KeyValueStore.layerMemory (runSync per insert)"],
    ["keyv", "Keyv (awaited)"],
    ["unstorage", "unstorage memory driver (awaited)"]
  ]
  const rows = stores.map(([store, label]) => [
    label,
    ...sizes.map((size) => {
      const fills = results.memory.filter((result) => result.store === store && result.size === size)
      return fills.length === 0
        ? "—"
        : duration(median(fills.map((result) => (result.fillMs * 1e6) / result.size)))
    })
  ])
  return table(["store", ...sizes.map((size) => `0 → ${count(size)} keys`)], rows, [
    "l",
    ...sizes.map(() => "r" as const)
  ])
}

// ---------------------------------------------------------------------------------------------------------------
// Notes: what the numbers say, computed from them (nothing here is typed in by hand)

const notes = (results: Results): Array<string> => {
  const out: Array<string> = []
  const at100 = (contender: RedisContenderName, op: RedisOp) => redisOpsSummary(results, contender, op, 100)?.median
  const raw = { get: at100("node-redis", "get"), set: at100("node-redis", "set") }
  const fiber = { get: at100("effect/node-redis", "get"), set: at100("effect/node-redis", "set") }
  const ours = { get: at100("effect-kv/node-redis", "get"), set: at100("effect-kv/node-redis", "set") }
  if (
    raw.get !== undefined && raw.set !== undefined && fiber.get !== undefined && fiber.set !== undefined &&
    ours.get !== undefined && ours.set !== undefined
  ) {
    out.push(
      `Redis, 100 in flight: a fiber per node-redis command (\`Effect.promise\`, no effect-kv code) costs ${
        ratio(fiber.get / raw.get)
      } the raw client for get and ${ratio(fiber.set / raw.set)} for set; effect-kv over node-redis, which sends ` +
        `the gets and sets issued in one tick as one MGET or MSET (src/internal/redisCoalesce.ts), costs ${
          ratio(ours.get / raw.get)
        } and ${ratio(ours.set / raw.set)}.`
    )
  }
  const batch = (contender: RedisContenderName, inFlight: 1 | 100) =>
    redisOpsSummary(results, contender, "batch-get", inFlight)?.median
  const [b1, m1, b100, m100] = [
    batch("effect-kv/node-redis", 1),
    batch("node-redis", 1),
    batch("effect-kv/node-redis", 100),
    batch("node-redis", 100)
  ]
  if (b1 !== undefined && m1 !== undefined && b100 !== undefined && m100 !== undefined) {
    out.push(
      `effect-kv's 100 concurrent gets, coalesced into one MGET, cost ${ratio(b1 / m1)} one raw MGET with 1 batch ` +
        `in flight and ${ratio(b100 / m100)} with 100 batches in flight (10,000 gets at once, in MGETs of at most 512).`
    )
  }
  const sizes = memorySizes(results)
  const largest = sizes[sizes.length - 1]
  if (largest !== undefined) {
    const fill = (store: MemoryStoreName) => {
      const fills = results.memory.filter((result) => result.store === store && result.size === largest)
      return fills.length === 0 ? undefined : median(fills.map((result) => (result.fillMs * 1e6) / result.size))
    }
    const [tree, map] = [fill("sorted-btree"), fill("map")]
    const insert = memorySummary(results, "effect-kv", largest, "insert", "gen")?.median
    const del = memorySummary(results, "effect-kv", largest, "delete", "gen")?.median
    const theirs = memorySummary(results, "layerMemory", largest, "insert", "gen")?.median
    if (tree !== undefined && map !== undefined && insert !== undefined && del !== undefined && theirs !== undefined) {
      out.push(
        `Inserts and deletes of effect-kv's memory store also update its B+ tree. At ${count(largest)} keys ` +
          `filling sorted-btree alone costs ${duration(tree)} per key against ${duration(map)} for a Map (key ` +
          `generation included in both): each comparison on the way down the tree reads a key string elsewhere in the ` +
          `heap, rarely in cache at this size. effect-kv's insert (${duration(insert)}) and delete ` +
          `(${duration(del)}) inside Effect.gen are dominated by it; layerMemory's insert is ${duration(theirs)}.`
      )
    }
  }
  const smallest = sizes[0]
  if (smallest !== undefined && largest !== undefined && smallest !== largest) {
    const list = (store: MemoryStoreName, mode: Mode, size: number) =>
      memorySummary(results, store, size, "list-100", mode)?.median
    const [a, b, c, d] = [
      list("effect-kv", "runSync", smallest),
      list("effect-kv", "runSync", largest),
      list("map", "direct", smallest),
      list("map", "direct", largest)
    ]
    if (a !== undefined && b !== undefined && c !== undefined && d !== undefined) {
      out.push(
        `Listing 100 keys with effect-kv's ordered index costs ${duration(a)} at ${count(smallest)} keys and ` +
          `${duration(b)} at ${count(largest)}; a Map's full scan grows from ${duration(c)} to ${duration(d)}.`
      )
    }
  }
  if (!results.quick && results.memory.length > 0) {
    out.push(
      "The same store measured in separate processes on this machine varies by about ±15–20% for sub-microsecond " +
        "operations (heap layout, JIT timing and noisy neighbours), which is why the targets table shows each " +
        "round's ratio and marks verdicts the rounds disagree on."
    )
  }
  return out
}

// ---------------------------------------------------------------------------------------------------------------
// Targets

export interface TargetRow {
  readonly target: string
  readonly measured: string
  /** The same ratio in each round on its own (each round runs the contenders close together in time). */
  readonly range: string
  readonly status: "met" | "MISSED" | "met (rounds disagree)" | "MISSED (rounds disagree)" | "not measured"
}

/** Ours against theirs: the ratio of the pooled medians, and the ratios of each round's medians. */
interface Comparison {
  readonly ours: Summary
  readonly theirs: Summary
  /** ours / theirs */
  readonly value: number
  readonly perRound: ReadonlyArray<number>
}

/** `lookup(round)` gives ours and theirs for one round, or for all rounds pooled when `round` is undefined. */
const compare = (
  results: Results,
  lookup: (round?: number) => readonly [Summary | undefined, Summary | undefined]
): Comparison | undefined => {
  const [ours, theirs] = lookup()
  if (ours === undefined || theirs === undefined) return undefined
  const perRound = roundsOf(results).flatMap((round) => {
    const [a, b] = lookup(round)
    return a === undefined || b === undefined ? [] : [a.median / b.median]
  })
  return { ours, theirs, value: ours.median / theirs.median, perRound }
}

/** 2.1× faster, or 3.4× slower: a speed-up below 1 reads badly as "0.29× faster". */
const speedUp = (value: number): string => value >= 1 ? `${ratio(value)} faster` : `${ratio(1 / value)} slower`

/**
 * The verdict on `ours / theirs ≤ limit` (a speed-up target "≥ N× faster" is `limit = 1 / N`), from the pooled
 * medians; flagged when single rounds would have decided it the other way, i.e. the verdict is within this machine's
 * noise.
 */
const judge = (comparison: Comparison, limit: number): TargetRow["status"] => {
  const met = comparison.value <= limit
  const disagree = comparison.perRound.some((value) => (value <= limit) !== met)
  return met ? (disagree ? "met (rounds disagree)" : "met") : (disagree ? "MISSED (rounds disagree)" : "MISSED")
}

const perRound = (values: ReadonlyArray<number>, show: (value: number) => string): string =>
  values.length === 0 ? "" : values.map(show).join(", ")

const slowdownRow = (target: string, comparison: Comparison, limit: number, where = ""): TargetRow => ({
  target,
  measured: `${ratio(comparison.value)}${where} (${duration(comparison.ours.median)} vs ${
    duration(comparison.theirs.median)
  })`,
  range: perRound(comparison.perRound, ratio),
  status: judge(comparison, limit)
})

const speedUpRow = (target: string, comparison: Comparison, factor: number, where = ""): TargetRow => ({
  target,
  measured: `${speedUp(1 / comparison.value)}${where} (${duration(comparison.ours.median)} vs ${
    duration(comparison.theirs.median)
  })`,
  range: perRound(comparison.perRound, (value) => ratio(1 / value)),
  status: judge(comparison, 1 / factor)
})

const notMeasured = (target: string, why: string): TargetRow => ({
  target,
  measured: why,
  range: "",
  status: "not measured"
})

const modeName = (mode: Mode): string => mode === "gen" ? "1,000 per Effect.gen" : "1 per runSync"

export const targets = (results: Results): Array<TargetRow> => {
  const rows: Array<TargetRow> = []
  const skipped = results.quick ? "not run by --quick" : "not measured in this run"
  const largest = 1_000_000

  // Issue 17: coalescing makes effect-kv cheaper than the raw client it runs on when operations run concurrently, and
  // costs a lone operation little.
  const redisTargets = [["get", 100, 0.8], ["set", 100, 1.0], ["get", 1, 1.2]] as const
  for (const [op, inFlight, limit] of redisTargets) {
    for (const [ours, floor] of [["effect-kv/node-redis", "node-redis"], ["effect-kv/ioredis", "ioredis"]] as const) {
      const target = `Redis ${op}, ${inFlight} in flight: ${redisContenderLabel[ours]} ≤ ${limit.toFixed(1)}× ${
        redisContenderLabel[floor]
      }`
      const comparison = compare(results, (round) => [
        redisOpsSummary(results, ours, op, inFlight, round),
        redisOpsSummary(results, floor, op, inFlight, round)
      ])
      rows.push(comparison === undefined ? notMeasured(target, skipped) : slowdownRow(target, comparison, limit))
    }
  }

  for (const ours of ["effect-kv/node-redis", "effect-kv/ioredis"] as const) {
    const target = `Redis list ${LISTED} among 1M keys: ${
      LIST_LABELS[ours].replace(/ \(.*/, "")
    } ≥ 5× faster than the SCAN COUNT 20 loop`
    const comparison = compare(results, (round) => [
      redisListSummary(results, ours, largest, round),
      redisListSummary(results, "scan-20", largest, round)
    ])
    rows.push(comparison === undefined ? notMeasured(target, skipped) : speedUpRow(target, comparison, 5))
  }

  for (const size of [200_000, largest]) {
    for (const ours of ["effect-kv+index/node-redis", "effect-kv+index/ioredis"] as const) {
      const target = `Redis list ${LISTED} among ${count(size)} keys: ${
        LIST_LABELS[ours]
      } ≥ 1000× faster than the SCAN COUNT 20 loop`
      const comparison = compare(results, (round) => [
        redisListSummary(results, ours, size, round),
        redisListSummary(results, "scan-20", size, round)
      ])
      rows.push(comparison === undefined ? notMeasured(target, skipped) : speedUpRow(target, comparison, 1000))
    }
  }

  const sizes = memorySizes(results)
  /** The size at which effect-kv compares worst (largest ours / theirs), or undefined when a size is missing. */
  const worstOver = (op: string, mode: Mode, against: MemoryStoreName, againstMode: Mode) => {
    let worst: { readonly size: number; readonly comparison: Comparison } | undefined
    for (const size of sizes) {
      const comparison = compare(results, (round) => [
        memorySummary(results, "effect-kv", size, op, mode, round),
        memorySummary(results, against, size, op, againstMode, round)
      ])
      if (comparison === undefined) return undefined
      if (worst === undefined || comparison.value > worst.comparison.value) worst = { size, comparison }
    }
    return worst
  }
  const cheapOps = POINT_OPS.filter(([op]) => op === "get" || op === "overwrite" || op === "delete-missing")

  for (const [op, label] of cheapOps) {
    for (const mode of ["runSync", "gen"] as const) {
      const target = `memory ${label}, ${modeName(mode)}: effect-kv ≤ 1.1× layerMemory at every size`
      const worst = worstOver(op, mode, "layerMemory", mode)
      rows.push(
        worst === undefined
          ? notMeasured(target, skipped)
          : slowdownRow(target, worst.comparison, 1.1, ` at ${shortCount(worst.size)}, the worst size`)
      )
    }
  }

  for (const [op, label] of POINT_OPS.filter(([op]) => op === "insert" || op === "delete")) {
    for (const mode of ["runSync", "gen"] as const) {
      const target = `memory ${label} at 1M keys, ${modeName(mode)}: effect-kv ≤ 3× layerMemory`
      const comparison = compare(results, (round) => [
        memorySummary(results, "effect-kv", largest, op, mode, round),
        memorySummary(results, "layerMemory", largest, op, mode, round)
      ])
      rows.push(comparison === undefined ? notMeasured(target, skipped) : slowdownRow(target, comparison, 3))
    }
  }

  // The same comparison with both stores in one process, their samples interleaved (bench/effect.ts): what a program
  // pays for effect-kv's contract (input checks, expiry, the sorted index, the tracer check) on a hit and an overwrite.
  for (const operation of ["get (hit)", "set (overwrite)"]) {
    for (const mode of ["1 per runSync", "1,000 per Effect.gen"]) {
      const group = `spans: memory ${operation}, ${mode}, 10,000 keys, one process`
      const target = `memory ${operation}, ${mode}, both in one process: effect-kv (no tracer) ≤ 1.1× layerMemory`
      const comparison = compare(results, (round) => [
        contractSummary(results, group, "effect-kv memory, no tracer installed", round),
        contractSummary(results, group, "Effect KeyValueStore.layerMemory: the floor", round)
      ])
      rows.push(comparison === undefined ? notMeasured(target, skipped) : slowdownRow(target, comparison, 1.1))
    }
  }

  for (const [op, label] of cheapOps) {
    for (const peer of ["keyv", "unstorage"] as const) {
      for (const mode of ["runSync", "gen"] as const) {
        const target = `memory ${label}, ${modeName(mode)}: effect-kv ≥ 1.5× faster than ${
          peer === "keyv" ? "Keyv" : "unstorage"
        } (awaited) at every size`
        const worst = worstOver(op, mode, peer, "await")
        rows.push(
          worst === undefined
            ? notMeasured(target, skipped)
            : speedUpRow(target, worst.comparison, 1.5, ` at ${shortCount(worst.size)}, the worst size`)
        )
      }
    }
  }

  {
    const target = `memory list ${LISTED} among 1M keys: effect-kv ≥ 1000× faster than every store that scans`
    const ours = memorySummary(results, "effect-kv", largest, "list-100", "runSync")
    const scanners = LIST_VARIANTS.filter((variant) =>
      variant.store !== "effect-kv" && variant.store !== "sorted-btree"
    ).map((variant) => ({ variant, summary: memorySummary(results, variant.store, largest, "list-100", variant.mode) }))
    const measured = scanners.flatMap(({ summary, variant }) => summary === undefined ? [] : [{ summary, variant }])
    if (ours === undefined || measured.length < scanners.length) rows.push(notMeasured(target, skipped))
    else {
      const fastest = measured.reduce((best, next) => next.summary.median < best.summary.median ? next : best)
      const comparison = compare(results, (round) => [
        memorySummary(results, "effect-kv", largest, "list-100", "runSync", round),
        memorySummary(results, fastest.variant.store, largest, "list-100", fastest.variant.mode, round)
      ])
      if (comparison !== undefined) {
        rows.push(
          speedUpRow(target, comparison, 1000, ` than the fastest scan, ${fastest.variant.label.replace(/:.*/, "")}`)
        )
      }
    }
  }

  {
    const entries = results.bytes[0]?.entries
    const target = "memory bytes per entry at 1M entries: effect-kv ≤ 1.25× Map"
    const ours = results.bytes.find((result) => result.store === "effect-kv")
    const map = results.bytes.find((result) => result.store === "map")
    if (ours === undefined || map === undefined) rows.push(notMeasured(target, skipped))
    else {
      const value = ours.bytesPerEntry / map.bytesPerEntry
      rows.push({
        target,
        measured: `${ratio(value)} (${ours.bytesPerEntry.toFixed(1)} vs ${map.bytesPerEntry.toFixed(1)} B${
          entries === largest ? "" : `, at ${count(entries ?? 0)} entries`
        })`,
        range: "one process",
        status: entries === largest ? (value <= 1.25 ? "met" : "MISSED") : "not measured"
      })
    }
  }
  return rows
}

const targetsTable = (results: Results): string =>
  table(
    ["target", "measured (medians of all rounds)", "each round on its own", "status"],
    targets(results).map((row) => [row.target, row.measured, row.range, row.status]),
    ["l", "l", "l", "l"]
  )

// ---------------------------------------------------------------------------------------------------------------
// Output

interface Section {
  readonly title: string
  readonly body: string
}

/** The groups of the contract suite, in the order they ran, each with its rows pooled across rounds. */
export const contractGroups = (
  results: Results
): Array<{ readonly group: string; readonly rows: Array<{ label: string; floor: boolean; summary: Summary }> }> => {
  const groups = new Map<string, Map<string, { floor: boolean; stats: Array<Stats> }>>()
  for (const result of results.contract) {
    for (const row of result.rows) {
      const rows = groups.get(row.group) ?? new Map()
      groups.set(row.group, rows)
      const entry = rows.get(row.label) ?? { floor: row.floor, stats: [] }
      rows.set(row.label, entry)
      entry.stats.push(row.stats)
    }
  }
  return [...groups].map(([group, rows]) => ({
    group,
    rows: [...rows].map(([label, { floor, stats }]) => ({ label, floor, summary: summarize(stats) }))
  }))
}

const contractTable = (rows: ReadonlyArray<{ label: string; floor: boolean; summary: Summary }>): string => {
  const floor = rows.find((row) => row.floor)?.summary
  return table(
    ["", "median", "p25 – p75", "× floor"],
    rows.map((
      { label, summary }
    ) => [
      label,
      duration(summary.median),
      spread(summary),
      floor === undefined ? "—" : ratio(summary.median / floor.median)
    ])
  )
}

const sections = (results: Results): Array<Section> => {
  const out: Array<Section> = []
  const sizes = memorySizes(results)
  if (sizes.length > 0) {
    const largestSize = sizes[sizes.length - 1]
    out.push({
      title: `Memory: medians per operation at ${count(largestSize)} keys`,
      body: memoryOverview(results, largestSize)
    })
    for (const size of sizes) {
      out.push({ title: `Memory, ${count(size)} keys: point operations`, body: memoryPointTable(results, size) })
      out.push({ title: `Memory, ${count(size)} keys: list under a prefix`, body: memoryListTable(results, size) })
    }
  }
  if (sizes.length > 0) {
    out.push({ title: "Memory: filling the store, per insert", body: fillTable(results) })
  }
  if (results.bytes.length > 0) {
    out.push({
      title: `Memory: heap per entry, ${count(results.bytes[0].entries)} entries`,
      body: bytesTable(results)
    })
  }
  if (results.redisOps.length > 0) {
    out.push({ title: "Redis: get, set and 100-key batch get", body: redisOpsTable(results) })
  }
  if (results.redisBenchmark.length > 0) {
    out.push({
      title: "Redis: redis-benchmark on the same server (-c 100 -P 1 -d 200)",
      body: redisBenchmarkTable(results)
    })
  }
  if (results.redisList.length > 0) {
    const builds = (results.redisIndexBuild ?? []).map(({ ms, size }) =>
      `${count(size)} keys in ${(ms / 1000).toFixed(1)} s`
    )
    const rebuilt = builds.length === 0
      ? ""
      : `\n\nThe ordered index was rebuilt from a SCAN of the keyspace before each size (the keys were written ` +
        `without it): ${builds.join(", ")}.`
    out.push({ title: `Redis: list of ${LISTED} keys under a prefix`, body: redisListTable(results) + rebuilt })
  }
  for (const { group, rows } of contractGroups(results)) {
    out.push({ title: `Contract: ${group}`, body: contractTable(rows) })
  }
  if ((results.sql ?? []).length > 0) {
    const size = results.sql![0].size
    out.push({
      title: `Durable stores: PostgreSQL and SQLite beside memory and Redis, ${count(size)} keys, 1 in flight`,
      body: sqlTable(results)
    })
  }
  out.push(...uploadSections(results.uploads ?? []))
  out.push({ title: "Targets", body: targetsTable(results) })
  const observations = notes(results)
  if (observations.length > 0) out.push({ title: "Notes", body: observations.map((note) => `- ${note}`).join("\n") })
  return out
}

export const renderTerminal = (results: Results): string =>
  `\n${sections(results).map((section) => `## ${section.title}\n\n${section.body}\n`).join("\n")}${
    results.quick
      ? "\n--quick: short samples on small keyspaces, one round; a smoke test, so read the verdicts as indicative only.\n"
      : ""
  }`

const environmentTable = (environment: Environment): string =>
  table(["", ""], [
    ["CPU", environment.cpu],
    ["cores (available parallelism)", String(environment.cores)],
    ["RAM", `${environment.memoryGiB.toFixed(1)} GiB`],
    ["OS", environment.os],
    ["Node.js", environment.node],
    ["npm", environment.npm],
    ["redis-server", environment.redisServer],
    ...environment.packages.map(([name, version]) => [name, version])
  ])

export const renderDocument = (results: Results, charts: ReadonlyArray<Chart>): string => {
  const all = sections(results)
  const section = (title: string) => all.filter((candidate) => candidate.title.startsWith(title))
  const render = (picked: ReadonlyArray<Section>) =>
    picked.map((candidate) => `### ${candidate.title}\n\n${candidate.body}\n`).join("\n")
  const chart = (file: string) => {
    const found = charts.find((candidate) => candidate.file === file)
    return found === undefined ? "" : `![${found.title}](bench/charts/${found.file})\n`
  }
  const env = results.environment
  return `# effect-kv benchmarks

Written by \`${results.command}\` on ${results.startedAt.slice(0, 10)} (wall time ${
    (results.wallMs / 60_000).toFixed(1)
  } min); do not edit by hand, run it again. \`npm run bench -- --quick\` is the short CI smoke run: it prints
the same tables for smaller keyspaces and does not touch this file.

Machine: ${env.cpu}, ${env.cores} cores, ${env.memoryGiB.toFixed(0)} GiB RAM, ${env.os}. It is a shared
virtual machine with noisy neighbours: read differences under about 10% as noise, and look at the p25 – p75 columns.

## How it is measured

- **Harness.** [mitata](https://github.com/evanwashere/mitata) samples every row after a warm-up; each sample is a
  batch of operations timed as a whole and divided by the batch size (1,000 for point operations; enough listings for
  about 0.2 ms), and every result is consumed so nothing is optimised away. A listing that takes over a second (a
  full scan of a million-entry Keyv or unstorage store, the COUNT 20 loop over a million Redis keys) is timed once per
  round, by the call that checks its result. Tables show the **median** and the
  **p25 – p75** of all samples of all rounds, and the **ratio to the floor** (plain \`Map\`; the raw client over Redis).
- **Isolation and rounds.** Every store at every keyspace size, and every Redis listing contender, runs in its own
  fresh Node process (\`node --expose-gc --import tsx bench/<suite>.ts\`), so the garbage of one cannot slow the next.
  The Redis operations run in one process per client library (raw node-redis, effect-kv over it, its ordered index
  and a bare fiber per command; raw ioredis and effect-kv over it; Keyv and unstorage alone): each operation is warmed
  up on every contender of the process, then sampled one contender after the other in a rotating order, with a full
  collection before each sample, so the ratios the Redis targets are stated in compare samples taken moments apart.
  The whole set is repeated in rounds (3; 2 for the million-key variants) with the order rotated each round; the
  targets table shows each round's ratio beside the pooled one.
- **Keys and values.** Keys are \`upload:<uuid>\`, values 200 distinct characters, built as flat strings (as they
  arrive from a request); reads and writes pick random existing keys, so at 1M keys they miss the CPU caches as real
  traffic does. A keyspace of N keys holds N − 1,110 bulk keys plus 10, 100 and 1,000 keys under \`upload:g10:\`,
  \`upload:g100:\` and \`upload:g1000:\`, the prefixes listed.
- **Writes really write.** An insert sets 1,000 keys that are missing and, untimed, deletes them again; a delete
  removes 1,000 existing keys and, untimed, puts them back; so the keyspace stays within N ± 1,000 and every sample
  finds the state its row claims. Each child checks this (and every listing's result) and fails the run otherwise.
- **Effect stores** run every point operation two ways: one operation per \`Effect.runSync\` (what a call from
  non-Effect code costs) and 1,000 operations inside one \`Effect.gen\` (per-op cost = total / 1,000: what code already
  inside Effect pays). Listings run one per \`runSync\`. Promise stores (Keyv, unstorage) are awaited one at a time.
- **Listing** returns what effect-kv's contract returns (keys under the prefix, prefix removed, sorted). Stores
  without an ordered index scan everything: \`Map\` (startsWith + slice + sort), \`layerMemory\` (\`keys\` + filter),
  Keyv (its iterator: every entry, deserialized), unstorage (\`getKeys\`: every key of the driver, normalised).
- **Memory** is the heap used after forced collections, before and after inserting 1,000,000 entries through the
  store's own API, per entry, in a fresh process per store.
- **Redis.** The bench starts its own \`redis-server\` on a free loopback port (test/support/RedisServer.ts) with
  100,000 keys (pipelined MSETs). Raw node-redis is created as effect-kv creates its client
  (\`disableOfflineQueue\`, and \`withCommandOptions({ timeout: 0 })\`, without which node-redis v6 spends most of
  its time on a per-command AbortSignal); raw ioredis likewise (\`enableOfflineQueue: false\`,
  \`maxRetriesPerRequest: 0\`). effect-kv is built by \`layerRedis({ url, client })\`. Keyv (\`createKeyv(url)\`, on
  its own node-redis 5) and unstorage (its redis driver, on ioredis) run with their defaults. Every contender first
  writes the keys it reads (Keyv reads only its own JSON envelopes). **1 in flight**: one worker doing operations
  back to back. **100 in flight**: 100 workers each doing their share back to back (100 async functions, or 100
  fibers under \`Effect.all(..., { concurrency: "unbounded" })\`); per-op cost = wall time / operations. **Batch get**:
  raw clients MGET, Keyv \`getMany\` and unstorage \`getItems\` (one MGET each); effect-kv's batch is 100 concurrent
  \`get\`s in one \`Effect.forEach(..., { concurrency: "unbounded" })\`, which its coalescing sends as one MGET.
  **Listing** 100 keys among 200,000 and among 1,000,000 (grown with \`DEBUG POPULATE\`, keys \`upload:<n>\`):
  effect-kv's SCAN COUNT 1000, and its ordered index (\`orderedIndex: true\`: one ZRANGEBYLEX in a Lua script,
  rebuilt from a SCAN before each size since the keys were written without it), against a raw
  \`SCAN MATCH prefix* COUNT 20\` loop (how the peers list), Keyv's iterator and unstorage's \`getKeys\`. The
  operations suite runs effect-kv with the index too: its \`set\` row is what the index adds to a write.
  \`redis-benchmark -c 100 -P 1 -d 200 -t get,set\` (with \`-n ${count(100_000)} -r 100000 --dbnum 1\`) on the same
  server is the ceiling of the server itself.

## Targets

${render(section("Targets")).replace(/^### Targets\n\n/, "")}
${render(section("Notes")).replace(/^### Notes/, "## Notes")}
## Charts

${chart("memory-ops.svg")}
${chart("memory-list.svg")}
${chart("redis-ops.svg")}
${chart("redis-list.svg")}
## In memory

${render(section("Memory"))}
## Redis

${render(section("Redis"))}
## Durable stores

Each contender fills an empty table (a new SQLite file; the same PostgreSQL table each round) with its keyspace
through its own API, then runs one operation at a time. SQLite files are in WAL mode; PostgreSQL is the harness's
server (test/support/PostgresServer.ts, \`fsync=off\`), so its rows measure the round trip and the statements, not
the disk. Keyv and Effect's \`KeyValueStore\` have no compare-and-set and no listing by prefix: their \`list\` row is
what a user does instead (every key, then a filter).

${render(section("Durable"))}

## Upload server

\`bench/uploads.ts\` runs each upload server in a process of its own (\`bench/support/uploadServers.ts\`) and drives it
with one tus-js-client 4.3.1 in the benchmark's process: effect-kv's server (\`apps/upload-server\`, as \`npm start\`
runs it, request log included) on the memory store and on Redis, and @tus/server 2.4.5 with @tus/file-store on
@tus/utils' \`MemoryKvStore\` and on its \`RedisKvStore\` (node-redis), all on the same redis-server.

${render(section("Upload server"))}
## Environment

${environmentTable(env)}
`
}
