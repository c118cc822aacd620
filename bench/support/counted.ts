/**
 * What the instruction-count suite measures (bench/instructions.ts, run under valgrind by the orchestrator): which
 * memory stores, which operations, and what one run reports.
 */

export const COUNTED_STORES = ["layerMemory", "checked", "effect-kv"] as const
export type CountedStore = typeof COUNTED_STORES[number]

export const COUNTED_OPS = ["get", "overwrite"] as const
export type CountedOp = typeof COUNTED_OPS[number]

/** One run: `batches` batches of 1,000 operations after the warm-up, and the instructions the whole process took. */
export interface CountedRun {
  readonly store: CountedStore
  readonly op: CountedOp
  readonly batches: number
  readonly instructions: number
}

/** Display names, as the table uses them. */
export const countedStoreLabel: Record<CountedStore, string> = {
  "layerMemory": "Effect KeyValueStore.layerMemory (floor)",
  "checked": "layerMemory behind effect-kv's input checks",
  "effect-kv": "effect-kv memory"
}
