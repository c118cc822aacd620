import "./test/polyfills.ts"
import * as Path from "node:path"
import { defineConfig } from "vitest/config"
import { BaseSequencer, type TestSpecification } from "vitest/node"

// Tests import the package by its public name, as users do, and run against the sources.
const source = (file: string) => Path.join(import.meta.dirname, "src", file)

const moduleOf = (entity: unknown): string | undefined => {
  const candidate = entity as { readonly moduleId?: string; readonly module?: { readonly moduleId?: string } }
  return candidate?.moduleId ?? candidate?.module?.moduleId
}

/** Files that kill, pause or fail over servers on purpose and time the recovery, or hold commands to tight deadlines. */
const faultTests = [
  "test/RedisFaults.test.ts",
  "test/RedisOperations.test.ts",
  "test/RedisClusterFaults.test.ts",
  "test/RedisClusterFailover.test.ts",
  "test/RedisClusterWatch.test.ts",
  "test/upload-server/outage.test.ts",
  "test/upload-server/handles.test.ts",
  "test/upload-server/soak.test.ts"
]

/**
 * The files that take longest, longest first: short files that run hundreds of conformance checks, which vitest
 * would start last on a clean clone (without timings of an earlier run it starts the largest files first), leaving
 * one worker busy long after the others are done.
 */
const longest = [
  "test/RedisCluster.test.ts",
  "test/RedisClients.test.ts",
  "test/RedisStandalone.test.ts",
  "test/RedisCoalescing.test.ts",
  "test/upload-server/events.test.ts",
  "test/RedisIndexConformance.test.ts",
  "test/RedisKvStore.test.ts",
  "test/readme.test.ts",
  // The fault project's, longest first too: four workers then finish together.
  "test/RedisOperations.test.ts",
  "test/RedisFaults.test.ts",
  "test/RedisClusterFailover.test.ts",
  "test/RedisClusterFaults.test.ts",
  "test/RedisClusterWatch.test.ts",
  "test/upload-server/soak.test.ts"
]

class LongestFirst extends BaseSequencer {
  override async sort(files: Array<TestSpecification>): Promise<Array<TestSpecification>> {
    const sorted = await super.sort(files)
    const rank = (spec: TestSpecification) => {
      const index = longest.findIndex((file) => spec.moduleId.endsWith(file))
      return index === -1 ? longest.length : index
    }
    return sorted.map((spec, index) => ({ spec, index }))
      .sort((a, b) => rank(a.spec) - rank(b.spec) || a.index - b.index)
      .map(({ spec }) => spec)
  }
}

export default defineConfig({
  resolve: {
    alias: [
      { find: /^effect-kv$/, replacement: source("index.ts") },
      { find: /^effect-kv\/testing$/, replacement: source("testing.ts") },
      { find: /^effect-kv\/redis$/, replacement: source("RedisKvStore.ts") },
      { find: /^effect-kv\/sql$/, replacement: source("SqlKvStore.ts") },
      { find: /^effect-kv\/sqlite$/, replacement: source("SqliteKvStore.ts") },
      { find: /^effect-kv\/platform-node$/, replacement: source("NodeRedisKvStore.ts") }
    ]
  },
  test: {
    setupFiles: ["./test/polyfills.ts"],
    globalSetup: ["./test/globalSetup.ts"],
    sequence: { sequencer: LongestFirst },
    testTimeout: 30_000,
    // `expect.poll` waits for a condition; its default deadline (1 s) is short when files run side by side on 2 cores.
    expect: { poll: { timeout: 10_000 } },
    hookTimeout: 120_000,
    env: {
      // The model-based property test's depth: 100 random sequences per backend here, the suite's own default
      // (1,000) in CI on the machine's Node, which sets the variable.
      EFFECT_KV_CONFORMANCE_RUNS: process.env.EFFECT_KV_CONFORMANCE_RUNS ?? "100"
    },
    projects: [
      {
        extends: true,
        test: {
          name: "suite",
          include: ["test/**/*.test.ts"],
          exclude: faultTests,
          // Most files wait on servers (startup, ttl expiry, round trips) more than they compute, so more files than
          // cores run at once (three: four took more CPU for the same time); a worker keeps the modules it loaded for its next file (no test file changes globals).
          maxWorkers: 3,
          isolate: false
        }
      },
      {
        extends: true,
        test: {
          name: "faults",
          include: faultTests,
          // After the CPU-heavy files, four at a time: they wait on failovers and deadlines more than they compute.
          maxWorkers: 4,
          sequence: { groupOrder: 1 }
        }
      }
    ],
    // The fault tests (and NodeRedis's) kill, hang and fail over Redis on purpose; the connection warnings logged
    // meanwhile are expected there and would make a passing run look like a failing one. Anywhere else they show.
    onConsoleLog: (log, _type, entity) =>
      !(/effect-kv: Redis connection error|NodeRedis client error/.test(log) &&
        /(Faults|Failover|NodeRedisKvStore)\.test\.ts$/.test(moduleOf(entity) ?? ""))
  }
})
