/**
 * The in-memory suites' tables (`bench/memory.ts`, `bench/memoryBytes.ts`): point operations and listings per
 * keyspace size beside a plain `Map`, the cost of filling each store, heap per entry, the figures the notes quote,
 * and the memory targets.
 */
import type { Mode, PointOp } from "../memory.ts"
import type { MemoryStoreName } from "../support/memoryStores.ts"
import { LISTED } from "../support/redisContenders.ts"
import { count, duration, ratio, shortCount, spread, type Summary, table } from "../support/stats.ts"
import { median, pool, type Results, type Section } from "./results.ts"
import { compare, type Comparison, notMeasured, skipped, slowdownRow, speedUpRow, type TargetRow } from "./targets.ts"

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

interface MemoryVariant {
  readonly store: MemoryStoreName
  readonly mode: Mode
  readonly label: string
}

const POINT_VARIANTS: ReadonlyArray<MemoryVariant> = [
  { store: "map", mode: "direct", label: "Map (floor)" },
  { store: "effect-kv", mode: "runSync", label: "effect-kv memory, 1 op per runSync" },
  { store: "effect-kv", mode: "gen", label: "effect-kv memory, 1,000 ops per Effect.gen" },
  { store: "layerMemory", mode: "runSync", label: "KeyValueStore.layerMemory, 1 op per runSync" },
  { store: "layerMemory", mode: "gen", label: "KeyValueStore.layerMemory, 1,000 ops per Effect.gen" },
  { store: "keyv", mode: "await", label: "Keyv (default Map store), awaited" },
  { store: "unstorage", mode: "await", label: "unstorage memory driver, awaited" }
]

const LIST_VARIANTS: ReadonlyArray<MemoryVariant> = [
  { store: "map", mode: "direct", label: "Map: full scan + startsWith + sort (floor)" },
  { store: "effect-kv", mode: "runSync", label: "effect-kv memory (B+ tree range read)" },
  { store: "sorted-btree", mode: "direct", label: "sorted-btree range read (raw index, reference)" },
  { store: "layerMemory", mode: "runSync", label: "KeyValueStore.layerMemory: keys + filter" },
  { store: "keyv", mode: "await", label: "Keyv: iterator full scan" },
  { store: "unstorage", mode: "await", label: "unstorage memory: getKeys" }
]

const POINT_OPS: ReadonlyArray<readonly [PointOp, string]> = [
  ["get", "get (hit)"],
  ["overwrite", "set, overwrite"],
  ["insert", "set, new key (insert)"],
  ["delete", "delete, existing key"],
  ["delete-missing", "delete, missing key"]
]

const LIST_COUNTS = [10, 100, 1000] as const

const cell = (summary: Summary | undefined, floor: Summary | undefined): [string, string, string] =>
  summary === undefined
    ? ["—", "—", "—"]
    : [duration(summary.median), spread(summary), floor === undefined ? "—" : ratio(summary.median / floor.median)]

const pointTable = (results: Results, size: number): string => {
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

const listTable = (results: Results, size: number): string => {
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
const overview = (results: Results, size: number): string => {
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

/** The median cost of one insert while a child filled its store from empty to `size` keys, through the store's API. */
const fillCost = (results: Results, store: MemoryStoreName, size: number): number | undefined => {
  const fills = results.memory.filter((result) => result.store === store && result.size === size)
  return fills.length === 0 ? undefined : median(fills.map((result) => (result.fillMs * 1e6) / result.size))
}

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
      const cost = fillCost(results, store, size)
      return cost === undefined ? "—" : duration(cost)
    })
  ])
  return table(["store", ...sizes.map((size) => `0 → ${count(size)} keys`)], rows, [
    "l",
    ...sizes.map(() => "r" as const)
  ])
}

export const memorySections = (results: Results): Array<Section> => {
  const out: Array<Section> = []
  const sizes = memorySizes(results)
  if (sizes.length > 0) {
    const largest = sizes[sizes.length - 1]
    out.push({ title: `Memory: medians per operation at ${count(largest)} keys`, body: overview(results, largest) })
    for (const size of sizes) {
      out.push({ title: `Memory, ${count(size)} keys: point operations`, body: pointTable(results, size) })
      out.push({ title: `Memory, ${count(size)} keys: list under a prefix`, body: listTable(results, size) })
    }
    out.push({ title: "Memory: filling the store, per insert", body: fillTable(results) })
  }
  if (results.bytes.length > 0) {
    out.push({
      title: `Memory: heap per entry, ${count(results.bytes[0].entries)} entries`,
      body: bytesTable(results)
    })
  }
  return out
}

/** Figures that say why the index costs what it costs, as sentences for the notes. */
export const memoryNotes = (results: Results): Array<string> => {
  const out: Array<string> = []
  const sizes = memorySizes(results)
  const largest = sizes[sizes.length - 1]
  if (largest !== undefined) {
    const [tree, map] = [fillCost(results, "sorted-btree", largest), fillCost(results, "map", largest)]
    const insert = memorySummary(results, "effect-kv", largest, "insert", "gen")?.median
    const del = memorySummary(results, "effect-kv", largest, "delete", "gen")?.median
    const theirs = memorySummary(results, "layerMemory", largest, "insert", "gen")?.median
    if (tree !== undefined && map !== undefined && insert !== undefined && del !== undefined && theirs !== undefined) {
      out.push(
        `At ${count(largest)} keys filling sorted-btree alone costs ${duration(tree)} per key against ` +
          `${duration(map)} for a Map; effect-kv's insert (${duration(insert)}) and delete (${duration(del)}) ` +
          `inside Effect.gen; layerMemory's insert ${duration(theirs)}.`
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
  return out
}

const modeName = (mode: Mode): string => mode === "gen" ? "1,000 per Effect.gen" : "1 per runSync"

const LARGEST = 1_000_000

export const memoryTargets = (results: Results): Array<TargetRow> => {
  const rows: Array<TargetRow> = []
  const why = skipped(results)
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
          ? notMeasured(target, why)
          : slowdownRow(target, worst.comparison, 1.1, ` at ${shortCount(worst.size)}, the worst size`)
      )
    }
  }

  for (const [op, label] of POINT_OPS.filter(([op]) => op === "insert" || op === "delete")) {
    for (const mode of ["runSync", "gen"] as const) {
      const target = `memory ${label} at 1M keys, ${modeName(mode)}: effect-kv ≤ 3× layerMemory`
      const comparison = compare(results, (round) => [
        memorySummary(results, "effect-kv", LARGEST, op, mode, round),
        memorySummary(results, "layerMemory", LARGEST, op, mode, round)
      ])
      rows.push(comparison === undefined ? notMeasured(target, why) : slowdownRow(target, comparison, 3))
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
            ? notMeasured(target, why)
            : speedUpRow(target, worst.comparison, 1.5, ` at ${shortCount(worst.size)}, the worst size`)
        )
      }
    }
  }

  {
    const target = `memory list ${LISTED} among 1M keys: effect-kv ≥ 1000× faster than every store that scans`
    const ours = memorySummary(results, "effect-kv", LARGEST, "list-100", "runSync")
    const scanners = LIST_VARIANTS.filter((variant) =>
      variant.store !== "effect-kv" && variant.store !== "sorted-btree"
    ).map((variant) => ({ variant, summary: memorySummary(results, variant.store, LARGEST, "list-100", variant.mode) }))
    const measured = scanners.flatMap(({ summary, variant }) => summary === undefined ? [] : [{ summary, variant }])
    if (ours === undefined || measured.length < scanners.length) rows.push(notMeasured(target, why))
    else {
      const fastest = measured.reduce((best, next) => next.summary.median < best.summary.median ? next : best)
      const comparison = compare(results, (round) => [
        memorySummary(results, "effect-kv", LARGEST, "list-100", "runSync", round),
        memorySummary(results, fastest.variant.store, LARGEST, "list-100", fastest.variant.mode, round)
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
    if (ours === undefined || map === undefined) rows.push(notMeasured(target, why))
    else {
      const value = ours.bytesPerEntry / map.bytesPerEntry
      rows.push({
        target,
        measured: `${ratio(value)} (${ours.bytesPerEntry.toFixed(1)} vs ${map.bytesPerEntry.toFixed(1)} B${
          entries === LARGEST ? "" : `, at ${count(entries ?? 0)} entries`
        })`,
        range: "one process",
        status: entries === LARGEST ? (value <= 1.25 ? "met" : "MISSED") : "not measured"
      })
    }
  }
  return rows
}
