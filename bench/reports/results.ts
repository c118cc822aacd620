/**
 * What one `npm run bench` collects from its children, as bench/results/*.json holds it, and the pooling every
 * suite's report shares: the samples of all rounds of a row are summarised together.
 */
import type { ContractResult } from "../contract.ts"
import type { MemoryResult } from "../memory.ts"
import type { BytesResult } from "../memoryBytes.ts"
import type { RedisListResult, RedisOpsResult } from "../redis.ts"
import type { SqlResult } from "../sql.ts"
import type { CountedRun } from "../support/counted.ts"
import type { Environment } from "../support/machine.ts"
import type { Stats } from "../support/measure.ts"
import type { RedisBenchmarkRow } from "../support/redisData.ts"
import { summarize, type Summary } from "../support/stats.ts"
import type { UploadResult } from "../uploads.ts"
import type { MechanismResult, WatchResult } from "../watch.ts"

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
  /** The change-stream suite; absent in results written before it was part of the report. */
  readonly watch?: Array<WatchResult>
  watchMechanism?: MechanismResult | undefined
  /** The instruction counts (bench/instructions.ts); absent in results written before they were measured. */
  readonly instructions?: Array<CountedRun>
  readonly failures: Array<string>
}

/** A titled table (or list) of the report: `## title` in the terminal, `### title` in BENCHMARKS.md. */
export interface Section {
  readonly title: string
  readonly body: string
}

/** The samples of every round pooled into one summary, or undefined when the row was not measured. */
export const pool = (stats: ReadonlyArray<Stats>): Summary | undefined =>
  stats.length === 0 ? undefined : summarize(stats)

/** The rounds a run had: 0, 1, ... */
export const roundsOf = (results: Results): Array<number> =>
  [
    ...new Set([...results.memory, ...results.redisOps, ...results.redisList].map((result) => result.round))
  ].sort((a, b) => a - b)

export const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}
