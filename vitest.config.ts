import "./test/polyfills.ts"
import * as Path from "node:path"
import { defineConfig } from "vitest/config"

// Tests import the package by its public name, as users do, and run against the sources.
const source = (file: string) => Path.join(import.meta.dirname, "src", file)

const moduleOf = (entity: unknown): string | undefined => {
  const candidate = entity as { readonly moduleId?: string; readonly module?: { readonly moduleId?: string } }
  return candidate?.moduleId ?? candidate?.module?.moduleId
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
    include: ["test/**/*.test.ts"],
    setupFiles: ["./test/polyfills.ts"],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // The fault tests (and NodeRedis's) kill, hang and fail over Redis on purpose; the connection warnings logged
    // meanwhile are expected there and would make a passing run look like a failing one. Anywhere else they show.
    onConsoleLog: (log, _type, entity) =>
      !(/effect-kv: Redis connection error|NodeRedis client error/.test(log) &&
        /(Faults|NodeRedisKvStore)\.test\.ts$/.test(moduleOf(entity) ?? ""))
  }
})
