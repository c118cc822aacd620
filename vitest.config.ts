import "./test/polyfills.ts"
import * as Path from "node:path"
import { defineConfig } from "vitest/config"

// Tests import the package by its public name, as users do, and run against the sources.
const source = (file: string) => Path.join(import.meta.dirname, "src", file)

const moduleOf = (entity: unknown): string | undefined => {
  const candidate = entity as { readonly moduleId?: string; readonly module?: { readonly moduleId?: string } }
  return candidate?.moduleId ?? candidate?.module?.moduleId
}

/** Files that kill, pause or fail over servers on purpose, and time the recovery. */
const faultTests = [
  "test/RedisFaults.test.ts",
  "test/RedisClusterFaults.test.ts",
  "test/RedisClusterWatch.test.ts",
  "test/upload-server/outage.test.ts",
  "test/upload-server/handles.test.ts",
  "test/upload-server/soak.test.ts"
]

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
    testTimeout: 30_000,
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
          // cores run at once; a worker keeps the modules it loaded for its next file (no test file changes globals).
          maxWorkers: 4,
          isolate: false
        }
      },
      {
        extends: true,
        test: {
          name: "faults",
          include: faultTests,
          // These kill, pause and fail over servers and time the recovery: after the CPU-heavy files, and two at a
          // time (they wait on failovers more than they compute).
          maxWorkers: 2,
          sequence: { groupOrder: 1 }
        }
      }
    ],
    // The fault tests (and NodeRedis's) kill, hang and fail over Redis on purpose; the connection warnings logged
    // meanwhile are expected there and would make a passing run look like a failing one. Anywhere else they show.
    onConsoleLog: (log, _type, entity) =>
      !(/effect-kv: Redis connection error|NodeRedis client error/.test(log) &&
        /(Faults|NodeRedisKvStore)\.test\.ts$/.test(moduleOf(entity) ?? ""))
  }
})
