/**
 * A short store outage costs clients no progress: redis-server (append-only, fsync always) is killed and started
 * again while tus-js-client uploads run on two instances, and every upload must finish byte for byte without ever
 * starting again from zero (one creation each) and without a 5xx on the way: requests wait the outage out.
 */
import { describe, expect, it } from "@effect/vitest"
import { layerRedis } from "effect-kv/redis"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { canKillServers, uniqueNamespace } from "../support/fixtures.ts"
import { download, randomData, sha256, startServer, tempDir, TUS, upload, useDurableRedis, waitFor } from "./support.ts"

const redis = useDurableRedis()

describe.skipIf(!canKillServers)("a Redis restart mid-upload", () => {
  it("costs no progress: every upload finishes without starting over and without a 5xx", async () => {
    const keyPrefix = uniqueNamespace()
    const dataDir = tempDir()
    const store = () => layerRedis({ url: redis().url, keyPrefix })
    // The default store window (`UPLOAD_STORE_WAIT`): what `npm start` runs with.
    const servers = [
      await startServer({ store: store(), settings: { dataDir } }),
      await startServer({ store: store(), settings: { dataDir } })
    ]
    try {
      const datas = Array.from({ length: 6 }, () => randomData(4 * 1024 * 1024))
      const creations: Array<number> = datas.map(() => 0)
      const serverErrors: Array<string> = []
      let chunks = 0
      let restarted: Promise<void> | undefined
      const urls = await Promise.all(datas.map((data, i) =>
        upload(data, {
          endpoint: servers[i % 2].endpoint,
          chunkSize: 128 * 1024,
          onBeforeRequest: (request) => {
            if (request.getMethod() === "POST") creations[i]++
          },
          onAfterResponse: (request, response) => {
            if (response.getStatus() >= 500) serverErrors.push(`${request.getMethod()} ${response.getStatus()}`)
          },
          onChunkComplete: () => {
            // Once every upload is under way: kill Redis and start it again while PATCHes are in flight.
            if (++chunks === datas.length * 2) restarted = Effect.runPromise(redis().restart)
          }
        })
      ))
      expect(restarted).toBeDefined()
      await restarted
      expect(serverErrors).toEqual([])
      expect(creations).toEqual(datas.map(() => 1))
      for (const [i, url] of urls.entries()) {
        expect(sha256((await download(url)).body), `upload ${i}`).toBe(sha256(datas[i]))
      }
    } finally {
      await Promise.all(servers.map((server) => server.close()))
    }
  }, 120_000)

  it(
    "lets at most UPLOAD_STORE_MAX_WAITING calls wait: the rest are 503 at once, the waiting one goes on",
    async () => {
      const server = await startServer({
        store: layerRedis({ url: redis().url, keyPrefix: uniqueNamespace() }),
        // A window far longer than the test needs: the waiting creation can only end by Redis coming back.
        settings: { storeWait: Duration.minutes(1), storeMaxWaiting: 1 }
      })
      try {
        await Effect.runPromise(redis().kill)
        const statuses: Array<number> = []
        const retryAfter: Array<string | null> = []
        const creations = Array.from(
          { length: 3 },
          () =>
            fetch(server.endpoint, { method: "POST", headers: { ...TUS, "Upload-Length": "1" } }).then((response) => {
              statuses.push(response.status)
              retryAfter.push(response.headers.get("retry-after"))
            })
        )
        // Redis stays down until two have been answered: they cannot have waited for it.
        await waitFor("two creations answered while Redis is down", () => statuses.length === 2)
        expect(statuses).toEqual([503, 503])
        expect(retryAfter).toEqual(["1", "1"])
        await Effect.runPromise(redis().restart)
        await Promise.all(creations)
        expect(statuses).toEqual([503, 503, 201])
      } finally {
        await server.close()
      }
    },
    120_000
  )
})
