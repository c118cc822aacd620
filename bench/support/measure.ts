/**
 * Measurement helpers shared by the benchmark child processes: mitata in manual mode, the result protocol with the
 * orchestrator, and the checks that make a broken benchmark fail loudly instead of timing the wrong thing.
 *
 * Every sample is one batch of operations timed by us and divided by the batch size. Manual mode, rather than
 * mitata's own batching, lets a sample do untimed set-up and clean-up around the timed part (an insert must find its
 * key missing; the keys it inserted are removed afterwards so the keyspace stays at its size), and treats synchronous,
 * Effect and Promise stores with the same loop.
 */
import { do_not_optimize, measure } from "mitata"

/** Nanoseconds per operation, from one measurement. `samples` is sorted; mitata drops 2 at each end past 12. */
export interface Stats {
  readonly samples: ReadonlyArray<number>
  readonly min: number
  readonly p25: number
  readonly p50: number
  readonly p75: number
  readonly max: number
  /** Operations per sample. */
  readonly batch: number
}

/** How long mitata samples one measurement: at least `minSamples` samples and `minTimeMs` of wall time. */
export interface Budget {
  readonly minSamples: number
  readonly maxSamples: number
  readonly minTimeMs: number
  /**
   * Whether mitata forces a full collection before the first sample (its default; true when omitted). A forced GC
   * slows the code that runs right after it several times over for a few milliseconds (bench/redis.ts, `runOps`), so a
   * short measurement of fast operations should not start with one.
   */
  readonly collect?: boolean
}

export const now = (): number => performance.now()

/** Keeps a result alive so V8 cannot drop the operation that produced it. */
export const consume = (value: unknown): void => do_not_optimize(value)

/**
 * Samples `sample` with mitata. Each call of `sample` returns the nanoseconds per operation of its batch; mitata's
 * warm-up call is not recorded.
 */
export const sampleBatches = async (
  sample: () => number | Promise<number>,
  batch: number,
  budget: Budget
): Promise<Stats> => {
  // mitata's types describe generators that yield functions; a `manual` object is the documented other form.
  const stats = await measure(
    function*() {
      yield { manual: sample }
    } as never,
    {
      min_samples: budget.minSamples,
      max_samples: budget.maxSamples,
      min_cpu_time: budget.minTimeMs * 1e6,
      ...(budget.collect === false ? { gc: false } : {})
    }
  )
  if (stats.samples.length === 0 || !stats.samples.every(Number.isFinite)) {
    throw new Error(`mitata returned no usable samples (${stats.samples.length})`)
  }
  return {
    samples: stats.samples.map((ns) => Math.round(ns * 100) / 100),
    min: stats.min,
    p25: stats.p25,
    p50: stats.p50,
    p75: stats.p75,
    max: stats.max,
    batch
  }
}

/** The statistics of samples taken by the caller (nanoseconds per operation, `batch` operations each). */
export const statsOf = (samples: ReadonlyArray<number>, batch: number): Stats => {
  const sorted = samples.map((ns) => Math.round(ns * 100) / 100).sort((a, b) => a - b)
  if (sorted.length === 0 || !sorted.every(Number.isFinite)) throw new Error(`no usable samples (${sorted.length})`)
  const at = (q: number) => {
    const i = q * (sorted.length - 1)
    const low = Math.floor(i)
    return sorted[low] + (sorted[Math.min(sorted.length - 1, low + 1)] - sorted[low]) * (i - low)
  }
  return { samples: sorted, min: sorted[0], p25: at(0.25), p50: at(0.5), p75: at(0.75), max: at(1), batch }
}

/**
 * Runs `sample` for at least `ms` milliseconds (and `minCalls` times), so V8 has optimised the measured code before mitata's
 * own warm-up call and samples: a few thousand calls are not always enough for the optimising compiler to kick in.
 */
export const warmUp = async (
  sample: () => number | Promise<number>,
  ms: number,
  minCalls = 2
): Promise<void> => {
  const start = now()
  for (let calls = 0; calls < minCalls || now() - start < ms; calls++) await sample()
}

/** Operations slower than this are timed once per round: repeating a multi-second scan adds minutes, not insight. */
export const ONCE_NS = 1e9

/** The statistics of a single timed call (see `ONCE_NS`). */
export const single = (ns: number): Stats => ({ samples: [ns], min: ns, p25: ns, p50: ns, p75: ns, max: ns, batch: 1 })

/** Fails the benchmark (and so the run) when a store did not do what the benchmark assumes. */
export const check = (condition: boolean, message: string): void => {
  if (!condition) throw new Error(`benchmark check failed: ${message}`)
}

const RESULT_MARKER = "@@effect-kv-bench-result "

/** Hands the result to the orchestrator: one marked line on stdout, so library chatter cannot corrupt it. */
export const emit = (result: unknown): void => {
  process.stdout.write(`\n${RESULT_MARKER}${JSON.stringify(result)}\n`)
}

/** The result a child emitted, or `undefined`. */
export const parseEmitted = (stdout: string): unknown => {
  const line = stdout.split("\n").reverse().find((candidate) => candidate.startsWith(RESULT_MARKER))
  return line === undefined ? undefined : JSON.parse(line.slice(RESULT_MARKER.length))
}

/** Runs a child's main, reporting any failure on stderr with a non-zero exit code. */
export const main = (run: () => Promise<void>): void => {
  run().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
      process.exit(1)
    }
  )
}

/** Forces full collections (several, so weak references and finalisers settle). Children run with --expose-gc. */
export const collect = (): void => {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) throw new Error("run with --expose-gc")
  for (let i = 0; i < 4; i++) gc()
}

/** Logs progress on stderr; stdout carries the result. */
export const log = (message: string): void => {
  process.stderr.write(`    ${message}\n`)
}
