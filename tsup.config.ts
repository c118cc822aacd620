import { defineConfig } from "tsup"

// Declarations come from `tsc -p tsconfig.build.json`: TypeScript 7 has no compiler API for tsup's `dts`.
export default defineConfig({
  entry: {
    index: "src/index.ts",
    testing: "src/testing.ts",
    redis: "src/RedisKvStore.ts",
    sql: "src/SqlKvStore.ts",
    sqlite: "src/SqliteKvStore.ts",
    "platform-node": "src/NodeRedisKvStore.ts"
  },
  format: ["esm", "cjs"],
  target: "node20",
  platform: "node",
  sourcemap: true,
  clean: true,
  dts: false,
  splitting: true,
  treeshake: true
})
