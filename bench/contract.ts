/**
 * Child process: what the grown contract costs, each group of rows beside its floor, in one process.
 *
 * `--suite memory`: the atomic operations beside get + set, a namespaced view (`withPrefix`) beside Effect's
 * `KeyValueStore.prefix`, a write with ttl beside a plain one, a store with `maxEntries` beside one without,
 * `listPage` of 100 at 1,000,000 keys beside `list` of the same 100, and 100-key batches beside 100 single operations;
 * 1,000 operations per `Effect.gen`.
 *
 * `--suite redis --url … [--cluster url,url,url]`: `compareAndSet` and `modify` beside the raw client running the
 * same Lua script (and GET + script), 1,000 concurrent increments of one key through `modify` beside Redis `INCR`,
 * and 100-key `getMany`/`setMany` beside raw `MGET`/`MSET` and beside 100 single effect-kv operations, with 1 and
 * with 100 operations in flight; on a standalone server and, given `--cluster`, on a 3-master cluster (where the raw
 * floor groups keys by slot too, as it must).
 */
import calculateSlot from "cluster-key-slot"
import { type BaseKvStore, makeMemoryBaseKvStore, toSchemaStore, withPrefix } from "effect-kv"
import { BaseKvStoreService } from "effect-kv"
import { layerRedis } from "effect-kv/redis"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as KeyValueStore from "effect/persistence/KeyValueStore"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Crypto from "node:crypto"
import { parseArgs } from "node:util"
import { createClient, createCluster } from "redis"
import { Upload } from "../apps/upload-server/src/Uploads.ts"
import { type Budget, check, consume, emit, log, main, sampleBatches, type Stats, warmUp } from "./support/measure.ts"

export interface ContractRow {
  readonly group: string
  readonly label: string
  /** The group's floor: the other rows are quoted as ratios to it. */
  readonly floor: boolean
  readonly stats: Stats
}

export interface ContractResult {
  readonly suite: string
  readonly rows: ReadonlyArray<ContractRow>
}

const rows: Array<ContractRow> = []

const record = async (
  group: string,
  label: string,
  floor: boolean,
  batch: number,
  sample: () => number | Promise<number>,
  budget: Budget
) => {
  await warmUp(sample, budget.minTimeMs / 2)
  const stats = await sampleBatches(sample, batch, budget)
  rows.push({ group, label, floor, stats })
  log(`${group} | ${label}: p50 ${stats.p50.toFixed(1)} ns`)
}

/** Nanoseconds per operation of `count` operations run by `program`. */
const timeEffect = (count: number, program: Effect.Effect<unknown, unknown>) => async () => {
  const start = performance.now()
  await Effect.runPromise(program)
  return ((performance.now() - start) * 1e6) / count
}

const timeSync = (count: number, program: Effect.Effect<unknown, unknown>) => () => {
  const start = performance.now()
  Effect.runSync(program)
  return ((performance.now() - start) * 1e6) / count
}

const repeat = (count: number, body: (i: number) => Effect.Effect<unknown, unknown>) =>
  Effect.gen(function*() {
    for (let i = 0; i < count; i++) consume(yield* body(i))
  })

const memorySuite = async (quick: boolean) => {
  const budget: Budget = quick
    ? { minSamples: 4, maxSamples: 100, minTimeMs: 20 }
    : { minSamples: 12, maxSamples: 3000, minTimeMs: 300 }
  const N = 1000
  const keys = Array.from({ length: N }, (_, i) => `upload:${String(i).padStart(6, "0")}`)
  const prepare = (store: BaseKvStore) => Effect.runSync(store.setMany(keys.map((key) => [key, "0"])))
  const next = (value: string | null) => String(Number(value ?? "0") + 1)

  {
    const group = "memory: one atomic update (1,000 per Effect.gen, 1,000 keys)"
    const store = makeMemoryBaseKvStore()
    prepare(store)
    await record(
      group,
      "get, then set (not atomic): the floor",
      true,
      N,
      timeSync(N, repeat(N, (i) => Effect.flatMap(store.get(keys[i]), (value) => store.set(keys[i], next(value))))),
      budget
    )
    await record(
      group,
      "get, then compareAndSet",
      false,
      N,
      timeSync(
        N,
        repeat(
          N,
          (i) => Effect.flatMap(store.get(keys[i]), (value) => store.compareAndSet(keys[i], value, next(value)))
        )
      ),
      budget
    )
    await record(group, "modify", false, N, timeSync(N, repeat(N, (i) => store.modify(keys[i], next))), budget)
    check(Number(Effect.runSync(store.get(keys[0]))) > 0, "the updates did not write")
  }
  {
    // The upload server's record, advanced as a PATCH advances it.
    const group = "memory: typed records (toSchemaStore), get then compareAndSet (1,000 per Effect.gen)"
    const upload = (i: number): typeof Upload.Type => ({
      id: keys[i],
      owner: "anonymous",
      length: 16_777_216,
      offset: 0,
      metadata: "filename dGVzdC5iaW4=,filetype YXBwbGljYXRpb24vb2N0ZXQtc3RyZWFt",
      createdAt: 1_764_936_000_000,
      expiresAt: 1_765_022_400_000,
      concat: null,
      parts: null,
      concatHeader: null
    })
    const advance = (record: typeof Upload.Type) => ({ ...record, offset: record.offset + 16_384 })
    const store = makeMemoryBaseKvStore()
    const typed = toSchemaStore(store, Upload)
    Effect.runSync(typed.setMany(keys.map((key, i) => [key, upload(i)])))
    const json = Schema.fromJsonString(Schema.toCodecJson(Upload))
    const decode = Schema.decodeSync(json)
    const encode = Schema.encodeSync(json)
    await record(
      group,
      "JSON.parse, then compareAndSet of JSON.stringify (no schema): the floor",
      true,
      N,
      timeSync(
        N,
        repeat(N, (i) =>
          Effect.flatMap(
            store.get(keys[i]),
            (value) => store.compareAndSet(keys[i], value, JSON.stringify(advance(JSON.parse(value!))))
          ))
      ),
      budget
    )
    await record(
      group,
      "toSchemaStore get, then compareAndSet",
      false,
      N,
      timeSync(
        N,
        repeat(N, (i) =>
          Effect.flatMap(
            typed.get(keys[i]),
            (record) => typed.compareAndSet(keys[i], record, advance(record!))
          ))
      ),
      budget
    )
    await record(
      group,
      "the same through Schema.fromJsonString (how toSchemaStore encoded before 2026-12-05)",
      false,
      N,
      timeSync(
        N,
        repeat(N, (i) =>
          Effect.flatMap(store.get(keys[i]), (value) => {
            const record = decode(value!)
            return store.compareAndSet(keys[i], encode(record), encode(advance(record)))
          }))
      ),
      budget
    )
    check((Effect.runSync(typed.get(keys[0])))!.offset > 0, "the typed updates did not write")
  }
  {
    // A view prepends its namespace to every key, as Effect's `KeyValueStore.prefix` does: the floor here is Effect's
    // own view over `layerMemory`, so the rows show what effect-kv's view adds to the store beneath it.
    const effectStore = KeyValueStore.prefix(
      Effect.runSync(Effect.provide(KeyValueStore.KeyValueStore, KeyValueStore.layerMemory)),
      "tenant:42:"
    )
    const view = withPrefix(makeMemoryBaseKvStore(), "tenant:42:")
    prepare(view)
    Effect.runSync(Effect.forEach(keys, (key) => effectStore.set(key, "0"), { discard: true }))
    for (
      const [operation, theirs, ours] of [
        ["get", (i: number) => effectStore.get(keys[i]), (i: number) => view.get(keys[i])],
        ["set", (i: number) => effectStore.set(keys[i], "v"), (i: number) => view.set(keys[i], "v")]
      ] as const
    ) {
      const group = `memory: ${operation} through a namespaced view (1,000 per Effect.gen, 1,000 keys)`
      await record(
        group,
        "Effect KeyValueStore.prefix over layerMemory: the floor",
        true,
        N,
        timeSync(N, repeat(N, theirs)),
        budget
      )
      await record(group, "effect-kv withPrefix over the memory store", false, N, timeSync(N, repeat(N, ours)), budget)
    }
    check(Effect.runSync(view.get(keys[0])) === "v", "the view's writes did not land")
  }
  {
    const group = "memory: set with and without ttl (1,000 per Effect.gen)"
    const plain = makeMemoryBaseKvStore()
    prepare(plain)
    await record(
      group,
      "set, on a store that never used ttl: the floor",
      true,
      N,
      timeSync(N, repeat(N, (i) => plain.set(keys[i], "v"))),
      budget
    )
    await record(
      group,
      "get, on a store that never used ttl",
      false,
      N,
      timeSync(N, repeat(N, (i) => plain.get(keys[i]))),
      budget
    )
    const expiring = makeMemoryBaseKvStore()
    prepare(expiring)
    await record(
      group,
      "set with ttl 1 hour",
      false,
      N,
      timeSync(N, repeat(N, (i) => expiring.set(keys[i], "v", { ttl: 3_600_000 }))),
      budget
    )
    await record(
      group,
      "get of a key with a ttl",
      false,
      N,
      timeSync(N, repeat(N, (i) => expiring.get(keys[i]))),
      budget
    )
    check(Effect.runSync(expiring.ttl(keys[0])) !== null, "the ttl was not stored")
  }
  {
    const group = "memory: a bounded store (maxEntries) beside an unbounded one (1,000 per Effect.gen)"
    const unbounded = makeMemoryBaseKvStore()
    const bounded = makeMemoryBaseKvStore({ maxEntries: 100_000 })
    prepare(unbounded)
    prepare(bounded)
    await record(
      group,
      "get, unbounded: the floor",
      true,
      N,
      timeSync(N, repeat(N, (i) => unbounded.get(keys[i]))),
      budget
    )
    await record(
      group,
      "get, maxEntries (moves the key to the LRU end)",
      false,
      N,
      timeSync(N, repeat(N, (i) => bounded.get(keys[i]))),
      budget
    )
    await record(
      group,
      "overwrite, unbounded",
      false,
      N,
      timeSync(N, repeat(N, (i) => unbounded.set(keys[i], "w"))),
      budget
    )
    await record(
      group,
      "overwrite, maxEntries",
      false,
      N,
      timeSync(N, repeat(N, (i) => bounded.set(keys[i], "w"))),
      budget
    )
    const full = makeMemoryBaseKvStore({ maxEntries: N })
    prepare(full)
    let fresh = 0
    await record(
      group,
      "insert into a full store: evicts the least recently used",
      false,
      N,
      timeSync(N, repeat(N, () => full.set(`fresh:${fresh++}`, "v"))),
      budget
    )
    check(Effect.runSync(full.count("")) === N, "the full store grew past maxEntries")
  }
  {
    const size = quick ? 100_000 : 1_000_000
    const group = `memory: a page of 100 keys at ${size.toLocaleString("en-US")} keys`
    const store = makeMemoryBaseKvStore()
    for (let i = 0; i < size; i += 10_000) {
      Effect.runSync(
        store.setMany(Array.from({ length: 10_000 }, (_, j) => [`k:${String(i + j).padStart(7, "0")}`, "v"]))
      )
    }
    Effect.runSync(store.setMany(Array.from({ length: 100 }, (_, j) => [`g100:${String(j).padStart(3, "0")}`, "v"])))
    const middle = Effect.runSync(store.listPage("k:", { limit: 100, cursor: null }))
    let cursor = middle.cursor
    for (let i = 0; i < (size / 100) / 2; i++) {
      cursor = Effect.runSync(store.listPage("k:", { limit: 100, cursor })).cursor
    }
    const P = 100
    await record(
      group,
      "list of the 100 keys under g100:: the floor",
      true,
      P,
      timeSync(P, repeat(P, () => store.list("g100:"))),
      budget
    )
    await record(
      group,
      "listPage(g100:, limit 100)",
      false,
      P,
      timeSync(P, repeat(P, () => store.listPage("g100:", { limit: 100 }))),
      budget
    )
    await record(
      group,
      `listPage(k:, limit 100) halfway through ${size.toLocaleString("en-US")} keys`,
      false,
      P,
      timeSync(P, repeat(P, () => store.listPage("k:", { limit: 100, cursor }))),
      budget
    )
    check(Effect.runSync(store.listPage("k:", { limit: 100, cursor })).keys.length === 100, "a page was not full")
  }
  {
    const group = "memory: 100 keys, one batch beside 100 single operations"
    const store = makeMemoryBaseKvStore()
    prepare(store)
    const hundred = keys.slice(0, 100)
    const B = 100
    await record(group, "100 gets: the floor", true, B, timeSync(B, repeat(B, (i) => store.get(hundred[i]))), budget)
    await record(group, "getMany of 100", false, B, timeSync(B, store.getMany(hundred)), budget)
    await record(group, "100 sets", false, B, timeSync(B, repeat(B, (i) => store.set(hundred[i], "v"))), budget)
    await record(
      group,
      "setMany of 100",
      false,
      B,
      timeSync(B, store.setMany(hundred.map((key) => [key, "v"]))),
      budget
    )
  }
}

const CAS = `if redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
redis.call("SET", KEYS[1], ARGV[2]) return 1`
const CAS_SHA = Crypto.createHash("sha1").update(CAS).digest("hex")

/** `count` operations by `workers` concurrent async loops; nanoseconds per operation. */
const timePromises = (count: number, workers: number, op: (i: number) => Promise<unknown>) => async () => {
  const share = count / workers
  const start = performance.now()
  await Promise.all(Array.from({ length: workers }, async (_, w) => {
    for (let j = 0; j < share; j++) consume(await op(w * share + j))
  }))
  return ((performance.now() - start) * 1e6) / count
}

const timeFibers = (count: number, workers: number, op: (i: number) => Effect.Effect<unknown, unknown>) =>
  timeEffect(
    count,
    Effect.forEach(Array.from({ length: workers }, (_, w) => w), (w) =>
      repeat(count / workers, (j) => op(w * (count / workers) + j)), {
      concurrency: "unbounded",
      discard: true
    })
  )

const redisSuite = async (
  quick: boolean,
  target: string,
  options: { url?: string; rootNodes?: ReadonlyArray<string> }
) => {
  const budget: Budget = quick
    ? { minSamples: 3, maxSamples: 30, minTimeMs: 50 }
    : { minSamples: 10, maxSamples: 400, minTimeMs: 600 }
  const raw: any = options.rootNodes !== undefined
    ? createCluster({ rootNodes: options.rootNodes.map((url) => ({ url })) })
    : createClient({ url: options.url! })
  raw.on("error", () => undefined)
  await raw.connect()
  const fast = raw.withCommandOptions({ timeout: 0 })
  const scope = Scope.makeUnsafe()
  const context = await Effect.runPromise(Scope.provide(
    Layer.build(layerRedis({
      ...(options.rootNodes !== undefined ? { cluster: { rootNodes: [...options.rootNodes] } } : { url: options.url }),
      keyPrefix: "bench:"
    })),
    scope
  ))
  const store = Context.get(context, BaseKvStoreService)
  const keys = Array.from({ length: 1000 }, (_, i) => `k${i}`)
  await Effect.runPromise(store.setMany(keys.map((key) => [key, "0"])))
  const rawKey = (i: number) => `bench:${keys[i % keys.length]}`
  const evalCas = (key: string, expected: string, next: string) =>
    fast.evalSha(CAS_SHA, { keys: [key], arguments: [expected, next] }).catch(() =>
      fast.eval(CAS, { keys: [key], arguments: [expected, next] })
    )
  const N = 1000
  for (const inFlight of [1, 100]) {
    const count = inFlight === 1 ? 200 : N
    {
      const group = `redis ${target}: compareAndSet, ${inFlight} in flight`
      await record(
        group,
        "raw node-redis: EVALSHA of a compare-and-set script: the floor",
        true,
        count,
        timePromises(count, inFlight, (i) => evalCas(rawKey(i), "x", "y")),
        budget
      )
      await record(
        group,
        "effect-kv compareAndSet (script)",
        false,
        count,
        timeFibers(count, inFlight, (i) => store.compareAndSet(keys[i % keys.length], "x", "y")),
        budget
      )
    }
    {
      const group = `redis ${target}: read-modify-write of distinct keys, ${inFlight} in flight`
      await record(
        group,
        "raw node-redis: GET, then EVALSHA: the floor",
        true,
        count,
        timePromises(count, inFlight, async (i) => {
          const value = await fast.get(rawKey(i))
          return evalCas(rawKey(i), value, String(Number(value) + 1))
        }),
        budget
      )
      await record(
        group,
        "effect-kv modify",
        false,
        count,
        timeFibers(count, inFlight, (i) => store.modify(keys[i % keys.length], (v) => String(Number(v) + 1))),
        budget
      )
    }
    {
      const group = `redis ${target}: increments of ONE key, ${inFlight} in flight`
      await fast.set("bench:counter", "0")
      await record(
        group,
        "raw node-redis INCR: the floor",
        true,
        count,
        timePromises(count, inFlight, () => fast.incr("bench:counter")),
        budget
      )
      await record(
        group,
        "effect-kv modify (one store: takes turns locally)",
        false,
        count,
        timeFibers(count, inFlight, () => store.modify("counter2", (v) => String(Number(v ?? "0") + 1))),
        budget
      )
    }
    {
      const group = `redis ${target}: 100-key batches, time per batch, ${inFlight} in flight`
      const batches = quick ? 20 : 100
      const batchKeys = (b: number) => Array.from({ length: 100 }, (_, j) => keys[(b * 7 + j * 13) % keys.length])
      const bySlot = (list: ReadonlyArray<string>) => {
        if (options.rootNodes === undefined) return [list]
        const groups = new Map<number, Array<string>>()
        for (const key of list) {
          const slot = calculateSlot(key)
          groups.set(slot, [...(groups.get(slot) ?? []), key])
        }
        return [...groups.values()]
      }
      // Per batch of 100 keys.
      const ops = batches
      await record(
        group,
        "raw node-redis MGET (one per slot on a cluster): the floor",
        true,
        ops,
        timePromises(
          batches,
          Math.min(inFlight, batches),
          async (b) => Promise.all(bySlot(batchKeys(b).map((key) => `bench:${key}`)).map((group) => fast.mGet(group)))
        ),
        budget
      )
      await record(
        group,
        "effect-kv getMany of 100",
        false,
        ops,
        timeFibers(batches, Math.min(inFlight, batches), (b) => store.getMany(batchKeys(b))),
        budget
      )
      await record(
        group,
        "effect-kv: 100 concurrent gets",
        false,
        ops,
        timeFibers(
          batches,
          Math.min(inFlight, batches),
          (b) => Effect.forEach(batchKeys(b), (key) => store.get(key), { concurrency: "unbounded" })
        ),
        budget
      )
      await record(
        group,
        "raw node-redis MSET (one per slot on a cluster)",
        false,
        ops,
        timePromises(batches, Math.min(inFlight, batches), async (b) =>
          Promise.all(
            bySlot(batchKeys(b).map((key) => `bench:${key}`)).map((group) =>
              fast.mSet(group.map((key) => [key, "v"] as [string, string]))
            )
          )),
        budget
      )
      await record(
        group,
        "effect-kv setMany of 100",
        false,
        ops,
        timeFibers(batches, Math.min(inFlight, batches), (b) => store.setMany(batchKeys(b).map((key) => [key, "v"]))),
        budget
      )
      await record(
        group,
        "effect-kv: 100 concurrent sets",
        false,
        ops,
        timeFibers(
          batches,
          Math.min(inFlight, batches),
          (b) => Effect.forEach(batchKeys(b), (key) => store.set(key, "v"), { concurrency: "unbounded" })
        ),
        budget
      )
    }
  }
  const counter = await Effect.runPromise(store.get("counter2"))
  check(Number(counter) > 0, "the increments did not write")
  await Effect.runPromise(store.clear(""))
  await Effect.runPromise(Scope.close(scope, Exit.void))
  await raw.close()
}

main(async () => {
  const { values: args } = parseArgs({
    options: {
      suite: { type: "string" },
      url: { type: "string" },
      cluster: { type: "string" },
      quick: { type: "boolean", default: false }
    }
  })
  const quick = args.quick === true
  if (args.suite === "memory") {
    await memorySuite(quick)
  } else if (args.suite === "redis") {
    await redisSuite(quick, "standalone", { url: args.url! })
    if (args.cluster !== undefined) await redisSuite(quick, "cluster", { rootNodes: args.cluster.split(",") })
  } else {
    throw new Error(`unknown --suite ${args.suite}`)
  }
  emit({ suite: args.suite, rows } satisfies ContractResult)
})
