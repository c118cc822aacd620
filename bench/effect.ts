/**
 * Child process: effect-kv inside Effect's ecosystem, each group beside Effect's own, in one process.
 *
 * - What a span costs: effect-kv's memory `get` and overwriting `set` with no tracer installed and with one (a tracer
 *   that makes Effect's native spans and exports nothing), beside Effect's `KeyValueStore.layerMemory`, one per
 *   `Effect.runSync` and 1,000 per `Effect.gen`, on random keys among 10,000. Beside them, `layerMemory` behind
 *   effect-kv's input checks (`isValidKey`, `isValidValue`), and nothing else: what any store that keeps effect-kv's
 *   rules pays over `layerMemory`, so the rest of effect-kv's cost (the tracer check, expiry, the index) reads apart
 *   from the rules'. The four share this process and take their samples in turns, so the ratios are free of the
 *   process-to-process spread of the memory suite.
 * - `PersistedCache` hits and misses on effect-kv's backings beside Effect's own: `layerBackingMemory`,
 *   `layerBackingRedis` (over `@effect/platform-node`'s `NodeRedis`, given `--url`), `layerBackingSql` over SQLite and
 *   (given `--pg`) PostgreSQL. The cache keeps nothing in memory (`inMemoryCapacity: 0`), so every lookup reaches the
 *   backing: a hit is one read, a miss a read, the lookup and a write. One lookup in flight.
 */
import { NodeRedis } from "@effect/platform-node"
import { BaseKvStoreService, layerPersistence, memoryKvStore } from "effect-kv"
import { layerRedis } from "effect-kv/redis"
import { layerPg, layerSql } from "effect-kv/sql"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Persistable from "effect/persistence/Persistable"
import * as PersistedCache from "effect/persistence/PersistedCache"
import * as Persistence from "effect/persistence/Persistence"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Tracer from "effect/Tracer"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { parseArgs } from "node:util"
import * as SqliteClient from "../test/support/SqliteClient.ts"
import type { ContractResult, ContractRow } from "./contract.ts"
import { type Budget, check, consume, emit, log, main, sampleBatches, statsOf, warmUp } from "./support/measure.ts"
import { checkedKeyValueStore, effectLayerMemory } from "./support/memoryStores.ts"

const rows: Array<ContractRow> = []

const record = async (
  group: string,
  label: string,
  floor: boolean,
  batch: number,
  sample: () => Promise<number> | number,
  budget: Budget
) => {
  await warmUp(sample, budget.minTimeMs / 2)
  const stats = await sampleBatches(sample, batch, budget)
  rows.push({ group, label, floor, stats })
  log(`${group} | ${label}: p50 ${stats.p50.toFixed(1)} ns`)
}

const timeSync = (count: number, program: Effect.Effect<unknown, unknown>) => () => {
  const start = performance.now()
  Effect.runSync(program)
  return ((performance.now() - start) * 1e6) / count
}

const timeAsync = (count: number, program: () => Effect.Effect<unknown, unknown>) => async () => {
  const start = performance.now()
  await Effect.runPromise(program())
  return ((performance.now() - start) * 1e6) / count
}

const repeat = (count: number, body: (i: number) => Effect.Effect<unknown, unknown>) =>
  Effect.gen(function*() {
    for (let i = 0; i < count; i++) consume(yield* body(i))
  })

/** A tracer that makes Effect's native spans and exports nothing: the cost of a span itself. */
const tracer = Tracer.make({ span: (options) => new Tracer.NativeSpan(options) })

/** Keys in the span groups' stores, read and overwritten at random (as the memory suite does at this size). */
const SPAN_KEYS = 10_000

/** Each contender's samples are taken in this many slices, alternating with the others' in a rotating order. */
const SLICES = 6

const spans = async (budget: Budget) => {
  const N = 1000
  const keys = Array.from({ length: SPAN_KEYS }, () => `upload:${crypto.randomUUID()}`)
  // Distinct flat values, as they arrive from requests: an overwrite never writes the value already there.
  const values = Array.from({ length: 64 }, (_, i) => `${i}:`.padEnd(200, String.fromCharCode(97 + (i % 26))))
  const picks = Array.from({ length: N }, () => keys[Math.floor(Math.random() * SPAN_KEYS)])
  const effectStore = effectLayerMemory()
  const checked = checkedKeyValueStore(effectStore)
  const store = Effect.runSync(Effect.provide(BaseKvStoreService, memoryKvStore))
  for (const key of keys) {
    Effect.runSync(effectStore.set(key, values[0]))
    Effect.runSync(store.set(key, values[0]))
  }
  const gen = (body: (i: number) => Effect.Effect<unknown, unknown>) => timeSync(N, repeat(N, body))
  const perRunSync = (body: (i: number) => Effect.Effect<unknown, unknown>) => () => {
    const start = performance.now()
    for (let i = 0; i < N; i++) consume(Effect.runSync(body(i)))
    return ((performance.now() - start) * 1e6) / N
  }
  for (
    const [operation, effectOp, checkedOp, ours] of [
      [
        "get (hit)",
        (i: number) => effectStore.get(picks[i]),
        (i: number) => checked.get(picks[i]),
        (i: number) => store.get(picks[i])
      ],
      [
        "set (overwrite)",
        (i: number) => effectStore.set(picks[i], values[i & 63]),
        (i: number) => checked.set(picks[i], values[i & 63]),
        (i: number) => store.set(picks[i], values[i & 63])
      ]
    ] as const
  ) {
    for (const [mode, time] of [["1 per runSync", perRunSync], ["1,000 per Effect.gen", gen]] as const) {
      const group = `spans: memory ${operation}, ${mode}, ${SPAN_KEYS.toLocaleString("en-US")} keys, one process`
      const contenders: ReadonlyArray<readonly [label: string, floor: boolean, sample: () => number]> = [
        ["Effect KeyValueStore.layerMemory: the floor", true, time(effectOp)],
        ["Effect KeyValueStore.layerMemory behind effect-kv's input checks", false, time(checkedOp)],
        ["effect-kv memory, no tracer installed", false, time(ours)],
        [
          "effect-kv memory, a tracer installed (one span per operation)",
          false,
          mode === "1 per runSync"
            ? perRunSync((i) => Effect.withTracer(ours(i), tracer))
            : timeSync(N, repeat(N, ours).pipe(Effect.withTracer(tracer)))
        ]
      ]
      for (const [, , sample] of contenders) await warmUp(sample, budget.minTimeMs / 2)
      // In slices, each contender after another in a rotating order: a slow spell of the shared machine, or the heap
      // growing, then falls on every contender alike rather than on whichever ran last.
      const samples = contenders.map(() => [] as Array<number>)
      const slice: Budget = {
        minSamples: Math.max(2, Math.ceil(budget.minSamples / SLICES)),
        maxSamples: Math.ceil(budget.maxSamples / SLICES),
        minTimeMs: budget.minTimeMs / SLICES,
        // mitata's forced collection before each measurement would slow the first samples of every slice.
        collect: false
      }
      for (let round = 0; round < SLICES; round++) {
        for (let k = 0; k < contenders.length; k++) {
          const index = (k + round) % contenders.length
          samples[index].push(...(await sampleBatches(contenders[index][2], N, slice)).samples)
        }
      }
      contenders.forEach(([label, floor], index) => {
        const stats = statsOf(samples[index], N)
        rows.push({ group, label, floor, stats })
        log(`${group} | ${label}: p50 ${stats.p50.toFixed(1)} ns`)
      })
    }
  }
}

class Lookup extends Persistable.Class<{ payload: { readonly id: number } }>()("Lookup", {
  primaryKey: ({ id }) => `user:${id}`,
  success: Schema.Struct({ id: Schema.Number, name: Schema.String })
}) {}

let nextId = 1_000_000

const persistedCache = async (
  backend: string,
  contenders: ReadonlyArray<readonly [label: string, layer: Layer.Layer<Persistence.Persistence, unknown>]>,
  count: number,
  budget: Budget
) => {
  for (const [kind, floorLabel] of [["hit", "hit"], ["miss", "miss"]] as const) {
    const group = `PersistedCache ${floorLabel} on ${backend}, 1 in flight (${count} per sample)`
    for (const [index, [label, layer]] of contenders.entries()) {
      const scope = Scope.makeUnsafe()
      try {
        // The layer lives in the sample's scope: `Effect.provide(layer)` would close its connection after `make`.
        const cache = await Effect.runPromise(
          Scope.provide(
            Effect.flatMap(
              Layer.build(layer),
              (context) =>
                PersistedCache.make((request: Lookup) => Effect.succeed({ id: request.id, name: `u${request.id}` }), {
                  storeId: `bench-${kind}`,
                  timeToLive: () => "1 hour",
                  inMemoryCapacity: 0
                }).pipe(Effect.provideContext(context))
            ),
            scope
          )
        )
        const warm = Array.from({ length: count }, (_, i) => new Lookup({ id: i }))
        await Effect.runPromise(Effect.forEach(warm, cache.get, { discard: true }))
        const program = kind === "hit"
          ? () => Effect.forEach(warm, cache.get, { discard: true })
          : () =>
            Effect.forEach(Array.from({ length: count }, () => new Lookup({ id: nextId++ })), cache.get, {
              discard: true
            })
        const found = await Effect.runPromise(cache.get(new Lookup({ id: 3 })))
        check(found.name === "u3", `${label}: the cache answered ${JSON.stringify(found)}`)
        await record(group, label, index === 0, count, timeAsync(count, program), budget)
      } finally {
        await Effect.runPromise(Scope.close(scope, Exit.void))
      }
    }
  }
}

main(async () => {
  const { values: args } = parseArgs({
    options: { quick: { type: "boolean", default: false }, url: { type: "string" }, pg: { type: "string" } }
  })
  const quick = args.quick === true
  const budget: Budget = quick
    ? { minSamples: 4, maxSamples: 50, minTimeMs: 20 }
    : { minSamples: 12, maxSamples: 2000, minTimeMs: 300 }
  await spans(budget)

  const ours = (layer: Layer.Layer<BaseKvStoreService, unknown>) => layerPersistence().pipe(Layer.provide(layer))
  await persistedCache(
    "memory",
    [
      ["Effect layerBackingMemory: the floor", Persistence.layerMemory],
      ["effect-kv memoryKvStore", ours(memoryKvStore)]
    ],
    quick ? 200 : 1000,
    budget
  )

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-kv-bench-"))
  try {
    const sqlite = (name: string) =>
      SqliteClient.layer({ filename: path.join(dir, `${name}.db`), synchronous: "NORMAL" })
    await persistedCache(
      "SQLite (one SqlClient each)",
      [
        ["Effect layerBackingSql: the floor", Persistence.layerSql.pipe(Layer.provide(sqlite("effect")))],
        ["effect-kv layerSql", ours(layerSql().pipe(Layer.provide(sqlite("kv"))))]
      ],
      quick ? 50 : 200,
      budget
    )
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }

  if (args.url !== undefined) {
    const url = args.url
    await persistedCache(
      "Redis standalone (node-redis)",
      [
        [
          "Effect layerBackingRedis (NodeRedis): the floor",
          Persistence.layerRedis.pipe(Layer.provide(NodeRedis.layer({ url })))
        ],
        ["effect-kv layerRedis", ours(layerRedis({ url, client: "node-redis", keyPrefix: "bench:" }))]
      ],
      quick ? 50 : 200,
      budget
    )
  }
  if (args.pg !== undefined) {
    const url = args.pg
    const { PgClient } = await import("@effect/sql-pg")
    await persistedCache(
      "PostgreSQL",
      [
        [
          "Effect layerBackingSql (PgClient): the floor",
          Persistence.layerSql.pipe(Layer.provide(PgClient.layer({ url: Redacted.make(url) })))
        ],
        ["effect-kv layerPg", ours(layerPg({ url, keyPrefix: "bench:" }))]
      ],
      quick ? 50 : 200,
      budget
    )
  }
  emit({ suite: "effect", rows } satisfies ContractResult)
})
