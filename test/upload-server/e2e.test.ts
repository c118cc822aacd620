/**
 * The upload server end to end on the in-memory store, with tus-js-client (Node) as the client over real HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import * as tus from "tus-js-client"
import {
  download,
  memoryUrlStorage,
  randomData,
  type RunningServer,
  sha256,
  startServer,
  TUS,
  upload
} from "./support.ts"

let server: RunningServer
beforeAll(async () => {
  server = await startServer()
})
afterAll(() => server.close())

describe("tus-js-client against the server on memory", () => {
  it("uploads 6 MB in 1 MB chunks and serves it back byte for byte, with its name and type", async () => {
    const data = randomData(6 * 1024 * 1024 + 123)
    const chunks: Array<number> = []
    const url = await upload(data, {
      endpoint: server.endpoint,
      chunkSize: 1024 * 1024,
      metadata: { filename: "holiday video.mp4", filetype: "video/mp4" },
      onChunkComplete: (size) => chunks.push(size)
    })
    expect(chunks.length).toBe(7)
    const { body, response } = await download(url)
    expect(response.status).toBe(200)
    expect(response.headers.get("content-type")).toBe("video/mp4")
    expect(response.headers.get("content-disposition")).toContain("holiday video.mp4")
    expect(sha256(body)).toBe(sha256(data))
    expect(sha256(fs.readFileSync(path.join(server.dataDir, url.split("/").pop()!)))).toBe(sha256(data))
  })

  it("uploads with the length deferred and data sent with the creation request", async () => {
    const data = randomData(300_000)
    const url = await upload(data, {
      endpoint: server.endpoint,
      chunkSize: 100_000,
      uploadLengthDeferred: true,
      uploadDataDuringCreation: true
    })
    expect(sha256((await download(url)).body)).toBe(sha256(data))
  })

  it("uploads in parallel parts concatenated into one final upload", async () => {
    const data = randomData(3 * 1024 * 1024 + 7)
    const url = await upload(data, { endpoint: server.endpoint, parallelUploads: 4, chunkSize: 512 * 1024 })
    const head = await fetch(url, { method: "HEAD", headers: TUS })
    expect(head.headers.get("upload-concat")).toMatch(/^final;/)
    expect(sha256((await download(url)).body)).toBe(sha256(data))
  })

  it("uploads with the PATCH method overridden (X-HTTP-Method-Override)", async () => {
    const data = randomData(200_000)
    let overridden = 0
    const url = await upload(data, {
      endpoint: server.endpoint,
      chunkSize: 64 * 1024,
      overridePatchMethod: true,
      onBeforeRequest: (request) => {
        if (request.getMethod() === "POST" && request.getHeader("X-HTTP-Method-Override") === "PATCH") overridden++
      }
    })
    expect(overridden).toBe(4)
    expect(sha256((await download(url)).body)).toBe(sha256(data))
  })

  it("resumes an aborted upload from what reached the disk (findPreviousUploads)", async () => {
    const data = randomData(4 * 1024 * 1024)
    const urlStorage = memoryUrlStorage()
    const common = {
      endpoint: server.endpoint,
      chunkSize: 256 * 1024,
      urlStorage,
      fingerprint: async () => "the-file",
      removeFingerprintOnSuccess: false
    }
    let first: tus.Upload | undefined
    let sent = 0
    const aborted = new Promise<void>((resolve) => {
      first = new tus.Upload(data, {
        ...common,
        onChunkComplete: (_, accepted) => {
          sent = accepted
          if (accepted >= 1024 * 1024) void first!.abort().then(resolve)
        },
        onError: () => undefined
      })
      first.start()
    })
    await aborted
    expect(sent).toBeGreaterThanOrEqual(1024 * 1024)
    const head = await fetch(first!.url!, { method: "HEAD", headers: TUS })
    const offset = Number(head.headers.get("upload-offset"))
    expect(offset).toBeGreaterThanOrEqual(sent)
    expect(offset).toBeLessThan(data.length)

    let resumedFrom = -1
    const url = await new Promise<string>((resolve, reject) => {
      const second = new tus.Upload(data, {
        ...common,
        onProgress: (bytes) => {
          if (resumedFrom < 0) resumedFrom = bytes
        },
        onSuccess: () => resolve(second.url!),
        onError: reject
      })
      void second.findPreviousUploads().then((previous) => {
        expect(previous.length).toBe(1)
        second.resumeFromPreviousUpload(previous[0])
        second.start()
      })
    })
    expect(url).toBe(first!.url)
    expect(resumedFrom).toBeGreaterThanOrEqual(offset)
    expect(sha256((await download(url)).body)).toBe(sha256(data))
  })

  it("terminates an upload: record and bytes gone", async () => {
    const data = randomData(10_000)
    const url = await upload(data, { endpoint: server.endpoint })
    const file = path.join(server.dataDir, url.split("/").pop()!)
    expect(fs.existsSync(file)).toBe(true)
    await tus.Upload.terminate(url, {})
    expect((await fetch(url, { method: "HEAD", headers: TUS })).status).toBe(404)
    expect(fs.existsSync(file)).toBe(false)
  })

  it("serves the page and the tus-js-client browser build without the internet", async () => {
    const page = await fetch(`${server.url}/`)
    expect(page.status).toBe(200)
    const html = await page.text()
    expect(html).toContain(`src="/tus.min.js"`)
    expect(html).not.toMatch(/src="https?:/)
    const client = await fetch(`${server.url}/tus.min.js`)
    expect(client.headers.get("content-type")).toContain("javascript")
    expect(await client.text()).toContain("tus")
  })
})
