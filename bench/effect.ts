/**
 * Child process: effect-kv inside Effect's ecosystem, each group beside Effect's own, in one process.
 *
 * - What a span costs: effect-kv's memory `get` and overwriting `set` with no tracer installed and with one (a tracer
 *   that makes Effect's native spans and exports nothing), beside Effect's `KeyValueStore.layerMemory`: 1,000 per
 *   `Effect.gen`.
 * - `PersistedCache` hits and misses on effect-kv's backings beside Effect's own: `layerBackingMemory`,
 *   `layerBackingRedis` (over `@effect/platform-node`'s `NodeRedis`, given `--url`), `layerBackingSql` over SQLite and
 *   (given `--pg`) PostgreSQL. The cache keeps nothing in memory (`inMemoryCapacity: 0`), so every lookup reaches the
 *   backing: a hit is one read, a miss a read, the lookup and a write. One lookup in flight.
 */
import { NodeRedis } from "@effect/platform-node"
import { BaseKvStoreService, layerPersistence, memoryKvStore } from "effect-kv"
import { layerRedis } from "effect-kv/redis"
import { layerPg, layerSql } from "effect-kv/sql"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as KeyValueStore from "effect/persistence/KeyValueStore"
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
import { type Budget, check, consume, emit, log, main, sampleBatches, warmUp } from "./support/measure.ts"

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

const spans = async (budget: Budget) => {
  const N = 1000
  const keys = Array.from({ length: N }, (_, i) => `upload:${String(i).padStart(6, "0")}`)
  const effectStore = Effect.runSync(Effect.scoped(Effect.map(
    Layer.build(KeyValueStore.layerMemory),
    (context) => Context.get(context, KeyValueStore.KeyValueStore)
  )))
  const store = Effect.runSync(Effect.scoped(Effect.map(
    Layer.build(memoryKvStore),
    (context) => Context.get(context, BaseKvStoreService)
  )))
  for (const key of keys) {
    Effect.runSync(effectStore.set(key, "v"))
    Effect.runSync(store.set(key, "v"))
  }
  for (
    const [operation, effectOp, ours] of [
      ["get (hit)", (i: number) => effectStore.get(keys[i]), (i: number) => store.get(keys[i])],
      ["set (overwrite)", (i: number) => effectStore.set(keys[i], "w"), (i: number) => store.set(keys[i], "w")]
    ] as const
  ) {
    const group = `spans: memory ${operation}, 1,000 per Effect.gen`
    await record(
      group,
      "Effect KeyValueStore.layerMemory: the floor",
      true,
      N,
      timeSync(N, repeat(N, effectOp)),
      budget
    )
    await record(group, "effect-kv memory, no tracer installed", false, N, timeSync(N, repeat(N, ours)), budget)
    await record(
      group,
      "effect-kv memory, a tracer installed (one span per operation)",
      false,
      N,
      timeSync(N, repeat(N, ours).pipe(Effect.withTracer(tracer))),
      budget
    )
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
