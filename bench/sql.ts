/**
 * Child process: one contender of the durable-store suite, on the PostgreSQL server, the Redis server and the SQLite
 * directory the orchestrator prepared.
 *
 * The contender first writes a keyspace of `--size` keys through its own API (bulk keys plus 100 under
 * `upload:g100:`), then runs, one operation at a time: `get` of existing keys, `set` overwriting them,
 * `compareAndSet` swapping the value of existing keys (each call must win), and `list` of the 100 grouped keys.
 */
import * as Effect from "effect/Effect"
import { parseArgs } from "node:util"
import { entries, existingKeys, groupKeys, groupPrefix, layout, valuePool } from "./support/data.ts"
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
import { isSqlContenderName, makeSqlContender, type Ops, type SqlContender } from "./support/sqlContenders.ts"

export const LISTED_SQL = 100

export type SqlOp = "get" | "set" | "compareAndSet" | "list"

export interface SqlRow {
  readonly op: SqlOp
  /** `null`: the contender has no such operation. */
  readonly stats: Stats | null
}

export interface SqlResult {
  readonly contender: string
  readonly size: number
  readonly listHow: string
  readonly rows: ReadonlyArray<SqlRow>
}

/** Operation `i` of a sample, whichever kind the contender is. */
type Body = <X>(ops: Ops<X>, i: number) => X

/** Runs `count` operations back to back and returns nanoseconds per operation. */
const timed = async (contender: SqlContender, count: number, body: Body): Promise<number> => {
  if (contender.kind === "effect") {
    const ops = contender.ops
    const start = now()
    await Effect.runPromise(Effect.gen(function*() {
      for (let i = 0; i < count; i++) consume(yield* body(ops, i))
    }))
    return ((now() - start) * 1e6) / count
  }
  const ops = contender.ops
  const start = now()
  for (let i = 0; i < count; i++) consume(await body(ops, i))
  return ((now() - start) * 1e6) / count
}

const once = (contender: SqlContender, body: Body): Promise<unknown> =>
  contender.kind === "effect" ? Effect.runPromise(body(contender.ops, 0)) : body(contender.ops, 0)

const run = async (
  name: string,
  size: number,
  where: { pgUrl: string; redisUrl: string; dir: string },
  quick: boolean
) => {
  if (!isSqlContenderName(name)) throw new Error(`unknown --contender ${name}`)
  const budget: Budget = quick
    ? { minSamples: 2, maxSamples: 50, minTimeMs: 30 }
    : { minSamples: 10, maxSamples: 2000, minTimeMs: 400 }
  const space = layout(size, [LISTED_SQL])
  const keys = existingKeys(space, Math.min(2000, space.bulk), 11)
  const values = valuePool(256)
  const contender = await makeSqlContender(name, where)
  try {
    const fillStart = now()
    await once(contender, (ops) => ops.fill([...entries(space)]))
    log(`${name}: filled ${size} keys in ${((now() - fillStart) / 1000).toFixed(1)} s`)
    check(await once(contender, (ops) => ops.get(keys[0])) !== undefined, `${name}: get found nothing after the fill`)

    // compareAndSet swaps each key between two known values (set just before it is measured), so every call must win.
    const current = new Map<string, string>()
    const swap: Body = (ops, i) => {
      const key = keys[i % keys.length]
      const expected = current.get(key)!
      const next = expected === values[0] ? values[1] : values[0]
      current.set(key, next)
      return ops.compareAndSet!(key, expected, next)
    }

    const rows: Array<SqlRow> = []
    const point: ReadonlyArray<{ op: SqlOp; count: number; body: (offset: number) => Body }> = [
      { op: "get", count: 200, body: (o) => (ops, i) => ops.get(keys[(o + i) % keys.length]) },
      { op: "set", count: 100, body: (o) => (ops, i) => ops.set(keys[(o + i) % keys.length], values[(o + i) % 256]) },
      { op: "compareAndSet", count: 100, body: (o) => (ops, i) => swap(ops, o + i) }
    ]
    for (const shape of point) {
      if (shape.op === "compareAndSet") {
        if (contender.ops.compareAndSet === undefined) {
          rows.push({ op: shape.op, stats: null })
          continue
        }
        await timed(contender, keys.length, (ops, i) => ops.set(keys[i], values[0]))
        for (const key of keys) current.set(key, values[0])
      }
      let offset = 0
      const sample = () => {
        const body = shape.body(offset)
        offset += shape.count
        return timed(contender, shape.count, body)
      }
      await warmUp(sample, quick ? 20 : 150, 1)
      const stats = await sampleBatches(sample, shape.count, budget)
      rows.push({ op: shape.op, stats })
      log(`${name}: ${shape.op} p50 ${(stats.p50 / 1000).toFixed(1)} µs`)
    }
    if (contender.ops.compareAndSet !== undefined) {
      const key = keys[0]
      const won = await once(contender, (ops) => ops.compareAndSet!(key, current.get(key)!, values[2]))
      check(won === true, `${name}: compareAndSet with the current value did not win`)
    }

    const prefix = groupPrefix(LISTED_SQL)
    const expected = groupKeys(LISTED_SQL).map((key) => key.slice(prefix.length)).sort()
    const start = now()
    const listed = await once(contender, (ops) => ops.list(prefix)) as ReadonlyArray<string>
    const first = (now() - start) * 1e6
    check(
      listed.length === LISTED_SQL && listed.every((key, i) => key === expected[i]),
      `${name}: list(${prefix}) returned ${listed.length} keys, not the ${LISTED_SQL} expected`
    )
    const sampleList = () => timed(contender, 1, (ops) => ops.list(prefix))
    const stats = first > ONCE_NS ? single(first) : await sampleBatches(sampleList, 1, budget)
    rows.push({ op: "list", stats })
    log(`${name}: list ${LISTED_SQL} of ${size} p50 ${(stats.p50 / 1e6).toFixed(2)} ms`)
    return { contender: name, size, listHow: contender.listHow, rows } satisfies SqlResult
  } finally {
    await contender.close()
  }
}

main(async () => {
  const { values: args } = parseArgs({
    options: {
      contender: { type: "string" },
      pg: { type: "string" },
      redis: { type: "string" },
      dir: { type: "string" },
      size: { type: "string" },
      quick: { type: "boolean", default: false }
    }
  })
  emit(
    await run(
      args.contender ?? "",
      Number(args.size),
      { pgUrl: args.pg ?? "", redisUrl: args.redis ?? "", dir: args.dir ?? "" },
      args.quick === true
    )
  )
})
