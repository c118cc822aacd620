/**
 * Puts the benchmark keyspace into the Redis server, and runs `redis-benchmark` against it.
 *
 * The first keys go in as pipelined MSETs of `upload:<uuid>` keys (the same ones the children regenerate); growing
 * to a million keys uses `DEBUG POPULATE`, which writes `upload:<n>` keys inside the server in about a second,
 * where a client needs several.
 */
import * as Effect from "effect/Effect"
import { execFile } from "node:child_process"
import { entries, type Layout } from "./data.ts"
import { effectKvStore, rawNodeRedis } from "./redisContenders.ts"

const MSET_KEYS = 500
const MSETS_IN_FLIGHT = 8

/** Writes every key of `keyspace` (which must be the first thing in the database). */
export const fillKeyspace = async (url: string, keyspace: Layout): Promise<void> => {
  const { client, fast } = await rawNodeRedis(url)
  try {
    const pending = new Set<Promise<unknown>>()
    let batch: Array<string> = []
    const flush = async () => {
      const sent = fast.mSet(batch)
      batch = []
      pending.add(sent)
      sent.finally(() => pending.delete(sent)).catch(() => undefined)
      if (pending.size >= MSETS_IN_FLIGHT) await Promise.race(pending)
    }
    for (const [key, value] of entries(keyspace)) {
      batch.push(key, value)
      if (batch.length === MSET_KEYS * 2) await flush()
    }
    if (batch.length > 0) await flush()
    await Promise.all(pending)
    const size = await fast.dbSize()
    if (size !== keyspace.total) throw new Error(`Redis holds ${size} keys after filling ${keyspace.total}`)
  } finally {
    await client.close()
  }
}

/** How many of the ordered index's own keys (see src/internal/redisIndex.ts) the database holds. */
const indexKeys = async (fast: Awaited<ReturnType<typeof rawNodeRedis>>["fast"]): Promise<number> =>
  Number(
    await fast.sendCommand([
      "EXISTS",
      ...["index", "expiry", "ready"].map((suffix) => Buffer.concat([Buffer.from([0xff]), Buffer.from(suffix)]))
    ])
  )

/**
 * Indexes the keyspace for the ordered-index contenders, which share the database (namespace "") with the others:
 * drops the index's marker, so the next indexed operation rebuilds it from a SCAN (the keys added by MSET and DEBUG
 * POPULATE bypassed it), and checks that the index then counts every key. Returns the rebuild's milliseconds.
 */
export const indexKeyspace = async (url: string): Promise<number> => {
  const { client, fast } = await rawNodeRedis(url)
  const { close, store } = await effectKvStore(url, "node-redis", true)
  try {
    await fast.sendCommand(["DEL", Buffer.concat([Buffer.from([0xff]), Buffer.from("ready")])])
    const start = Date.now()
    const counted = await Effect.runPromise(store.count(""))
    const ms = Date.now() - start
    const size = (await fast.dbSize()) - (await indexKeys(fast))
    if (counted !== size) throw new Error(`the ordered index counts ${counted} keys, Redis holds ${size}`)
    return ms
  } finally {
    await close()
    await client.close()
  }
}

/** Adds `upload:0` .. `upload:<count - 1>` with 200-byte values, server-side, and checks the total. */
export const populate = async (url: string, count: number, total: number): Promise<void> => {
  const { client, fast } = await rawNodeRedis(url)
  try {
    await fast.sendCommand(["DEBUG", "POPULATE", String(count), "upload", "200"])
    const size = (await fast.dbSize()) - (await indexKeys(fast))
    if (size !== total) throw new Error(`Redis holds ${size} keys after DEBUG POPULATE, not ${total}`)
  } finally {
    await client.close()
  }
}

export interface RedisBenchmarkRow {
  readonly test: string
  readonly rps: number
  readonly avgMs: number
  readonly p50Ms: number
}

/**
 * `redis-benchmark -c 100 -P 1 -d 200 -t get,set --csv`, plus `-n` (the run's length), `-r` (random keys, so GET
 * does not hit one key) and `--dbnum 1` (its `key:<n>` keys stay out of the database the listings scan).
 */
export const redisBenchmark = (host: string, port: number, requests: number): Promise<Array<RedisBenchmarkRow>> =>
  new Promise((resolve, reject) => {
    const args = ["-h", host, "-p", String(port), "-c", "100", "-P", "1", "-d", "200", "-t", "get,set"]
    args.push("-n", String(requests), "-r", "100000", "--dbnum", "1", "--csv")
    execFile("redis-benchmark", args, { timeout: 120_000 }, (error, stdout, stderr) => {
      if (error !== null) return reject(new Error(`redis-benchmark ${args.join(" ")}: ${error.message}\n${stderr}`))
      const [header, ...lines] = stdout.trim().split("\n").map((line) =>
        line.split(",").map((cell) => cell.replace(/^"|"$/g, ""))
      )
      const column = (name: string) => {
        const index = header?.indexOf(name) ?? -1
        if (index < 0) throw new Error(`redis-benchmark printed no ${name} column: ${stdout}`)
        return index
      }
      try {
        const rows = lines.map((cells) => ({
          test: cells[column("test")],
          rps: Number(cells[column("rps")]),
          avgMs: Number(cells[column("avg_latency_ms")]),
          p50Ms: Number(cells[column("p50_latency_ms")])
        }))
        if (rows.length !== 2 || !rows.every((row) => row.rps > 0)) throw new Error(`unexpected output: ${stdout}`)
        resolve(rows)
      } catch (cause) {
        reject(cause)
      }
    })
  })
