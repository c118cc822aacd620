/**
 * The upload server on Redis: several instances sharing one Redis and one DATA_DIR serve the same uploads, the lock
 * holds across them, and a Redis that dies answers 503 at once and recovers by itself. The child-process test runs
 * `npm start`'s program with `REDIS_URL` and stops it with SIGTERM mid-upload.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { layerRedis } from "effect-kv/redis"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as fs from "node:fs"
import * as http from "node:http"
import * as path from "node:path"
import { createClient } from "redis"
import * as tus from "tus-js-client"
import * as Authorization from "../../apps/upload-server/src/Authorization.ts"
import * as Config from "../../apps/upload-server/src/Config.ts"
import * as Quota from "../../apps/upload-server/src/Quota.ts"
import * as Uploads from "../../apps/upload-server/src/Uploads.ts"
import { canKillServers, uniqueNamespace } from "../support/fixtures.ts"
import {
  download,
  memoryUrlStorage,
  randomData,
  type RunningServer,
  sha256,
  spawnServer,
  startServer,
  tempDir,
  TUS,
  upload,
  useDurableRedis,
  waitFor
} from "./support.ts"

const redis = useDurableRedis()

/** Two instances on one Redis namespace and one DATA_DIR, as two processes behind a load balancer would be. */
const startPair = async (settings: Partial<Config.ServerSettings> = {}) => {
  const keyPrefix = uniqueNamespace()
  const dataDir = tempDir()
  const store = () => layerRedis({ url: redis().url, keyPrefix })
  const a = await startServer({ store: store(), settings: { ...settings, dataDir } })
  const b = await startServer({ store: store(), settings: { ...settings, dataDir } })
  return { a, b, dataDir, close: () => Promise.all([a.close(), b.close()]) }
}

const on = (server: RunningServer, url: string) => server.endpoint + url.split("/").pop()

describe("two instances sharing Redis and DATA_DIR", () => {
  let pair: Awaited<ReturnType<typeof startPair>>
  beforeAll(async () => {
    pair = await startPair()
  })
  afterAll(() => pair.close())

  it("an upload started on one instance is finished on the other", async () => {
    const data = randomData(3 * 1024 * 1024)
    let first: tus.Upload | undefined
    await new Promise<void>((resolve, reject) => {
      first = new tus.Upload(data, {
        endpoint: pair.a.endpoint,
        chunkSize: 512 * 1024,
        onChunkComplete: (_, accepted) => {
          if (accepted >= 1024 * 1024) void first!.abort().then(resolve)
        },
        onError: reject
      })
      first.start()
    })
    const onB = on(pair.b, first!.url!)
    const offset = Number((await fetch(onB, { method: "HEAD", headers: TUS })).headers.get("upload-offset"))
    expect(offset).toBeGreaterThanOrEqual(1024 * 1024)
    const url = await upload(data, { uploadUrl: onB, chunkSize: 512 * 1024 })
    expect(url).toBe(onB)
    expect(sha256((await download(on(pair.a, url))).body)).toBe(sha256(data))
    expect(sha256((await download(onB)).body)).toBe(sha256(data))
  })

  it("of concurrent PATCHes at one offset split across both instances exactly one applies", async () => {
    for (let round = 0; round < 3; round++) {
      const created = await fetch(pair.a.endpoint, { method: "POST", headers: { ...TUS, "Upload-Length": "800000" } })
      const id = created.headers.get("location")!.split("/").pop()!
      const bodies = Array.from({ length: 6 }, () => randomData(200_000))
      const statuses = await Promise.all(
        bodies.map((body, i) =>
          fetch((i % 2 === 0 ? pair.a : pair.b).endpoint + id, {
            method: "PATCH",
            headers: { ...TUS, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0" },
            body
          }).then((response) => response.status)
        )
      )
      expect(statuses.filter((status) => status === 204), String(statuses)).toHaveLength(1)
      expect(statuses.every((status) => [204, 409, 423].includes(status)), String(statuses)).toBe(true)
      const head = await fetch(pair.b.endpoint + id, { method: "HEAD", headers: TUS })
      expect(head.headers.get("upload-offset")).toBe("200000")
      expect(fs.readFileSync(path.join(pair.dataDir, id)).equals(bodies[statuses.indexOf(204)])).toBe(true)
    }
  })

  it("parallelUploads spread over both instances", async () => {
    const data = randomData(2 * 1024 * 1024 + 5)
    let n = 0
    const url = await upload(data, {
      endpoint: pair.a.endpoint,
      parallelUploads: 3,
      // Every other request goes to the other instance.
      onBeforeRequest: (request) => {
        const target = new URL(request.getURL())
        if (n++ % 2 === 1) {
          target.port = new URL(pair.b.url).port
          ;(request as any)._url = target.href
        }
      }
    })
    expect(n).toBeGreaterThan(6)
    expect(sha256((await download(url)).body)).toBe(sha256(data))
  })
})

describe.skipIf(!canKillServers)("Redis killed and restarted under load", () => {
  it("an outage longer than the store window is answered 503 with Retry-After within it; the upload goes on after", async () => {
    const pair = await startPair({ storeWait: Duration.seconds(1) })
    try {
      const data = randomData(8 * 1024 * 1024)
      let killed = false
      let whileDown: { status: number; retryAfter: string | null; ms: number } | undefined
      const done = upload(data, {
        endpoint: pair.a.endpoint,
        chunkSize: 256 * 1024,
        retryDelays: Array.from({ length: 60 }, () => 250),
        onChunkComplete: (_, accepted) => {
          if (!killed && accepted >= 1024 * 1024) {
            killed = true
            void Effect.runPromise(redis().kill).then(async () => {
              const started = Date.now()
              const response = await fetch(pair.b.endpoint, {
                method: "POST",
                headers: { ...TUS, "Upload-Length": "1" }
              })
              whileDown = {
                status: response.status,
                retryAfter: response.headers.get("retry-after"),
                ms: Date.now() - started
              }
              await Effect.runPromise(redis().restart)
            })
          }
        }
      })
      const url = await done
      expect(killed).toBe(true)
      expect(whileDown?.status).toBe(503)
      expect(whileDown?.retryAfter).toBe("1")
      // It waited the window out, and answered well within the 10 s a request may take while the store is down.
      expect(whileDown!.ms).toBeGreaterThanOrEqual(1000)
      expect(whileDown!.ms).toBeLessThan(10_000)
      expect(sha256((await download(url)).body)).toBe(sha256(data))
      const created = await fetch(pair.b.endpoint, { method: "POST", headers: { ...TUS, "Upload-Length": "1" } })
      expect(created.status).toBe(201)
    } finally {
      await pair.close()
    }
  })
})

describe("npm start on Redis, stopped with SIGTERM", () => {
  it("finishes the PATCH in flight, exits, and the upload resumes on the next start", async () => {
    const env = { REDIS_URL: redis().url, REDIS_KEY_PREFIX: uniqueNamespace(), DATA_DIR: tempDir() }
    const first = await spawnServer(env)
    const data = randomData(2 * 1024 * 1024)
    const created = await fetch(first.endpoint, {
      method: "POST",
      headers: { ...TUS, "Upload-Length": String(data.length) }
    })
    const id = created.headers.get("location")!.split("/").pop()!
    const file = path.join(env.DATA_DIR, id)

    // A PATCH of the first MB, sent in two halves with SIGTERM in between: the server must take it to the end.
    const half = 512 * 1024
    const patched = new Promise<number>((resolve, reject) => {
      const request = http.request(first.endpoint + id, {
        method: "PATCH",
        headers: {
          ...TUS,
          "Content-Type": "application/offset+octet-stream",
          "Upload-Offset": "0",
          "Content-Length": String(2 * half)
        }
      }, (response) => {
        response.resume()
        resolve(response.statusCode!)
      })
      request.on("error", reject)
      request.write(data.subarray(0, half))
      void waitFor("the first half on disk", () => fs.statSync(file).size >= half).then(() => {
        first.process.kill("SIGTERM")
        setTimeout(() => request.end(data.subarray(half, 2 * half)), 200)
      })
    })
    expect(await patched).toBe(204)
    expect(await first.exited).toBe(0)
    expect(first.output()).not.toMatch(/ERROR/)

    const second = await spawnServer(env)
    try {
      const head = await fetch(second.endpoint + id, { method: "HEAD", headers: TUS })
      expect(head.headers.get("upload-offset")).toBe(String(2 * half))
      const urlStorage = memoryUrlStorage()
      await urlStorage.addUpload("f", {
        size: data.length,
        metadata: {},
        creationTime: new Date().toString(),
        urlStorageKey: "",
        uploadUrl: second.endpoint + id,
        parallelUploadUrls: null
      })
      let resumedAt = -1
      await new Promise<void>((resolve, reject) => {
        const resumed = new tus.Upload(data, {
          endpoint: second.endpoint,
          urlStorage,
          fingerprint: async () => "f",
          onProgress: (sent) => {
            if (resumedAt < 0) resumedAt = sent
          },
          onSuccess: () => resolve(),
          onError: reject
        })
        void resumed.findPreviousUploads().then((previous) => {
          resumed.resumeFromPreviousUpload(previous[0])
          resumed.start()
        })
      })
      expect(resumedAt).toBeGreaterThanOrEqual(2 * half)
      expect(sha256((await download(second.endpoint + id)).body)).toBe(sha256(data))
    } finally {
      second.process.kill("SIGTERM")
      await second.exited
    }
  })
})

describe("UPLOAD_CREATES_PER_MINUTE on two npm start instances sharing Redis", () => {
  it("counts one owner's creations across both instances: the fourth is 429 with Retry-After", async () => {
    const env = { REDIS_URL: redis().url, DATA_DIR: tempDir(), UPLOAD_CREATES_PER_MINUTE: "3" }
    const [a, b] = await Promise.all([spawnServer(env), spawnServer(env)])
    try {
      const create = (server: { endpoint: string }) =>
        fetch(server.endpoint, { method: "POST", headers: { ...TUS, "Upload-Length": "1" } })
      expect((await create(a)).status).toBe(201)
      expect((await create(b)).status).toBe(201)
      expect((await create(a)).status).toBe(201)
      for (const server of [a, b]) {
        const refused = await create(server)
        expect(refused.status).toBe(429)
        const retryAfter = Number(refused.headers.get("retry-after"))
        expect(retryAfter).toBeGreaterThanOrEqual(1)
        expect(retryAfter).toBeLessThanOrEqual(60)
      }
    } finally {
      a.process.kill("SIGTERM")
      b.process.kill("SIGTERM")
    }
    expect(await a.exited).toBe(0)
    expect(await b.exited).toBe(0)
  }, 180_000)
})

describe("UPLOAD_BYTES_PER_OWNER on two instances sharing Redis", () => {
  it("counts each owner's bytes across both instances", async () => {
    const keyPrefix = uniqueNamespace()
    const dataDir = tempDir()
    const start = () =>
      startServer({
        store: layerRedis({ url: redis().url, keyPrefix }),
        authorization: Authorization.layerBearer((token) => Effect.succeed(token)),
        settings: { dataDir, bytesPerOwner: 1000 }
      })
    const [a, b] = await Promise.all([start(), start()])
    try {
      const create = (server: RunningServer, owner: string, length: number) =>
        fetch(server.endpoint, {
          method: "POST",
          headers: { ...TUS, Authorization: `Bearer ${owner}`, "Upload-Length": String(length) }
        })
      expect((await create(a, "ann", 700)).status).toBe(201)
      expect((await create(b, "ann", 301)).status).toBe(413)
      expect((await create(b, "ben", 1000)).status).toBe(201)
      expect((await create(a, "ben", 1)).status).toBe(413)
      // Ten concurrent creations of 200 bytes, spread over both instances: exactly five fit.
      const racing = await Promise.all(Array.from({ length: 10 }, (_, i) => create(i % 2 ? a : b, "cat", 200)))
      const statuses = racing.map((response) => response.status)
      expect(statuses.filter((status) => status === 201).length).toBe(5)
      expect(statuses.filter((status) => status === 413).length).toBe(5)
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  })
})

describe("the quota ledger on Redis", () => {
  it("reservations made at once never pass the quota together", async () => {
    const granted = await Effect.runPromise(
      Effect.gen(function*() {
        const quotas = yield* Quota.Quotas
        return yield* Effect.all(
          Array.from({ length: 10 }, (_, i) => quotas.reserve("dora", `upload-${i}`, 200)),
          { concurrency: "unbounded" }
        )
      }).pipe(
        Effect.provide(
          Quota.layer.pipe(
            Layer.provideMerge(Uploads.layer),
            Layer.provideMerge(Config.layer({ bytesPerOwner: 1000, dataDir: tempDir() })),
            Layer.provideMerge(layerRedis({ url: redis().url, keyPrefix: uniqueNamespace() }))
          )
        )
      )
    )
    expect(granted.filter((ok) => ok).length).toBe(5)
  })
})

describe("takeover from an npm start instance killed mid-PATCH", () => {
  it(
    "the lease is renewed while the PATCH runs and, once its holder is killed, lapses for the other instance",
    async () => {
      const env = { REDIS_URL: redis().url, DATA_DIR: tempDir() }
      const [a, b] = await Promise.all([spawnServer(env), spawnServer(env)])
      const client = createClient({ url: redis().url })
      await client.connect()
      try {
        const data = randomData(1024 * 1024)
        const created = await fetch(a.endpoint, {
          method: "POST",
          headers: { ...TUS, "Upload-Length": String(data.length) }
        })
        const id = created.headers.get("location")!.split("/").pop()!
        const [key] = await client.keys(`*upload:${id}`)
        const lease = async () => (JSON.parse((await client.get(key))!) as { lease?: { until: number } }).lease
        const patch = (server: { endpoint: string }) =>
          fetch(server.endpoint + id, {
            method: "PATCH",
            headers: { ...TUS, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0" },
            body: data
          })

        // A PATCH on `a` that sends half its body and then stalls: `a` holds the lease with it.
        const stalled = http.request(a.endpoint + id, {
          method: "PATCH",
          headers: {
            ...TUS,
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": "0",
            "Content-Length": String(data.length)
          }
        })
        stalled.on("error", () => {})
        stalled.write(data.subarray(0, data.length / 2))
        await waitFor("a's lease in the record", async () => (await lease()) !== undefined)
        const first = (await lease())!.until
        // Renewed while the request runs: the lease outlives its first term, and `b` is refused all along.
        await waitFor("a renewed lease", async () => ((await lease())?.until ?? 0) > first)
        expect((await patch(b)).status).toBe(423)

        a.process.kill("SIGKILL")
        const killed = performance.now()
        await a.exited
        let takenOver = 0
        await waitFor("b accepting the PATCH", async () => {
          const response = await patch(b)
          if (response.status === 423) return false
          expect(response.status).toBe(204)
          takenOver = performance.now() - killed
          return true
        }, 30_000)
        process.stdout.write(`takeover after SIGKILL: ${(takenOver / 1000).toFixed(2)} s\n`)
        expect(await lease()).toBeUndefined()
        expect(sha256((await download(b.endpoint + id)).body)).toBe(sha256(data))
      } finally {
        await client.quit()
        a.process.kill("SIGKILL")
        b.process.kill("SIGTERM")
        await b.exited
      }
    },
    120_000
  )
})
