/**
 * Child process: the speed of one in-memory store at one keyspace size (`--store effect-kv --size 1000000`).
 *
 * The orchestrator (bench/index.ts) runs one of these per store, size and round, so the garbage and the JIT state
 * of one store never distort another's numbers. Prints one result line (see support/measure.ts) with nanoseconds per
 * operation for get, overwrite, insert, delete, delete of a missing key and list of 10 / 100 / 1,000 keys. Effect
 * stores run every point operation twice: one operation per `Effect.runSync`, and 1,000 inside one `Effect.gen`.
 */
import * as Effect from "effect/Effect"
import { parseArgs } from "node:util"
import {
  entries,
  existingKeys,
  freshKeys,
  groupKeys,
  groupPrefix,
  layout,
  missingKeys,
  valuePool
} from "./support/data.ts"
import {
  type Budget,
  check,
  consume,
  emit,
  log,
  main,
  now,
  ONCE_NS,
  sampleBatches,
  single,
  type Stats,
  warmUp
} from "./support/measure.ts"
import { isMemoryStoreName, makeMemoryStore, type MemoryStore, type StoreOps } from "./support/memoryStores.ts"

/** Operations per timed batch; also the keyspace's swing during insert and delete samples (N ± BATCH). */
const BATCH = 1000
const LIST_SIZES = [10, 100, 1000] as const
const HIT_POOL = 65_536

export type PointOp = "get" | "overwrite" | "insert" | "delete" | "delete-missing"
export type Mode = "direct" | "runSync" | "gen" | "await"

export interface MemoryRow {
  readonly op: PointOp | `list-${number}`
  readonly mode: Mode
  readonly stats: Stats
}

export interface MemoryResult {
  readonly store: string
  readonly size: number
  readonly fillMs: number
  readonly rows: ReadonlyArray<MemoryRow>
}

/** One operation on the store, whichever kind it is; `X` is what the store returns. */
type Body = <X>(ops: StoreOps<X>, i: number) => X

interface Driver {
  readonly modes: ReadonlyArray<Mode>
  /** Runs `body` for i = 0..count-1 and returns nanoseconds per operation. */
  readonly timed: (mode: Mode, count: number, body: Body) => number | Promise<number>
  /** The same, untimed: set-up and clean-up around a sample. */
  readonly untimed: (count: number, body: Body) => void | Promise<void>
  /** One operation's result, for the checks. */
  readonly once: (body: Body) => Promise<unknown>
}

const perOp = (start: number, count: number): number => ((now() - start) * 1e6) / count

const driverOf = (store: MemoryStore): Driver => {
  switch (store.kind) {
    case "sync": {
      const ops = store.ops
      const run = (count: number, body: Body) => {
        for (let i = 0; i < count; i++) consume(body(ops, i))
      }
      return {
        modes: ["direct"],
        timed: (_mode, count, body) => {
          const start = now()
          run(count, body)
          return perOp(start, count)
        },
        untimed: run,
        once: async (body) => body(ops, 0)
      }
    }
    case "effect": {
      const ops = store.ops
      const run = (count: number, body: Body) => {
        for (let i = 0; i < count; i++) consume(Effect.runSync(body(ops, i)))
      }
      return {
        modes: ["runSync", "gen"],
        timed: (mode, count, body) => {
          if (mode === "gen") {
            const program = Effect.gen(function*() {
              for (let i = 0; i < count; i++) consume(yield* body(ops, i))
            })
            const start = now()
            Effect.runSync(program)
            return perOp(start, count)
          }
          const start = now()
          run(count, body)
          return perOp(start, count)
        },
        untimed: run,
        once: async (body) => Effect.runSync(body(ops, 0))
      }
    }
    case "promise": {
      const ops = store.ops
      const run = async (count: number, body: Body) => {
        for (let i = 0; i < count; i++) consume(await body(ops, i))
      }
      return {
        modes: ["await"],
        timed: async (_mode, count, body) => {
          const start = now()
          await run(count, body)
          return perOp(start, count)
        },
        untimed: run,
        once: (body) => body(ops, 0)
      }
    }
  }
}

interface PointSpec {
  readonly op: PointOp
  /** Number of distinct BATCH-sized windows the samples rotate through. */
  readonly windows: number
  readonly timed: (base: number) => Body
  /** Untimed: puts the keyspace back as it was before the sample. */
  readonly restore?: (base: number) => Body
}

const pointSample = (driver: Driver, mode: Mode, spec: PointSpec): () => number | Promise<number> => {
  let window = 0
  return () => {
    const base = (window++ % spec.windows) * BATCH
    const ns = driver.timed(mode, BATCH, spec.timed(base))
    const restore = spec.restore
    if (restore === undefined) return ns
    if (ns instanceof Promise) {
      return ns.then(async (value) => {
        await driver.untimed(BATCH, restore(base))
        return value
      })
    }
    const done = driver.untimed(BATCH, restore(base))
    return done instanceof Promise ? done.then(() => ns) : ns
  }
}

const isNullish = (value: unknown): boolean => value === null || value === undefined

main(async () => {
  const { values: args } = parseArgs({
    options: { store: { type: "string" }, size: { type: "string" }, quick: { type: "boolean", default: false } }
  })
  const name = args.store ?? ""
  if (!isMemoryStoreName(name)) throw new Error(`unknown --store ${name}`)
  const size = Number(args.size)
  const quick = args.quick === true
  const point: Budget = quick
    ? { minSamples: 4, maxSamples: 200, minTimeMs: 15 }
    : { minSamples: 12, maxSamples: 5000, minTimeMs: 120 }
  const listBudget: Budget = quick
    ? { minSamples: 2, maxSamples: 50, minTimeMs: 10 }
    : { minSamples: 4, maxSamples: 2000, minTimeMs: 150 }

  const keyspace = layout(size, LIST_SIZES)
  const store = makeMemoryStore(name)
  const driver = driverOf(store)

  const fillStart = now()
  {
    // Inserting through the store's own API, as a program would; a Promise store is awaited one key at a time.
    const batch: Array<readonly [string, string]> = []
    for (const entry of entries(keyspace)) {
      batch.push(entry)
      if (batch.length === BATCH) {
        await driver.untimed(batch.length, (ops, i) => ops.set(batch[i][0], batch[i][1]))
        batch.length = 0
      }
    }
    await driver.untimed(batch.length, (ops, i) => ops.set(batch[i][0], batch[i][1]))
  }
  const fillMs = now() - fillStart
  check(store.count() === size, `${name} holds ${store.count()} keys after filling ${size}`)
  log(`${name} @ ${size}: filled in ${(fillMs / 1000).toFixed(1)} s`)

  const hits = existingKeys(keyspace, HIT_POOL)
  const fresh = freshKeys(BATCH * 8)
  const missing = missingKeys(BATCH * 64)
  const values = valuePool(BATCH)
  const hitWindows = Math.floor(hits.length / BATCH)

  const specs: ReadonlyArray<PointSpec> = [
    { op: "get", windows: hitWindows, timed: (base) => (ops, i) => ops.get(hits[base + i]) },
    { op: "overwrite", windows: hitWindows, timed: (base) => (ops, i) => ops.set(hits[base + i], values[i]) },
    {
      op: "insert",
      windows: fresh.length / BATCH,
      timed: (base) => (ops, i) => ops.set(fresh[base + i], values[i]),
      restore: (base) => (ops, i) => ops.delete(fresh[base + i])
    },
    {
      op: "delete",
      windows: hitWindows,
      timed: (base) => (ops, i) => ops.delete(hits[base + i]),
      restore: (base) => (ops, i) => ops.set(hits[base + i], values[i])
    },
    {
      op: "delete-missing",
      windows: missing.length / BATCH,
      timed: (base) => (ops, i) => ops.delete(missing[base + i])
    }
  ]

  const rows: Array<MemoryRow> = []
  if (!store.listOnly) {
    // The checks: each operation does what its row claims before it is timed.
    const get = (key: string) => driver.once((ops) => ops.get(key))
    check(!isNullish(await get(hits[0])), `${name}: get of an existing key found nothing`)
    await driver.untimed(1, (ops) => ops.set(hits[1], values[1]))
    check(await get(hits[1]) === values[1], `${name}: an overwrite did not replace the value`)
    check(store.count() === size, `${name}: an overwrite changed the number of keys`)
    await driver.untimed(1, (ops) => ops.set(fresh[0], values[0]))
    check(store.count() === size + 1 && await get(fresh[0]) === values[0], `${name}: an insert did not add the key`)
    await driver.untimed(1, (ops) => ops.delete(fresh[0]))
    check(store.count() === size && isNullish(await get(fresh[0])), `${name}: a delete did not remove the key`)
    await driver.untimed(1, (ops) => ops.delete(hits[0]))
    check(store.count() === size - 1, `${name}: a delete of an existing key did not remove it`)
    await driver.untimed(1, (ops) => ops.set(hits[0], values[0]))
    await driver.untimed(1, (ops) => ops.delete(missing[0]))
    check(store.count() === size, `${name}: a delete of a missing key changed the number of keys`)

    for (const spec of specs) {
      for (const mode of driver.modes) {
        const sample = pointSample(driver, mode, spec)
        await warmUp(sample, quick ? 10 : 50)
        const stats = await sampleBatches(sample, BATCH, point)
        check(store.count() === size, `${name}: ${spec.op} (${mode}) left ${store.count()} keys instead of ${size}`)
        rows.push({ op: spec.op, mode, stats })
        log(`${name} @ ${size}: ${spec.op} (${mode}) p50 ${stats.p50.toFixed(1)} ns`)
      }
    }
  }

  for (const listed of LIST_SIZES) {
    const prefix = groupPrefix(listed)
    const expected = groupKeys(listed).map((key) => key.slice(prefix.length)).sort()
    const start = now()
    const result = await driver.once((ops) => ops.list(prefix)) as ReadonlyArray<string>
    const first = (now() - start) * 1e6
    check(
      result.length === listed && result.every((key, i) => key === expected[i]),
      `${name}: list(${prefix}) returned ${result.length} keys, not the ${listed} expected, sorted and stripped`
    )
    // Enough listings per sample that one sample lasts about 0.2 ms, so timer resolution does not matter. A listing
    // that takes seconds (a full scan of a million Keyv entries) is timed once: the checked call above.
    const count = Math.max(1, Math.min(BATCH, Math.ceil(200_000 / first)))
    const mode = driver.modes[0]
    const stats = first > ONCE_NS
      ? single(first)
      : await sampleBatches(() => driver.timed(mode, count, (ops) => ops.list(prefix)), count, listBudget)
    rows.push({ op: `list-${listed}`, mode, stats })
    log(`${name} @ ${size}: list ${listed} p50 ${stats.p50.toFixed(1)} ns`)
  }

  check(store.count() === size, `${name} holds ${store.count()} keys at the end instead of ${size}`)
  const result: MemoryResult = { store: name, size, fillMs, rows }
  emit(result)
})
