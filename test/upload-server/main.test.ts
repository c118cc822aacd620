/**
 * `npm start` as a user runs it: the program in a child process, configured by the environment.
 */
import { describe, expect, it } from "@effect/vitest"
import { randomData, runServer, sha256, spawnServer, tempDir, upload, waitFor } from "./support.ts"

describe("npm start", () => {
  it("prints where it listens and which store, serves tus-js-client, and stops on SIGTERM with 0", async () => {
    // Through tsx, as `npm start` runs it; the other tests run the same sources bundled (support.ts).
    const server = await spawnServer({ DATA_DIR: tempDir() }, "tsx")
    try {
      expect(server.output()).toMatch(/listening on http:\/\/127\.0\.0\.1:\d+\/files\//)
      expect(server.output()).toContain("in-memory")
      const data = randomData(1024 * 1024)
      const url = await upload(data, { endpoint: server.endpoint, chunkSize: 256 * 1024 })
      expect(sha256(Buffer.from(await (await fetch(url)).arrayBuffer()))).toBe(sha256(data))
      // The request log is written in batches: wait for the batch that holds the PATCH, then check it.
      const logged = /Sent HTTP response.*PATCH|PATCH[\s\S]*204/
      await waitFor("the PATCH in the request log", () => logged.test(server.output()))
      expect(server.output()).toMatch(logged)
    } finally {
      server.process.kill("SIGTERM")
    }
    expect(await server.exited).toBe(0)
  })

  it("refuses bad settings with the variable's name and exits 1", async () => {
    for (
      const [env, message] of [
        [{ PORT: "http" }, /PORT/],
        [{ PORT: "70000" }, /between 0 and 65535[\s\S]*PORT/],
        [{ MAX_SIZE: "-1" }, /MAX_SIZE/],
        [{ UPLOAD_BYTES_PER_OWNER: "1 GB" }, /UPLOAD_BYTES_PER_OWNER/],
        [{ UPLOAD_EXPIRES_AFTER: "tomorrow" }, /UPLOAD_EXPIRES_AFTER/],
        [{ UPLOAD_EXPIRES_AFTER: "0 seconds" }, /at least 1 millisecond[\s\S]*UPLOAD_EXPIRES_AFTER/],
        [{ UPLOAD_STORE_WAIT: "Infinity" }, /finite duration[\s\S]*UPLOAD_STORE_WAIT/],
        [{ UPLOAD_ABANDONED_AFTER: "later" }, /UPLOAD_ABANDONED_AFTER/],
        [{ UPLOAD_SYNC_WRITE_BYTES: "-1" }, /UPLOAD_SYNC_WRITE_BYTES/]
      ] as const
    ) {
      const { code, output } = await runServer(env)
      expect(code, JSON.stringify(env)).toBe(1)
      expect(output, JSON.stringify(env)).toMatch(message)
    }
    // Nine program starts one after another, each a second or more on a loaded 2-core machine.
  }, 240_000)
})
