/**
 * The upload-server suite's tables (`bench/uploads.ts`): throughput of large uploads and request rate of small
 * chunks, effect-kv's server against @tus/server on the same store kind and the no-op server (the client's own
 * ceiling), then the verdicts on the targets: at least @tus/server's MB/s, at least 1.5× its request rate for
 * 16 KB chunks.
 */
import { count, table } from "../support/stats.ts"
import type { UploadContender } from "../support/uploadContenders.ts"
import type { UploadResult } from "../uploads.ts"
import { median, type Section } from "./results.ts"

const figures = (results: ReadonlyArray<UploadResult>, contender: UploadContender) => {
  const mine = results.filter((result) => result.contender === contender)
  const large = mine.flatMap((result) => result.largeMBps)
  const small = mine.flatMap((result) => result.smallRps)
  // Results written before the CPU was recorded have none.
  const cpu = mine.flatMap((result) => result.smallCpuMicros ?? [])
  return large.length === 0 ? undefined : {
    largeRuns: large,
    smallRuns: small,
    large: median(large),
    largeRange: [Math.min(...large), Math.max(...large)],
    small: median(small),
    smallRange: [Math.min(...small), Math.max(...small)],
    cpu: cpu.length === 0 ? undefined : { median: median(cpu), range: [Math.min(...cpu), Math.max(...cpu)] }
  }
}

const PAIRS: ReadonlyArray<readonly [UploadContender, UploadContender]> = [
  ["effect-kv (memory)", "@tus/server (MemoryKvStore)"],
  ["effect-kv (Redis)", "@tus/server (RedisKvStore)"]
]

const ORDER: ReadonlyArray<UploadContender> = [
  "effect-kv (memory)",
  "@tus/server (MemoryKvStore)",
  "effect-kv (Redis)",
  "@tus/server (RedisKvStore)",
  "no-op server (client ceiling)"
]

/** The table of figures with the workload it measured, then the verdicts against the targets. */
export const uploadSections = (results: ReadonlyArray<UploadResult>): Array<Section> => {
  if (results.length === 0) return []
  const { largeBytes, largeChunk, smallBytes, smallChunk } = results[0]
  const mb = (bytes: number) => `${(bytes / 1e6).toFixed(0)} MB`
  const rows = ORDER.flatMap((contender) => {
    const f = figures(results, contender)
    if (f === undefined) return []
    return [[
      contender,
      `${f.large.toFixed(0)}`,
      `${f.largeRange[0].toFixed(0)} – ${f.largeRange[1].toFixed(0)}`,
      `${f.small.toFixed(0)}`,
      `${f.smallRange[0].toFixed(0)} – ${f.smallRange[1].toFixed(0)}`,
      f.cpu === undefined
        ? "not measured"
        : `${f.cpu.median.toFixed(0)} (${f.cpu.range[0].toFixed(0)} – ${f.cpu.range[1].toFixed(0)})`
    ]]
  })
  const overview = table(
    [
      "server",
      "large MB/s (median)",
      "range",
      "16 KB chunks: requests/s (median)",
      "range",
      "server CPU µs per 16 KB PATCH (median, range)"
    ],
    rows
  )
  const workload = `Large: one ${mb(largeBytes)} file in ${mb(largeChunk)} chunks. Small: one ${
    mb(smallBytes)
  } file in ${count(smallChunk / 1024)} KB chunks (${count(smallBytes / smallChunk)} PATCHes).`
  /** The ratio of each round's uploads: both servers' uploads of a round were taken seconds apart. */
  const perRound = (ours: ReadonlyArray<number>, theirs: ReadonlyArray<number>) =>
    ours.slice(0, theirs.length).map((value, i) => `${(value / theirs[i]).toFixed(2)}×`).join(", ")
  const verdicts = PAIRS.flatMap(([ours, theirs]) => {
    const a = figures(results, ours)
    const b = figures(results, theirs)
    if (a === undefined || b === undefined) return []
    const throughput = a.large / b.large
    const rate = a.small / b.small
    return [
      [
        `${ours} vs ${theirs}: MB/s`,
        "≥ 1.00×",
        `${throughput.toFixed(2)}× (${a.large.toFixed(0)} vs ${b.large.toFixed(0)} MB/s)`,
        perRound(a.largeRuns, b.largeRuns),
        throughput >= 1 ? "met" : "MISSED"
      ],
      [
        `${ours} vs ${theirs}: 16 KB requests/s`,
        "≥ 1.50×",
        `${rate.toFixed(2)}× (${a.small.toFixed(0)} vs ${b.small.toFixed(0)} req/s)`,
        perRound(a.smallRuns, b.smallRuns),
        rate >= 1.5 ? "met" : "MISSED"
      ]
    ]
  })
  return [
    {
      title: "Upload server: tus-js-client against effect-kv's server and @tus/server",
      body: `${overview}\n\n${workload}`
    },
    {
      title: "Upload server: targets",
      body: table(
        ["target", "wanted", "measured (medians of all rounds)", "each round on its own", "verdict"],
        verdicts
      )
    }
  ]
}
