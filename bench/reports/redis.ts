/**
 * The Redis suite's tables (`bench/redis.ts`): get, set and a 100-key batch with 1 and 100 in flight beside the raw
 * clients and `redis-benchmark`, listing under a prefix against the SCAN loops, the figures the notes quote, and the
 * Redis targets.
 */
import type { RedisOp } from "../redis.ts"
import {
  type ListContenderName,
  LISTED,
  redisContenderLabel,
  type RedisContenderName
} from "../support/redisContenders.ts"
import { count, duration, ratio, spread, type Summary, table } from "../support/stats.ts"
import { median, pool, type Results, type Section } from "./results.ts"
import { compare, notMeasured, skipped, slowdownRow, speedUpRow, type TargetRow } from "./targets.ts"

const redisOpsSummary = (
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

const listSizes = (results: Results): Array<number> =>
  [...new Set(results.redisList.map((result) => result.size))].sort((a, b) => a - b)

const redisListSummary = (
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

/** redis-benchmark's requests per second for a test (median over rounds), as nanoseconds per request. */
const redisBenchmarkNs = (results: Results, test: "GET" | "SET"): number | undefined => {
  const rps = results.redisBenchmark.filter((row) => row.test === test).map((row) => row.rps)
  return rps.length === 0 ? undefined : 1e9 / median(rps)
}

const REDIS_OPS: ReadonlyArray<readonly [RedisOp, string]> = [
  ["get", "get"],
  ["set", "set (overwrite)"],
  ["batch-get", "batch get, 100 keys"]
]

const REDIS_ROWS: ReadonlyArray<RedisContenderName> = [
  "node-redis",
  "effect/node-redis",
  "effect-kv/node-redis",
  "effect-kv+index/node-redis",
  "ioredis",
  "effect-kv/ioredis",
  "keyv",
  "unstorage"
]

const LIST_LABELS: Record<ListContenderName, string> = {
  "effect-kv/node-redis": "effect-kv over node-redis (SCAN COUNT 1000)",
  "effect-kv/ioredis": "effect-kv over ioredis (SCAN COUNT 1000)",
  "effect-kv+index/node-redis": "effect-kv over node-redis (ordered index: ZRANGEBYLEX)",
  "effect-kv+index/ioredis": "effect-kv over ioredis (ordered index: ZRANGEBYLEX)",
  "scan-1000": "raw node-redis SCAN MATCH loop, COUNT 1000 (floor)",
  "scan-20": "raw node-redis SCAN MATCH loop, COUNT 20 (the peers' way)",
  "keyv": "Keyv @keyv/redis: iterator (SCAN MATCH *, MGET of every key) + filter",
  "unstorage": "unstorage redis driver: getKeys (SCAN MATCH prefix*, default COUNT)"
}

/** How each contender gets 100 keys at once. */
const BATCH_HOW: Record<RedisContenderName, string> = {
  "effect-kv/node-redis": "100 concurrent gets (coalesced into MGET)",
  "effect-kv/ioredis": "100 concurrent gets (coalesced into MGET)",
  "effect-kv+index/node-redis": "100 concurrent gets (coalesced into MGET)",
  "effect/node-redis": "100 concurrent gets",
  "node-redis": "MGET",
  "ioredis": "MGET",
  "keyv": "getMany (one MGET)",
  "unstorage": "getItems (one MGET)"
}

const opsTable = (results: Results): string => {
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

const benchmarkTable = (results: Results): string => {
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

const listTable = (results: Results): string => {
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
        ...(summary === undefined
          ? ["—", "—", "—"]
          : [
            duration(summary.median),
            spread(summary),
            floor === undefined ? "—" : ratio(summary.median / floor.median)
          ]),
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

/** How long the ordered index took to rebuild before each listing size, as a figure line under the table. */
const indexBuilds = (results: Results): string => {
  const builds = (results.redisIndexBuild ?? []).map(({ ms, size }) =>
    `${count(size)} keys in ${(ms / 1000).toFixed(1)} s`
  )
  return builds.length === 0 ? "" : `\n\nOrdered index rebuilt from a SCAN: ${builds.join(", ")}.`
}

export const redisSections = (results: Results): Array<Section> => {
  const out: Array<Section> = []
  if (results.redisOps.length > 0) {
    out.push({ title: "Redis: get, set and 100-key batch get", body: opsTable(results) })
  }
  if (results.redisBenchmark.length > 0) {
    out.push({
      title: "Redis: redis-benchmark on the same server (-c 100 -P 1 -d 200)",
      body: benchmarkTable(results)
    })
  }
  if (results.redisList.length > 0) {
    out.push({ title: `Redis: list of ${LISTED} keys under a prefix`, body: listTable(results) + indexBuilds(results) })
  }
  return out
}

/** The cost of a fiber per command and of coalescing, as sentences for the notes. */
export const redisNotes = (results: Results): Array<string> => {
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
      } the raw client for get and ${ratio(fiber.set / raw.set)} for set; effect-kv over node-redis costs ${
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
        `in flight and ${ratio(b100 / m100)} with 100 batches in flight.`
    )
  }
  return out
}

const LARGEST = 1_000_000

export const redisTargets = (results: Results): Array<TargetRow> => {
  const rows: Array<TargetRow> = []
  const why = skipped(results)
  // Issue 17: coalescing makes effect-kv cheaper than the raw client it runs on when operations run concurrently, and
  // costs a lone operation little.
  const limits = [["get", 100, 0.8], ["set", 100, 1.0], ["get", 1, 1.2]] as const
  for (const [op, inFlight, limit] of limits) {
    for (const [ours, floor] of [["effect-kv/node-redis", "node-redis"], ["effect-kv/ioredis", "ioredis"]] as const) {
      const target = `Redis ${op}, ${inFlight} in flight: ${redisContenderLabel[ours]} ≤ ${limit.toFixed(1)}× ${
        redisContenderLabel[floor]
      }`
      const comparison = compare(results, (round) => [
        redisOpsSummary(results, ours, op, inFlight, round),
        redisOpsSummary(results, floor, op, inFlight, round)
      ])
      rows.push(comparison === undefined ? notMeasured(target, why) : slowdownRow(target, comparison, limit))
    }
  }

  for (const ours of ["effect-kv/node-redis", "effect-kv/ioredis"] as const) {
    const target = `Redis list ${LISTED} among 1M keys: ${
      LIST_LABELS[ours].replace(/ \(.*/, "")
    } ≥ 5× faster than the SCAN COUNT 20 loop`
    const comparison = compare(results, (round) => [
      redisListSummary(results, ours, LARGEST, round),
      redisListSummary(results, "scan-20", LARGEST, round)
    ])
    rows.push(comparison === undefined ? notMeasured(target, why) : speedUpRow(target, comparison, 5))
  }

  for (const size of [200_000, LARGEST]) {
    for (const ours of ["effect-kv+index/node-redis", "effect-kv+index/ioredis"] as const) {
      const target = `Redis list ${LISTED} among ${count(size)} keys: ${
        LIST_LABELS[ours]
      } ≥ 1000× faster than the SCAN COUNT 20 loop`
      const comparison = compare(results, (round) => [
        redisListSummary(results, ours, size, round),
        redisListSummary(results, "scan-20", size, round)
      ])
      rows.push(comparison === undefined ? notMeasured(target, why) : speedUpRow(target, comparison, 1000))
    }
  }
  return rows
}
