/**
 * Expiry with a short `UPLOAD_EXPIRES_AFTER`: an unfinished upload left alone loses its record (the store's TTL) and
 * then its bytes (the cleanup fiber); uploads still being written, finished uploads and their files stay.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as fs from "node:fs"
import * as path from "node:path"
import { randomData, type RunningServer, startServer, TUS, waitFor } from "./support.ts"

let server: RunningServer
beforeAll(async () => {
  server = await startServer({ settings: { expiresAfter: Duration.millis(1500) } })
})
afterAll(() => server.close())

const OCTETS = { "Content-Type": "application/offset+octet-stream" }

const create = async (length: number) => {
  const response = await fetch(server.endpoint, {
    method: "POST",
    headers: { ...TUS, "Upload-Length": String(length) }
  })
  return new URL(response.headers.get("location")!, server.endpoint).href
}
const patch = (url: string, offset: number, body: Uint8Array) =>
  fetch(url, { method: "PATCH", headers: { ...TUS, ...OCTETS, "Upload-Offset": String(offset) }, body })
const status = async (url: string) => (await fetch(url, { method: "HEAD", headers: TUS })).status
const fileOf = (url: string) => path.join(server.dataDir, url.split("/").pop()!)

describe("expiry", () => {
  it("Upload-Expires says when an unfinished upload expires, and each write pushes it back", async () => {
    const url = await create(100)
    const first = Date.parse((await fetch(url, { method: "HEAD", headers: TUS })).headers.get("upload-expires")!)
    expect(first).toBeGreaterThan(Date.now() - 1000)
    expect(first).toBeLessThanOrEqual(Date.now() + 1500)
    const checked = Date.now()
    await waitFor("a second passes", () => Date.now() >= checked + 1000)
    const later = Date.parse((await patch(url, 0, randomData(10))).headers.get("upload-expires")!)
    expect(later).toBeGreaterThanOrEqual(first + 1000)
  })

  it("an abandoned upload expires: 404, then its bytes go; live and finished uploads and their files stay", async () => {
    const abandoned = await create(1000)
    await patch(abandoned, 0, randomData(100))
    const finished = await create(10)
    await patch(finished, 0, randomData(10))
    const live = await create(100_000)
    const stray = path.join(server.dataDir, "0123456789abcdef0123456789abcdef")
    fs.writeFileSync(stray, "left by a crash")

    // The live upload gets a write every 300 ms, well inside its 1.5 s expiry.
    const started = Date.now()
    let offset = 0
    let writing = true
    const writer = (async () => {
      while (writing) {
        expect((await patch(live, offset, randomData(100))).status).toBe(204)
        offset += 100
        await new Promise((resolve) => setTimeout(resolve, 300))
      }
    })()

    await waitFor("the abandoned upload's record expires", async () => (await status(abandoned)) === 404, 5000)
    expect((await patch(abandoned, 100, randomData(10))).status).toBe(404)
    await waitFor("its bytes are removed", () => !fs.existsSync(fileOf(abandoned)), 5000)
    await waitFor("the stray file is removed", () => !fs.existsSync(stray), 5000)
    // The live upload must outlive two expiry periods (and several cleanup rounds) to show it is kept.
    // Ten writes at least, however slowly a loaded machine serves them.
    await waitFor("two expiry periods and ten writes", () => Date.now() - started > 3000 && offset >= 1000, 15_000)
    writing = false
    await writer
    expect(await status(live)).toBe(200)
    expect(fs.statSync(fileOf(live)).size).toBe(offset)
    expect(await status(finished)).toBe(200)
    expect(fs.existsSync(fileOf(finished))).toBe(true)
    expect((await fetch(finished)).status).toBe(200)
  })
})
