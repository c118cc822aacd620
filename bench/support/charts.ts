/**
 * Hand-written SVG charts for BENCHMARKS.md: no dependency, and a diff of the file shows what moved.
 *
 * Costs span seven orders of magnitude (a `Map.get` against a full Keyv scan), so every axis of time is
 * logarithmic; a linear axis would show one bar and six invisible ones.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import type { MemoryStoreName } from "./memoryStores.ts"
import type { ListContenderName, RedisContenderName } from "./redisContenders.ts"
import {
  BATCH_HOW,
  type Chart,
  LIST_SHORT,
  LIST_VARIANTS,
  listSizes,
  memorySizes,
  memorySummary,
  POINT_OPS,
  POINT_VARIANTS,
  REDIS_OPS,
  REDIS_ROWS,
  REDIS_SHORT,
  redisBenchmarkNs,
  redisListSummary,
  redisOpsSummary,
  type Results
} from "./report.ts"
import { count, duration, shortCount } from "./stats.ts"

const FONT = `font-family="system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif"`

const escape = (text: string): string => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")

/** The white background, title and subtitle every chart starts with. */
const frame = (width: number, height: number, title: string, subtitle: string): Array<string> => [
  `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
  `<text x="16" y="26" font-size="17" font-weight="600" fill="#111827">${escape(title)}</text>`,
  `<text x="16" y="46" font-size="12" fill="#4b5563">${escape(subtitle)}</text>`
]

const COLOURS: Record<MemoryStoreName | RedisContenderName | ListContenderName | "ceiling", string> = {
  "map": "#6b7280",
  "effect-kv": "#2563eb",
  "layerMemory": "#7c3aed",
  "keyv": "#d97706",
  "unstorage": "#059669",
  "sorted-btree": "#0891b2",
  "node-redis": "#6b7280",
  "ioredis": "#9ca3af",
  "effect-kv/node-redis": "#2563eb",
  "effect-kv/ioredis": "#60a5fa",
  "effect-kv+index/node-redis": "#1e3a8a",
  "effect-kv+index/ioredis": "#3b82f6",
  "effect/node-redis": "#a5b4fc",
  "scan-1000": "#6b7280",
  "scan-20": "#dc2626",
  "ceiling": "#dc2626"
}

/** The lighter shade for the "1,000 per Effect.gen" variant of an Effect store. */
const GEN_COLOURS: Partial<Record<MemoryStoreName, string>> = { "effect-kv": "#93c5fd", "layerMemory": "#c4b5fd" }

/** Powers of ten covering [min, max]. */
const decades = (values: ReadonlyArray<number>): { readonly low: number; readonly high: number } => {
  const positive = values.filter((value) => value > 0)
  return {
    low: Math.floor(Math.log10(Math.min(...positive))),
    high: Math.ceil(Math.log10(Math.max(...positive)))
  }
}

interface Bar {
  readonly label: string
  readonly value: number
  readonly colour: string
}

interface BarGroup {
  readonly title: string
  readonly bars: ReadonlyArray<Bar>
}

const barChart = (title: string, subtitle: string, groups: ReadonlyArray<BarGroup>): string => {
  const width = 980
  const left = 380
  const right = 90
  const top = 76
  const barHeight = 14
  const barGap = 4
  const groupGap = 16
  const titleHeight = 20
  const values = groups.flatMap((group) => group.bars.map((bar) => bar.value))
  const { high, low } = decades(values)
  const plotWidth = width - left - right
  const x = (value: number) => left + ((Math.log10(value) - low) / (high - low)) * plotWidth
  const height = top + groups.reduce((sum, group) =>
    sum + titleHeight + group.bars.length * (barHeight + barGap) +
    groupGap, 0) +
    24
  const parts = frame(width, height, title, subtitle)
  for (let decade = low; decade <= high; decade++) {
    const at = x(10 ** decade)
    parts.push(
      `<line x1="${at.toFixed(1)}" y1="${top - 6}" x2="${at.toFixed(1)}" y2="${height - 24}" stroke="#e5e7eb"/>`
    )
    parts.push(
      `<text x="${at.toFixed(1)}" y="${top - 10}" font-size="11" fill="#6b7280" text-anchor="middle">${
        escape(duration(10 ** decade))
      }</text>`
    )
  }
  let y = top
  for (const group of groups) {
    parts.push(
      `<text x="16" y="${y + 14}" font-size="13" font-weight="600" fill="#111827">${escape(group.title)}</text>`
    )
    y += titleHeight
    for (const bar of group.bars) {
      const end = x(bar.value)
      parts.push(
        `<text x="${left - 8}" y="${y + barHeight - 3}" font-size="11" fill="#374151" text-anchor="end">${
          escape(bar.label)
        }</text>`
      )
      parts.push(
        `<rect x="${left}" y="${y}" width="${
          Math.max(1, end - left).toFixed(1)
        }" height="${barHeight}" fill="${bar.colour}" rx="2"/>`
      )
      parts.push(
        `<text x="${(end + 6).toFixed(1)}" y="${y + barHeight - 3}" font-size="11" fill="#111827">${
          escape(duration(bar.value))
        }</text>`
      )
      y += barHeight + barGap
    }
    y += groupGap
  }
  return svg(width, height, parts)
}

interface Series {
  readonly label: string
  readonly colour: string
  readonly points: ReadonlyArray<readonly [number, number]>
  readonly dashed?: boolean
}

const lineChart = (title: string, subtitle: string, xLabel: string, series: ReadonlyArray<Series>): string => {
  const width = 980
  const height = 460
  const left = 80
  const right = 350
  const top = 64
  const bottom = 56
  const xs = series.flatMap((line) => line.points.map(([at]) => at))
  const ys = series.flatMap((line) => line.points.map(([, value]) => value))
  const yRange = decades(ys)
  // Margins of 0.15 decade keep the end points off the frame.
  const xLow = Math.log10(Math.min(...xs)) - 0.15
  const xHigh = Math.log10(Math.max(...xs)) + 0.15
  const plotWidth = width - left - right
  const plotHeight = height - top - bottom
  const x = (value: number) => left + ((Math.log10(value) - xLow) / (xHigh - xLow)) * plotWidth
  const y = (value: number) =>
    top + plotHeight - ((Math.log10(value) - yRange.low) / (yRange.high - yRange.low)) *
      plotHeight
  const parts = frame(width, height, title, subtitle)
  for (let decade = yRange.low; decade <= yRange.high; decade++) {
    const at = y(10 ** decade)
    parts.push(
      `<line x1="${left}" y1="${at.toFixed(1)}" x2="${left + plotWidth}" y2="${at.toFixed(1)}" stroke="#e5e7eb"/>`
    )
    parts.push(
      `<text x="${left - 8}" y="${(at + 4).toFixed(1)}" font-size="11" fill="#6b7280" text-anchor="end">${
        escape(duration(10 ** decade))
      }</text>`
    )
  }
  for (const at of [...new Set(xs)].sort((a, b) => a - b)) {
    parts.push(
      `<line x1="${x(at).toFixed(1)}" y1="${top}" x2="${x(at).toFixed(1)}" y2="${top + plotHeight}" stroke="#e5e7eb"/>`
    )
    parts.push(
      `<text x="${x(at).toFixed(1)}" y="${top + plotHeight + 18}" font-size="11" fill="#6b7280" text-anchor="middle">${
        escape(count(at))
      }</text>`
    )
  }
  parts.push(
    `<text x="${left + plotWidth / 2}" y="${height - 14}" font-size="12" fill="#374151" text-anchor="middle">${
      escape(xLabel)
    }</text>`
  )
  parts.push(
    `<rect x="${left}" y="${top}" width="${plotWidth}" height="${plotHeight}" fill="none" stroke="#9ca3af"/>`
  )
  series.forEach((line, i) => {
    const points = line.points.map(([at, value]) => `${x(at).toFixed(1)},${y(value).toFixed(1)}`)
    parts.push(
      `<polyline points="${points.join(" ")}" fill="none" stroke="${line.colour}" stroke-width="2.5"${
        line.dashed === true ? ` stroke-dasharray="6 4"` : ""
      }/>`
    )
    for (const [at, value] of line.points) {
      parts.push(
        `<circle cx="${x(at).toFixed(1)}" cy="${y(value).toFixed(1)}" r="4" fill="${line.colour}"><title>${
          escape(`${line.label}: ${duration(value)} at ${count(at)} keys`)
        }</title></circle>`
      )
    }
    const legendY = top + 8 + i * 22
    const legendX = left + plotWidth + 20
    parts.push(
      `<line x1="${legendX}" y1="${legendY}" x2="${
        legendX + 24
      }" y2="${legendY}" stroke="${line.colour}" stroke-width="2.5"${
        line.dashed === true ? ` stroke-dasharray="6 4"` : ""
      }/>`
    )
    parts.push(
      `<text x="${legendX + 32}" y="${legendY + 4}" font-size="11" fill="#374151">${escape(line.label)}</text>`
    )
  })
  return svg(width, height, parts)
}

const svg = (width: number, height: number, parts: ReadonlyArray<string>): string =>
  `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT}>\n${
    parts.map((part) => `  ${part}`).join("\n")
  }\n</svg>\n`

const defined = <A>(value: A | undefined): value is A => value !== undefined

const memoryOpsChart = (results: Results, size: number): string => {
  const groups: Array<BarGroup> = POINT_OPS.map(([op, title]) => ({
    title,
    bars: POINT_VARIANTS.map((variant) => {
      const summary = memorySummary(results, variant.store, size, op, variant.mode)
      return summary === undefined ? undefined : {
        label: variant.short,
        value: summary.median,
        colour: variant.mode === "gen" ? GEN_COLOURS[variant.store] ?? COLOURS[variant.store] : COLOURS[variant.store]
      }
    }).filter(defined)
  }))
  groups.push({
    title: "list 100 keys under a prefix",
    bars: LIST_VARIANTS.map((variant) => {
      const summary = memorySummary(results, variant.store, size, "list-100", variant.mode)
      return summary === undefined
        ? undefined
        : { label: variant.label, value: summary.median, colour: COLOURS[variant.store] }
    }).filter(defined)
  })
  return barChart(
    `In-memory stores at ${count(size)} keys: cost per operation`,
    "Median per operation, log scale. Shorter is faster. Map is the floor.",
    groups.filter((group) => group.bars.length > 0)
  )
}

const memoryListChart = (results: Results): string => {
  const sizes = memorySizes(results)
  const series: Array<Series> = LIST_VARIANTS.map((variant) => ({
    label: variant.label,
    colour: COLOURS[variant.store],
    dashed: variant.store === "sorted-btree",
    points: sizes.map((size) => {
      const summary = memorySummary(results, variant.store, size, "list-100", variant.mode)
      return summary === undefined ? undefined : [size, summary.median] as const
    }).filter(defined)
  })).filter((line) => line.points.length > 0)
  return lineChart(
    "In memory: list 100 keys under a prefix, against keyspace size",
    "Median per list, log–log. Scans grow with the keyspace; the ordered index does not.",
    "keys in the store",
    series
  )
}

const redisOpsChart = (results: Results): string => {
  const groups: Array<BarGroup> = REDIS_OPS.flatMap(([op, title]) =>
    ([1, 100] as const).map((inFlight) => {
      const bars: Array<Bar> = REDIS_ROWS.map((contender) => {
        const summary = redisOpsSummary(results, contender, op, inFlight)
        return summary === undefined ? undefined : {
          label: op === "batch-get" ? `${REDIS_SHORT[contender]}: ${BATCH_HOW[contender]}` : REDIS_SHORT[contender],
          value: summary.median,
          colour: COLOURS[contender]
        }
      }).filter(defined)
      const ceiling = op === "batch-get" || inFlight === 1
        ? undefined
        : redisBenchmarkNs(results, op === "get" ? "GET" : "SET")
      if (ceiling !== undefined) {
        bars.push({ label: "redis-benchmark (server ceiling)", value: ceiling, colour: COLOURS.ceiling })
      }
      return { title: `${title}, ${inFlight} in flight`, bars }
    })
  )
  return barChart(
    "Redis (local redis-server): cost per operation",
    "Median per operation (per 100-key batch for batch get), log scale. Raw node-redis is the floor.",
    groups.filter((group) => group.bars.length > 0)
  )
}

const redisListChart = (results: Results): string => {
  const sizes = listSizes(results)
  const contenders: ReadonlyArray<ListContenderName> = [
    "effect-kv+index/node-redis",
    "effect-kv+index/ioredis",
    "effect-kv/node-redis",
    "effect-kv/ioredis",
    "scan-1000",
    "scan-20",
    "keyv",
    "unstorage"
  ]
  const series: Array<Series> = contenders.map((contender) => ({
    label: LIST_SHORT[contender],
    colour: COLOURS[contender],
    dashed: contender === "scan-1000",
    points: sizes.map((size) => {
      const summary = redisListSummary(results, contender, size)
      return summary === undefined ? undefined : [size, summary.median] as const
    }).filter(defined)
  })).filter((line) => line.points.length > 0)
  return lineChart(
    "Redis: list 100 keys under a prefix, against keyspace size",
    `Median per list, log–log. SCAN walks the whole keyspace; COUNT sets how many round trips that takes. The ordered index reads one range.`,
    "keys in Redis",
    series
  )
}

/** Writes the charts into `dir` and says which exist. */
export const writeCharts = (results: Results, dir: string): Array<Chart> => {
  fs.mkdirSync(dir, { recursive: true })
  const charts: Array<Chart & { readonly svg: string }> = []
  const sizes = memorySizes(results)
  if (sizes.length > 0) {
    const size = sizes[sizes.length - 1]
    charts.push({
      file: "memory-ops.svg",
      title: `In-memory stores at ${shortCount(size)} keys: cost per operation`,
      svg: memoryOpsChart(results, size)
    })
    charts.push({
      file: "memory-list.svg",
      title: "In memory: list 100 keys against keyspace size",
      svg: memoryListChart(results)
    })
  }
  if (results.redisOps.length > 0) {
    charts.push({ file: "redis-ops.svg", title: "Redis: cost per operation", svg: redisOpsChart(results) })
  }
  if (results.redisList.length > 0) {
    charts.push({
      file: "redis-list.svg",
      title: "Redis: list 100 keys against keyspace size",
      svg: redisListChart(results)
    })
  }
  for (const chart of charts) fs.writeFileSync(path.join(dir, chart.file), chart.svg)
  return charts.map(({ file, title }) => ({ file, title }))
}
