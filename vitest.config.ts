import "./test/polyfills.ts"
import * as Path from "node:path"
import { defineConfig } from "vitest/config"

// Tests import the package by its public name, as users do, and run against the sources.
const source = (file: string) => Path.join(import.meta.dirname, "src", file)

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
    hookTimeout: 120_000
  }
})
