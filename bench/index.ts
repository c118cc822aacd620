/**
 * `npm run bench`: every effect-kv benchmark in one go, and BENCHMARKS.md.
 *
 * The orchestrator runs each heavy variant (one store at one keyspace size, one Redis listing contender, the Redis
 * operations of one client library's contenders) in a fresh child process and reads its result back, repeating the
 * whole set in rounds with the order rotated, so that the noise of this shared machine falls on every contender alike.
 * It then pools the rounds, prints the tables and the targets, and (full run only) writes BENCHMARKS.md:
 * bench/reports/template.md filled with the tables of each suite's report module (bench/reports/). Raw results go to
 * bench/results/ (ignored by git). The servers it starts (redis-server, a Redis Cluster, PostgreSQL) are the tests'
 * own fixtures (test/support), so the bench and the tests run against servers started one way.
 *
 * `npm run bench -- --quick` is the CI smoke run: small keyspaces, one round, short samples, under a minute or so,
 * touching no tracked file. Any benchmark that fails (a child that crashes, or a store that does not do what its row
 * claims) makes the process exit non-zero; a missed target does not.
 *
 * The instruction counts (bench/instructions.ts) are the one suite whose children run under valgrind, bundled first,
 * two at a time: a count does not depend on the machine's load.
 *
 * `--only memory,bytes,redis,contract,sql,uploads,effect,watch,instructions` runs a subset (for working on one
 * suite); it never writes BENCHMARKS.md.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { startPostgresServer } from "../test/support/PostgresServer.ts"
import { startRedisCluster, startRedisServer } from "../test/support/RedisServer.ts"
import type { ContractResult } from "./contract.ts"
import type { MemoryResult } from "./memory.ts"
import type { BytesResult } from "./memoryBytes.ts"
import type { RedisListResult, RedisOpsResult } from "./redis.ts"
import { renderDocument, renderTerminal } from "./reports/document.ts"
import type { Results } from "./reports/results.ts"
import type { SqlResult } from "./sql.ts"
import { bundleChild, ChildError, hasValgrind, runChild, runCounted } from "./support/children.ts"
import { COUNTED_OPS, COUNTED_STORES, type CountedOp, type CountedRun, type CountedStore } from "./support/counted.ts"
import { layout } from "./support/data.ts"
import { environment } from "./support/machine.ts"
import { MEMORY_STORES } from "./support/memoryStores.ts"
import { LIST_CONTENDERS, LISTED, OPS_KEYSPACE, REDIS_OPS_GROUPS } from "./support/redisContenders.ts"
import { fillKeyspace, indexKeyspace, populate, redisBenchmark, type RedisBenchmarkRow } from "./support/redisData.ts"
import { SQL_CONTENDERS } from "./support/sqlContenders.ts"
import { UPLOAD_CONTENDERS } from "./support/uploadContenders.ts"
import type { UploadResult } from "./uploads.ts"
import type { MechanismResult, WatchResult } from "./watch.ts"

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)))

/** How much of everything a run does. */
interface Plan {
  readonly memorySizes: ReadonlyArray<number>
  /** Rounds per keyspace size: the million-key variants cost the most and vary the least. */
  readonly memoryRounds: (size: number) => number
  readonly bytesEntries: number
  readonly redisRounds: number
  readonly listSizes: ReadonlyArray<number>
  readonly listRounds: (size: number) => number
  readonly redisBenchmarkRequests: number
  readonly contractRounds: number
  /** Keys in the durable-store suite's keyspace, and its rounds. */
  readonly sqlSize: number
  readonly sqlRounds: number
  readonly childTimeoutMs: number
  /** The instruction counts: which stores and operations, at which batch counts (see bench/instructions.ts). */
  readonly counted: {
    readonly stores: ReadonlyArray<CountedStore>
    readonly ops: ReadonlyArray<CountedOp>
    readonly batches: ReadonlyArray<number>
  }
}

const FULL: Plan = {
  memorySizes: [10_000, 100_000, 1_000_000],
  memoryRounds: (size) => size >= 1_000_000 ? 2 : 3,
  bytesEntries: 1_000_000,
  redisRounds: 3,
  listSizes: [200_000, 1_000_000],
  listRounds: (size) => size >= 1_000_000 ? 2 : 3,
  redisBenchmarkRequests: 100_000,
  contractRounds: 2,
  sqlSize: 10_000,
  sqlRounds: 3,
  childTimeoutMs: 10 * 60_000,
  // Three batch counts: two differences, whose agreement is the count's spread.
  counted: { stores: COUNTED_STORES, ops: COUNTED_OPS, batches: [100, 200, 300] }
}

const QUICK: Plan = {
  memorySizes: [10_000],
  memoryRounds: () => 1,
  bytesEntries: 50_000,
  redisRounds: 1,
  listSizes: [200_000],
  listRounds: () => 1,
  redisBenchmarkRequests: 10_000,
  contractRounds: 1,
  sqlSize: 2_000,
  sqlRounds: 1,
  childTimeoutMs: 2 * 60_000,
  counted: { stores: ["layerMemory", "effect-kv"], ops: ["overwrite"], batches: [20, 60] }
}

const SUITES = ["memory", "bytes", "redis", "contract", "sql", "uploads", "effect", "watch", "instructions"] as const
type Suite = typeof SUITES[number]

/** `items` starting at a different position each round, so no contender always runs first or last. */
const rotate = <A>(items: ReadonlyArray<A>, by: number): Array<A> => items.map((_, i) => items[(i + by) % items.length])

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`

const progress = (message: string): void => {
  process.stderr.write(`${message}\n`)
}

const run = async (): Promise<number> => {
  const { values: args } = parseArgs({
    options: { quick: { type: "boolean", default: false }, only: { type: "string" } }
  })
  const quick = args.quick === true
  const plan = quick ? QUICK : FULL
  const only = args.only?.split(",").map((suite) => suite.trim())
  const unknown = only?.filter((suite) => !(SUITES as ReadonlyArray<string>).includes(suite)) ?? []
  if (unknown.length > 0) throw new Error(`unknown suite ${unknown.join(", ")}; expected ${SUITES.join(", ")}`)
  const runs = (suite: Suite) => only === undefined || only.includes(suite)
  const quickFlag = quick ? ["--quick"] : []

  const started = Date.now()
  const results: Results = {
    quick,
    command: quick ? "npm run bench -- --quick" : "npm run bench",
    startedAt: new Date(started).toISOString(),
    wallMs: 0,
    environment: environment(path.join(ROOT, "bench")),
    memory: [],
    bytes: [],
    redisOps: [],
    redisList: [],
    redisIndexBuild: [],
    redisBenchmark: [],
    contract: [],
    sql: [],
    uploads: [],
    watch: [],
    instructions: [],
    failures: []
  }

  /** Runs one child; a failure is recorded (and fails the run) but the other benchmarks still run. */
  const child = async <A>(label: string, script: string, childArgs: ReadonlyArray<string>): Promise<A | undefined> => {
    const begin = Date.now()
    progress(`  ${label}`)
    try {
      const result = await runChild(script, childArgs, plan.childTimeoutMs) as A
      progress(`  ${label}: ${seconds(Date.now() - begin)}`)
      return result
    } catch (error) {
      const message = error instanceof ChildError ? error.message : String(error)
      results.failures.push(`${label}: ${message}`)
      progress(`  ${label}: FAILED ${message}`)
      return undefined
    }
  }

  if (runs("memory")) {
    const rounds = Math.max(...plan.memorySizes.map(plan.memoryRounds))
    for (let round = 0; round < rounds; round++) {
      for (const size of plan.memorySizes) {
        if (round >= plan.memoryRounds(size)) continue
        progress(`memory, round ${round + 1}/${plan.memoryRounds(size)}, ${size.toLocaleString("en-US")} keys`)
        for (const store of rotate(MEMORY_STORES, round)) {
          const result = await child<MemoryResult>(`${store}`, "memory.ts", [
            "--store",
            store,
            "--size",
            String(size),
            ...quickFlag
          ])
          if (result !== undefined) results.memory.push({ ...result, round })
        }
      }
    }
  }

  if (runs("bytes")) {
    progress(`bytes per entry, ${plan.bytesEntries.toLocaleString("en-US")} entries`)
    for (const store of MEMORY_STORES.filter((name) => name !== "sorted-btree")) {
      const result = await child<BytesResult>(store, "memoryBytes.ts", [
        "--store",
        store,
        "--entries",
        String(plan.bytesEntries)
      ])
      if (result !== undefined) results.bytes.push(result)
    }
  }

  if (runs("redis")) {
    const scope = Scope.makeUnsafe()
    try {
      // DEBUG POPULATE needs the debug command, which Redis 7 disables by default.
      const server = await Effect.runPromise(
        Scope.provide(startRedisServer({ args: ["--enable-debug-command", "local"] }), scope)
      )
      progress(`redis-server on ${server.url}`)
      const fillStart = Date.now()
      await fillKeyspace(server.url, layout(OPS_KEYSPACE, [LISTED]))
      progress(`  filled ${OPS_KEYSPACE.toLocaleString("en-US")} keys in ${seconds(Date.now() - fillStart)}`)

      for (let round = 0; round < plan.redisRounds; round++) {
        progress(`redis operations, round ${round + 1}/${plan.redisRounds}`)
        for (const group of rotate(REDIS_OPS_GROUPS, round)) {
          const result = await child<ReadonlyArray<RedisOpsResult>>(group.join(" + "), "redis.ts", [
            "--suite",
            "ops",
            "--contender",
            group.join(","),
            "--url",
            server.url,
            ...quickFlag
          ])
          for (const one of result ?? []) results.redisOps.push({ ...one, round })
        }
        try {
          const rows: Array<RedisBenchmarkRow> = await redisBenchmark(
            server.host,
            server.port,
            plan.redisBenchmarkRequests
          )
          for (const row of rows) results.redisBenchmark.push({ ...row, round })
          progress(`  redis-benchmark: ${rows.map((row) => `${row.test} ${Math.round(row.rps)} rps`).join(", ")}`)
        } catch (error) {
          results.failures.push(`redis-benchmark: ${String(error)}`)
          progress(`  redis-benchmark: FAILED ${String(error)}`)
        }
      }

      let keys = OPS_KEYSPACE
      for (const size of plan.listSizes) {
        if (size > keys) {
          const populateStart = Date.now()
          // DEBUG POPULATE skips the upload:<n> keys that exist, so the count is the whole run of them, not the growth.
          await populate(server.url, size - OPS_KEYSPACE, size)
          progress(`  DEBUG POPULATE to ${size.toLocaleString("en-US")} keys in ${seconds(Date.now() - populateStart)}`)
          keys = size
        }
        const indexStart = Date.now()
        const rebuildMs = await indexKeyspace(server.url)
        results.redisIndexBuild?.push({ size, ms: rebuildMs })
        progress(
          `  ordered index of ${size.toLocaleString("en-US")} keys rebuilt in ${seconds(Date.now() - indexStart)}`
        )
        for (let round = 0; round < plan.listRounds(size); round++) {
          progress(`redis list, round ${round + 1}/${plan.listRounds(size)}, ${size.toLocaleString("en-US")} keys`)
          for (const contender of rotate(LIST_CONTENDERS, round)) {
            const result = await child<RedisListResult>(contender, "redis.ts", [
              "--suite",
              "list",
              "--contender",
              contender,
              "--url",
              server.url,
              "--size",
              String(size),
              ...quickFlag
            ])
            if (result !== undefined) results.redisList.push({ ...result, round })
          }
        }
      }
    } catch (error) {
      results.failures.push(`redis suite: ${error instanceof Error ? error.message : String(error)}`)
      progress(`redis suite: FAILED ${String(error)}`)
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  }

  if (runs("contract")) {
    const scope = Scope.makeUnsafe()
    try {
      // Fresh servers: the ops keyspace above must not slow the scripts' keys, nor these its.
      const server = await Effect.runPromise(Scope.provide(startRedisServer(), scope))
      const cluster = await Effect.runPromise(Scope.provide(startRedisCluster(), scope))
      const rootNodes = cluster.nodes.map(({ host, port }) => `redis://${host}:${port}`).join(",")
      for (let round = 0; round < plan.contractRounds; round++) {
        progress(`contract, round ${round + 1}/${plan.contractRounds}`)
        const memory = await child<ContractResult>("memory", "contract.ts", ["--suite", "memory", ...quickFlag])
        if (memory !== undefined) results.contract.push({ ...memory, round })
        const redis = await child<ContractResult>("redis standalone and cluster", "contract.ts", [
          "--suite",
          "redis",
          "--url",
          server.url,
          "--cluster",
          rootNodes,
          ...quickFlag
        ])
        if (redis !== undefined) results.contract.push({ ...redis, round })
      }
    } catch (error) {
      results.failures.push(`contract suite: ${error instanceof Error ? error.message : String(error)}`)
      progress(`contract suite: FAILED ${String(error)}`)
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  }

  if (runs("uploads")) {
    const scope = Scope.makeUnsafe()
    try {
      const server = await Effect.runPromise(Scope.provide(startRedisServer(), scope))
      progress(`uploads, redis-server on ${server.url}`)
      const uploads = await child<ReadonlyArray<UploadResult>>("upload servers", "uploads.ts", [
        "--contenders",
        UPLOAD_CONTENDERS.join(","),
        "--url",
        server.url,
        ...quickFlag
      ])
      for (const result of uploads ?? []) results.uploads.push({ ...result, round: 0 })
    } catch (error) {
      results.failures.push(`uploads suite: ${error instanceof Error ? error.message : String(error)}`)
      progress(`uploads suite: FAILED ${String(error)}`)
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  }

  if (runs("sql")) {
    const scope = Scope.makeUnsafe()
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-kv-bench-sql-"))
    try {
      const [pg, redis] = await Effect.runPromise(
        Scope.provide(Effect.all([startPostgresServer(), startRedisServer()], { concurrency: 2 }), scope)
      )
      progress(`postgres on ${pg.url}, redis-server on ${redis.url}, SQLite files in ${dir}`)
      for (let round = 0; round < plan.sqlRounds; round++) {
        progress(`durable stores, round ${round + 1}/${plan.sqlRounds}, ${plan.sqlSize.toLocaleString("en-US")} keys`)
        for (const contender of rotate(SQL_CONTENDERS, round)) {
          // SQLite files are new each round; the PostgreSQL tables and Redis keys are refilled with the same keyspace.
          const roundDir = fs.mkdtempSync(path.join(dir, `r${round}-`))
          const result = await child<SqlResult>(contender, "sql.ts", [
            "--contender",
            contender,
            "--size",
            String(plan.sqlSize),
            "--pg",
            pg.url,
            "--redis",
            redis.url,
            "--dir",
            roundDir,
            ...quickFlag
          ])
          if (result !== undefined) results.sql!.push({ ...result, round })
        }
      }
    } catch (error) {
      results.failures.push(`sql suite: ${error instanceof Error ? error.message : String(error)}`)
      progress(`sql suite: FAILED ${String(error)}`)
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }

  if (runs("effect")) {
    const scope = Scope.makeUnsafe()
    try {
      // Effect's KeyValueStore and PersistedCache beside effect-kv's; its rows are shown as contract groups.
      const [pg, redis] = await Effect.runPromise(
        Scope.provide(Effect.all([startPostgresServer(), startRedisServer()], { concurrency: 2 }), scope)
      )
      for (let round = 0; round < plan.contractRounds; round++) {
        progress(`effect ecosystem, round ${round + 1}/${plan.contractRounds}`)
        const result = await child<ContractResult>("spans and PersistedCache", "effect.ts", [
          "--url",
          redis.url,
          "--pg",
          pg.url,
          ...quickFlag
        ])
        if (result !== undefined) results.contract.push({ ...result, round })
      }
    } catch (error) {
      results.failures.push(`effect suite: ${error instanceof Error ? error.message : String(error)}`)
      progress(`effect suite: FAILED ${String(error)}`)
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  }

  if (runs("watch")) {
    const scope = Scope.makeUnsafe()
    try {
      const [redis, pg] = await Effect.runPromise(
        Scope.provide(Effect.all([startRedisServer(), startPostgresServer()], { concurrency: 2 }), scope)
      )
      for (const backend of ["memory", "node-redis", "ioredis", "postgres"]) {
        progress(`watch, ${backend}`)
        const result = await child<WatchResult>(`watch ${backend}`, "watch.ts", [
          "--backend",
          backend,
          "--redis",
          redis.url,
          "--pg",
          pg.url,
          ...quickFlag
        ])
        if (result !== undefined) results.watch!.push(result)
      }
      progress("watch, mechanism")
      results.watchMechanism = await child<MechanismResult>("watch mechanism", "watch.ts", [
        "--backend",
        "mechanism",
        "--redis",
        redis.url,
        ...quickFlag
      ])
    } catch (error) {
      results.failures.push(`watch suite: ${error instanceof Error ? error.message : String(error)}`)
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  }

  if (runs("instructions")) {
    if (await hasValgrind()) {
      progress("instructions (valgrind)")
      try {
        const bundle = await bundleChild("instructions.ts")
        const variants = plan.counted.stores.flatMap((store) =>
          plan.counted.ops.flatMap((op) => plan.counted.batches.map((batches) => ({ store, op, batches })))
        )
        // A count does not depend on what else the machine runs, so two run at once, one per core.
        await Effect.runPromise(Effect.forEach(variants, ({ batches, op, store }) =>
          Effect.promise(async () => {
            const label = `instructions ${store} ${op} × ${batches}`
            const begin = Date.now()
            try {
              const { instructions, result } = await runCounted(
                bundle,
                ["--store", store, "--op", op, "--batches", String(batches)],
                plan.childTimeoutMs
              )
              results.instructions!.push({ ...(result as Omit<CountedRun, "instructions">), instructions })
              progress(`  ${label}: ${seconds(Date.now() - begin)}`)
            } catch (error) {
              const message = error instanceof ChildError ? error.message : String(error)
              results.failures.push(`${label}: ${message}`)
              progress(`  ${label}: FAILED ${message}`)
            }
          }), { concurrency: 2, discard: true }))
      } catch (error) {
        results.failures.push(`instructions suite: ${error instanceof Error ? error.message : String(error)}`)
      }
    } else {
      results.failures.push("instructions suite: valgrind is not installed (apt-get install valgrind)")
    }
  }

  results.wallMs = Date.now() - started
  const resultsDir = path.join(ROOT, "bench", "results")
  fs.mkdirSync(resultsDir, { recursive: true })
  const stamp = results.startedAt.replace(/[:.]/g, "-")
  const resultsFile = path.join(
    resultsDir,
    `${quick ? "quick" : only === undefined ? "full" : "partial"}-${stamp}.json`
  )
  fs.writeFileSync(resultsFile, JSON.stringify(results))

  process.stdout.write(renderTerminal(results))
  progress(`\nraw results: ${path.relative(ROOT, resultsFile)}; wall time ${seconds(results.wallMs)}`)

  if (results.failures.length > 0) {
    progress(`\n${results.failures.length} benchmark(s) FAILED:\n${results.failures.map((f) => `  - ${f}`).join("\n")}`)
    return 1
  }
  // Only a complete, successful full run may replace the tracked report.
  if (!quick && only === undefined) {
    fs.writeFileSync(path.join(ROOT, "BENCHMARKS.md"), renderDocument(results))
    progress("wrote BENCHMARKS.md")
  }
  return 0
}

run().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
    process.exit(1)
  }
)
