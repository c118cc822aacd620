/**
 * Child process: the heap one in-memory store needs per entry (`--store keyv --entries 1000000`).
 *
 * Heap used after forced collections, before and after inserting the entries through the store's own API, divided
 * by the number of entries. Keys and values are flat, distinct strings (support/data.ts), as they would be when read
 * from requests; the store is kept reachable from a global until the second reading, so the collector cannot take it.
 * A fresh process per store, so nothing another store left behind is counted.
 */
import * as Effect from "effect/Effect"
import { parseArgs } from "node:util"
import { BULK_PREFIX, keyAt, valueAt } from "./support/data.ts"
import { check, collect, consume, emit, log, main } from "./support/measure.ts"
import { isMemoryStoreName, makeMemoryStore } from "./support/memoryStores.ts"

export interface BytesResult {
  readonly store: string
  readonly entries: number
  readonly bytesPerEntry: number
  readonly heapBefore: number
  readonly heapAfter: number
}

const heapUsed = (): number => {
  collect()
  return process.memoryUsage().heapUsed
}

main(async () => {
  const { values: args } = parseArgs({ options: { store: { type: "string" }, entries: { type: "string" } } })
  const name = args.store ?? ""
  if (!isMemoryStoreName(name)) throw new Error(`unknown --store ${name}`)
  const entries = Number(args.entries)

  // Warm the generators up first, so their code and buffers are in the baseline and not in the delta.
  for (let i = 0; i < 1000; i++) consume(keyAt(BULK_PREFIX, i) + valueAt(i))
  const store = makeMemoryStore(name)
  ;(globalThis as { benchKeepAlive?: unknown }).benchKeepAlive = store
  const before = heapUsed()
  switch (store.kind) {
    case "sync":
      for (let i = 0; i < entries; i++) store.ops.set(keyAt(BULK_PREFIX, i), valueAt(i))
      break
    case "effect":
      for (let i = 0; i < entries; i++) Effect.runSync(store.ops.set(keyAt(BULK_PREFIX, i), valueAt(i)))
      break
    case "promise":
      for (let i = 0; i < entries; i++) await store.ops.set(keyAt(BULK_PREFIX, i), valueAt(i))
      break
  }
  const after = heapUsed()
  check(store.count() === entries, `${name} holds ${store.count()} entries, not ${entries}`)
  const result: BytesResult = {
    store: name,
    entries,
    bytesPerEntry: (after - before) / entries,
    heapBefore: before,
    heapAfter: after
  }
  log(`${name}: ${result.bytesPerEntry.toFixed(1)} B/entry`)
  emit(result)
})
