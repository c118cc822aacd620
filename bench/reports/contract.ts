/**
 * The contract suites' tables (`bench/contract.ts`: atomic updates, expiry, batches, paging, bounded memory;
 * `bench/effect.ts`: spans, Effect's `PersistedCache` and `KeyValueStore` beside effect-kv), one table per group with
 * each row's ratio to the group's floor, and the targets stated on the groups measured in one process.
 */
import type { Stats } from "../support/measure.ts"
import { duration, ratio, spread, summarize, type Summary, table } from "../support/stats.ts"
import { pool, type Results, type Section } from "./results.ts"
import { compare, notMeasured, skipped, slowdownRow, type TargetRow } from "./targets.ts"

/** A row of a group, pooled across rounds or of one. */
const contractSummary = (results: Results, group: string, label: string, round?: number): Summary | undefined =>
  pool(
    results.contract.filter((result) => round === undefined || result.round === round).flatMap((result) =>
      result.rows.filter((row) => row.group === group && row.label === label).map((row) => row.stats)
    )
  )

interface GroupRow {
  readonly label: string
  readonly floor: boolean
  readonly summary: Summary
}

/** The groups in the order they ran, each with its rows pooled across rounds. */
const contractGroups = (results: Results): Array<{ readonly group: string; readonly rows: Array<GroupRow> }> => {
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

const groupTable = (rows: ReadonlyArray<GroupRow>): string => {
  const floor = rows.find((row) => row.floor)?.summary
  return table(
    ["", "median", "p25 – p75", "× floor"],
    rows.map(({ label, summary }) => [
      label,
      duration(summary.median),
      spread(summary),
      floor === undefined ? "—" : ratio(summary.median / floor.median)
    ])
  )
}

export const contractSections = (results: Results): Array<Section> =>
  contractGroups(results).map(({ group, rows }) => ({ title: `Contract: ${group}`, body: groupTable(rows) }))

/**
 * effect-kv's memory store beside `layerMemory` with both in one process, their samples interleaved
 * (bench/effect.ts): what a program pays for effect-kv's contract (input checks, expiry, the sorted index, the tracer
 * check) on a hit and an overwrite.
 */
export const contractTargets = (results: Results): Array<TargetRow> => {
  const rows: Array<TargetRow> = []
  for (const operation of ["get (hit)", "set (overwrite)"]) {
    for (const mode of ["1 per runSync", "1,000 per Effect.gen"]) {
      const group = `spans: memory ${operation}, ${mode}, 10,000 keys, one process`
      const target = `memory ${operation}, ${mode}, both in one process: effect-kv (no tracer) ≤ 1.1× layerMemory`
      const comparison = compare(results, (round) => [
        contractSummary(results, group, "effect-kv memory, no tracer installed", round),
        contractSummary(results, group, "Effect KeyValueStore.layerMemory: the floor", round)
      ])
      rows.push(comparison === undefined ? notMeasured(target, skipped(results)) : slowdownRow(target, comparison, 1.1))
    }
  }
  return rows
}
