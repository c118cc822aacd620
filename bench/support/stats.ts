/**
 * Summaries across rounds and the number formats of the tables.
 *
 * The samples of every round of a row are pooled before the median and quartiles are taken, so a round disturbed
 * by a noisy neighbour widens the spread instead of silently replacing the median.
 */
import type { Stats } from "./measure.ts"

export interface Summary {
  /** Nanoseconds per operation. */
  readonly median: number
  readonly p25: number
  readonly p75: number
  readonly min: number
  readonly max: number
  readonly samples: number
  readonly rounds: number
}

const quantile = (sorted: ReadonlyArray<number>, q: number): number => {
  if (sorted.length === 1) return sorted[0]
  const at = q * (sorted.length - 1)
  const low = Math.floor(at)
  const high = Math.min(sorted.length - 1, low + 1)
  return sorted[low] + (sorted[high] - sorted[low]) * (at - low)
}

export const summarize = (rounds: ReadonlyArray<Stats>): Summary => {
  const pooled = rounds.flatMap((stats) => stats.samples).sort((a, b) => a - b)
  if (pooled.length === 0) throw new Error("no samples to summarize")
  return {
    median: quantile(pooled, 0.5),
    p25: quantile(pooled, 0.25),
    p75: quantile(pooled, 0.75),
    min: pooled[0],
    max: pooled[pooled.length - 1],
    samples: pooled.length,
    rounds: rounds.length
  }
}

const significant = (value: number, digits = 3): string => {
  if (value === 0) return "0"
  // Round first, so 9.9996 becomes 10.0 and not "10.00".
  const rounded = Number(value.toPrecision(digits))
  const magnitude = Math.floor(Math.log10(Math.abs(rounded)))
  const decimals = Math.max(0, digits - 1 - magnitude)
  return rounded.toFixed(decimals)
}

/** 123 ns, 1.23 µs, 12.3 ms, 4.12 s. */
export const duration = (ns: number): string => {
  if (ns < 1e3) return `${significant(ns)} ns`
  if (ns < 1e6) return `${significant(ns / 1e3)} µs`
  if (ns < 1e9) return `${significant(ns / 1e6)} ms`
  return `${significant(ns / 1e9)} s`
}

export const spread = (summary: Summary): string => `${duration(summary.p25)} – ${duration(summary.p75)}`

/** A ratio of times: 1.07×, 0.000283×, 3,610×. */
export const ratio = (value: number): string =>
  value >= 1000 ? `${Math.round(value).toLocaleString("en-US")}×` : `${significant(value)}×`

export const count = (value: number): string => value.toLocaleString("en-US")

/** 10k, 100k, 1M. */
export const shortCount = (value: number): string =>
  value >= 1e6 ? `${value / 1e6}M` : value >= 1e3 ? `${value / 1e3}k` : String(value)

/** A Markdown table whose columns are padded, so it reads as well in a terminal as rendered. */
export const table = (
  headers: ReadonlyArray<string>,
  rows: ReadonlyArray<ReadonlyArray<string>>,
  align: ReadonlyArray<"l" | "r"> = []
): string => {
  const widths = headers.map((header, column) =>
    Math.max(3, header.length, ...rows.map((row) => (row[column] ?? "").length))
  )
  const cell = (text: string, column: number) =>
    align[column] === "r" ? text.padStart(widths[column]) : text.padEnd(widths[column])
  const line = (cells: ReadonlyArray<string>) => `| ${cells.map((text, column) => cell(text, column)).join(" | ")} |`
  const rule = `| ${
    widths.map((width, column) => align[column] === "r" ? `${"-".repeat(width - 1)}:` : "-".repeat(width)).join(" | ")
  } |`
  return [line(headers), rule, ...rows.map((row) => line(headers.map((_, column) => row[column] ?? "")))].join("\n")
}
