/**
 * The instruction-count table (`bench/instructions.ts` under valgrind): machine instructions per memory `get` and
 * overwrite, 1,000 per `Effect.gen`, for Effect's `layerMemory`, `layerMemory` behind effect-kv's input checks, and
 * effect-kv. A store's count per operation is the difference between two runs at different batch counts, divided by
 * the operations between them; with three batch counts there are two such differences, shown as the spread.
 */
import {
  COUNTED_OPS,
  COUNTED_STORES,
  type CountedOp,
  type CountedStore,
  countedStoreLabel
} from "../support/counted.ts"
import { count, ratio, table } from "../support/stats.ts"
import type { Results, Section } from "./results.ts"

const BATCH = 1000

/** Instructions per operation from each pair of consecutive batch counts; empty when fewer than two were run. */
export const perOperation = (results: Results, store: CountedStore, op: CountedOp): Array<number> => {
  const runs = (results.instructions ?? []).filter((run) => run.store === store && run.op === op)
    .sort((a, b) => a.batches - b.batches)
  return runs.slice(1).map((run, i) =>
    (run.instructions - runs[i].instructions) / ((run.batches - runs[i].batches) * BATCH)
  )
}

const mean = (xs: ReadonlyArray<number>): number => xs.reduce((sum, x) => sum + x, 0) / xs.length

const cell = (xs: ReadonlyArray<number>): string =>
  xs.length === 0
    ? "not measured"
    : xs.length === 1
    ? count(Math.round(xs[0]))
    : `${count(Math.round(mean(xs)))} (${count(Math.round(Math.min(...xs)))}–${count(Math.round(Math.max(...xs)))})`

export const instructionSections = (results: Results): Array<Section> => {
  if ((results.instructions ?? []).length === 0) return []
  const rows = COUNTED_STORES.map((store) => [
    countedStoreLabel[store],
    ...COUNTED_OPS.flatMap((op) => {
      const ours = perOperation(results, store, op)
      const floor = perOperation(results, "layerMemory", op)
      return [cell(ours), ours.length === 0 || floor.length === 0 ? "" : ratio(mean(ours) / mean(floor))]
    })
  ])
  return [{
    title: "memory: machine instructions per operation, 1,000 per Effect.gen, 10,000 keys (valgrind)",
    body: table(
      ["store", ...COUNTED_OPS.flatMap((op) => [`${op}: instructions`, "× layerMemory"])],
      rows,
      ["l", "r", "r", "r", "r"]
    )
  }]
}
