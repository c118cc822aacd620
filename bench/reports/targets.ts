/**
 * The targets table: each suite states its own targets (`memoryTargets`, `redisTargets`, ...) with the helpers here,
 * which judge a ratio of pooled medians and show the same ratio in each round beside it, so a verdict within this
 * machine's noise is marked as such.
 */
import { duration, ratio, type Summary, table } from "../support/stats.ts"
import { type Results, roundsOf } from "./results.ts"

export interface TargetRow {
  readonly target: string
  readonly measured: string
  /** The same ratio in each round on its own (each round runs the contenders close together in time). */
  readonly range: string
  readonly status: "met" | "MISSED" | "met (rounds disagree)" | "MISSED (rounds disagree)" | "not measured"
}

/** Ours against theirs: the ratio of the pooled medians, and the ratios of each round's medians. */
export interface Comparison {
  readonly ours: Summary
  readonly theirs: Summary
  /** ours / theirs */
  readonly value: number
  readonly perRound: ReadonlyArray<number>
}

/** `lookup(round)` gives ours and theirs for one round, or for all rounds pooled when `round` is undefined. */
export const compare = (
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

export const slowdownRow = (target: string, comparison: Comparison, limit: number, where = ""): TargetRow => ({
  target,
  measured: `${ratio(comparison.value)}${where} (${duration(comparison.ours.median)} vs ${
    duration(comparison.theirs.median)
  })`,
  range: perRound(comparison.perRound, ratio),
  status: judge(comparison, limit)
})

export const speedUpRow = (target: string, comparison: Comparison, factor: number, where = ""): TargetRow => ({
  target,
  measured: `${speedUp(1 / comparison.value)}${where} (${duration(comparison.ours.median)} vs ${
    duration(comparison.theirs.median)
  })`,
  range: perRound(comparison.perRound, (value) => ratio(1 / value)),
  status: judge(comparison, 1 / factor)
})

export const notMeasured = (target: string, why: string): TargetRow => ({
  target,
  measured: why,
  range: "",
  status: "not measured"
})

/** Why a target has no figure: a quick run skips the sizes it is stated at. */
export const skipped = (results: Results): string => results.quick ? "not run by --quick" : "not measured in this run"

export const targetsTable = (rows: ReadonlyArray<TargetRow>): string =>
  table(
    ["target", "measured (medians of all rounds)", "each round on its own", "status"],
    rows.map((row) => [row.target, row.measured, row.range, row.status]),
    ["l", "l", "l", "l"]
  )
