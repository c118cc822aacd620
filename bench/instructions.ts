/**
 * Child process, run under valgrind by the orchestrator: one memory store's `get` or overwriting `set`, 1,000 per
 * `Effect.gen`, on 10,000 keys (`--store effect-kv --op overwrite --batches 200`).
 *
 * The time of a 100 ns operation moves by 10–20% with this shared machine's load and with the JIT's mood in each
 * process, which is as large as the differences the memory rows are about. The number of machine instructions it
 * executes does not: valgrind counts them, the same for the same code and input whatever else the machine is doing,
 * and V8's `--predictable` schedules the JIT and the collector by work done, so they happen at the same points in
 * every run. The orchestrator runs each store and operation at several batch counts; the difference between two
 * runs is what those extra batches executed, warm-up and start-up cancelled out. It is a count, not a time: a cache
 * miss costs one instruction and a hundred cycles, so it complements the memory suite's times and replaces none.
 */
import { makeMemoryBaseKvStore } from "effect-kv"
import * as Effect from "effect/Effect"
import { parseArgs } from "node:util"
import { COUNTED_OPS, COUNTED_STORES, type CountedRun, type CountedStore } from "./support/counted.ts"
import { entries, existingKeys, layout, valuePool } from "./support/data.ts"
import { check, consume, emit, main } from "./support/measure.ts"
import { checkedKeyValueStore, effectLayerMemory } from "./support/memoryStores.ts"

const BATCH = 1000
/** Batches run before the counted ones, the same in every run: enough for V8 to have optimised the loop. */
const WARM_BATCHES = 300

type Ops = {
  readonly get: (key: string) => Effect.Effect<unknown, unknown>
  readonly set: (key: string, value: string) => Effect.Effect<unknown, unknown>
}

const opsOf = (store: CountedStore): Ops => {
  if (store === "effect-kv") {
    const memory = makeMemoryBaseKvStore()
    return { get: memory.get, set: memory.set }
  }
  const effectStore = effectLayerMemory()
  return store === "layerMemory" ? { get: effectStore.get, set: effectStore.set } : checkedKeyValueStore(effectStore)
}

main(async () => {
  const { values: args } = parseArgs({
    options: { store: { type: "string" }, op: { type: "string" }, batches: { type: "string" } }
  })
  const store = COUNTED_STORES.find((name) => name === args.store)
  const op = COUNTED_OPS.find((name) => name === args.op)
  const batches = Number(args.batches)
  if (store === undefined || op === undefined || !Number.isInteger(batches) || batches < 0) {
    throw new Error(`usage: --store ${COUNTED_STORES.join("|")} --op ${COUNTED_OPS.join("|")} --batches N`)
  }
  const keyspace = layout(10_000, [10, 100, 1000])
  const ops = opsOf(store)
  for (const [key, value] of entries(keyspace)) Effect.runSync(ops.set(key, value))
  const hits = existingKeys(keyspace, 65_536)
  const values = valuePool(BATCH)
  const windows = Math.floor(hits.length / BATCH)

  const run = (window: number) => {
    const base = (window % windows) * BATCH
    Effect.runSync(
      op === "get"
        ? Effect.gen(function*() {
          for (let i = 0; i < BATCH; i++) consume(yield* ops.get(hits[base + i]))
        })
        : Effect.gen(function*() {
          for (let i = 0; i < BATCH; i++) consume(yield* ops.set(hits[base + i], values[i]))
        })
    )
  }
  for (let window = 0; window < WARM_BATCHES + batches; window++) run(window)

  // The operation did what its row claims.
  const last = (WARM_BATCHES + batches - 1) % windows
  const found = Effect.runSync(ops.get(hits[last * BATCH]))
  check(typeof found === "string", `${store}: get of an existing key found ${String(found)}`)
  if (op === "overwrite") check(found === values[0], `${store}: an overwrite did not replace the value`)
  const result: Omit<CountedRun, "instructions"> = { store, op, batches }
  emit(result)
})
