/**
 * The page at `/` in a real headless Chromium (Debian's `chromium`, driven by playwright-core): a file picked on the
 * page is uploaded with tus-js-client's browser build served by the server, paused and resumed, appears complete in
 * the live list, and downloads intact through the list's link. With bearer JWTs, the page takes a token and sends it
 * with every request, the download included. Two pages: an upload from one moves live on the other through
 * `/api/uploads/events`; a resync reads the uploads again; where the store cannot watch, the page polls the listing.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "@effect/vitest"
import { BaseKvStoreService, KvBackendError, memoryKvStore } from "effect-kv"
import { layerRedis } from "effect-kv/redis"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Jose from "jose"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { type BrowserContext, chromium } from "playwright-core"
import * as Jwt from "../../apps/upload-server/src/Jwt.ts"
import { uniqueNamespace } from "../support/fixtures.ts"
import { redisCommand, type RedisServer, startRedisServer } from "../support/RedisServer.ts"
import { randomData, type RunningServer, sha256, startServer, tempDir } from "./support.ts"

const CHROMIUM = "/usr/bin/chromium"

let server: RunningServer
let browser: BrowserContext
/** Uncaught errors in any page: a script that fails to load or throws is a broken page, whatever the test checked. */
const pageErrors: Array<string> = []
beforeAll(async () => {
  server = await startServer()
  // A fresh profile per run: nothing from an earlier run (storage, cache) can make the test pass.
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "effect-kv-chromium-"))
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    acceptDownloads: true,
    // Without the networking flags Chromium stalls on a closed network, reaching for update and sync servers.
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync"
    ]
  })
  browser.on("page", (page) => page.on("pageerror", (error) => pageErrors.push(`${page.url()}: ${error.message}`)))
}, 60_000)
afterEach(() => {
  expect(pageErrors.splice(0)).toEqual([])
})
afterAll(async () => {
  await browser?.close()
  await server?.close()
})

describe("the upload page in Chromium", () => {
  it("uploads a picked file with pause and resume, lists it complete and downloads it intact", async () => {
    const dir = tempDir()
    const file = path.join(dir, "photo of the team.bin")
    const data = randomData(6 * 1024 * 1024 + 11)
    fs.writeFileSync(file, data)

    const page = await browser.newPage()
    const requests: Array<string> = []
    page.on("request", (request) => requests.push(request.url()))
    // Small chunks, so the upload is still running when the test pauses it.
    await page.goto(`${server.url}/?chunkSize=${128 * 1024}`)
    await page.setInputFiles("#picker", file)

    const row = page.locator(`.file[data-name="photo of the team.bin"]`)
    // Runs in the page (the tests are typed without the DOM library).
    await page.waitForFunction(() => {
      const bar = (globalThis as any).document.querySelector(".file progress")
      return bar !== null && bar.value > 0
    })
    await row.locator("button").click()
    await expect.poll(() => row.getAttribute("data-state")).toBe("paused")
    const pausedAt = await row.locator("progress").evaluate((bar: any) => bar.value as number)
    expect(pausedAt).toBeLessThan(100)
    // The server's listing (what the page shows below) has the upload unfinished.
    const response = await fetch(`${server.url}/api/uploads?limit=100`)
    const { uploads } = await response.json() as { uploads: Array<{ offset: number; length: number }> }
    expect(uploads).toHaveLength(1)
    expect(uploads[0].offset).toBeLessThan(data.length)

    await row.locator("button").click()
    await expect.poll(() => row.getAttribute("data-state"), { timeout: 30_000 }).toBe("done")

    const item = page.locator(`#uploads tr[data-complete="true"]`, { hasText: "photo of the team.bin" })
    await item.waitFor({ timeout: 10_000 })
    const [download] = await Promise.all([page.waitForEvent("download"), item.locator("a").click()])
    expect(download.suggestedFilename()).toBe("photo of the team.bin")
    const saved = await download.path()
    expect(sha256(fs.readFileSync(saved))).toBe(sha256(data))

    expect(requests.every((url) => url.startsWith(server.url))).toBe(true)
    await page.close()
  })
})

describe("the upload page in Chromium with bearer JWTs", () => {
  const SECRET = "a-browser-test-secret-of-32-characters"
  let jwtServer: RunningServer
  beforeAll(async () => {
    jwtServer = await startServer({ authorization: Jwt.layerHs256(Redacted.make(SECRET)) })
  })
  afterAll(() => jwtServer?.close())

  const token = (sub: string) =>
    new Jose.SignJWT({ sub }).setProtectedHeader({ alg: "HS256" }).setExpirationTime("10 minutes").sign(
      new TextEncoder().encode(SECRET)
    )

  it("asks for a token, uploads and lists with it, and downloads through the link", async () => {
    const dir = tempDir()
    const file = path.join(dir, "report.bin")
    const data = randomData(512 * 1024 + 5)
    fs.writeFileSync(file, data)

    const page = await browser.newPage()
    const urls: Array<string> = []
    page.on("request", (request) => urls.push(request.url()))
    await page.goto(`${jwtServer.url}/?chunkSize=${128 * 1024}`)
    await expect.poll(() => page.locator("#auth").isVisible()).toBe(true)
    // Without a token the listing is refused, and the page says so.
    await expect.poll(() => page.locator("#page-info").textContent()).toContain("listing failed")
    const alice = await token("alice")
    await page.fill("#token", alice)
    await page.locator("#token").dispatchEvent("change")
    await page.setInputFiles("#picker", file)
    const row = page.locator(`.file[data-name="report.bin"]`)
    await expect.poll(() => row.getAttribute("data-state"), { timeout: 30_000 }).toBe("done")

    const item = page.locator(`#uploads tr[data-complete="true"]`, { hasText: "report.bin" })
    await item.waitFor({ timeout: 10_000 })
    const [download] = await Promise.all([page.waitForEvent("download"), item.locator("a").click()])
    expect(download.suggestedFilename()).toBe("report.bin")
    expect(sha256(fs.readFileSync(await download.path()))).toBe(sha256(data))

    // The upload is alice's: another owner's listing does not show it.
    const listing = async (sub: string) => {
      const response = await fetch(`${jwtServer.url}/api/uploads?limit=100`, {
        headers: { Authorization: `Bearer ${await token(sub)}` }
      })
      return ((await response.json()) as { uploads: Array<unknown> }).uploads.length
    }
    // The page followed the event stream with the token in its header, never in a URL.
    expect(urls.filter((url) => url.endsWith("/api/uploads/events")).length).toBeGreaterThanOrEqual(2)
    expect(urls.filter((url) => url.includes(alice))).toEqual([])
    expect(await listing("alice")).toBe(1)
    expect(await listing("bob")).toBe(0)
    await page.close()
  })
})

describe("two pages on the upload page in Chromium", () => {
  it("an upload from page A shows up on page B moving live, paused partway, then complete", async () => {
    const dir = tempDir()
    const file = path.join(dir, "shared live.bin")
    const data = randomData(3 * 1024 * 1024 + 7)
    fs.writeFileSync(file, data)

    const b = await browser.newPage()
    const listings: Array<string> = []
    b.on("request", (request) => {
      if (new URL(request.url()).pathname === "/api/uploads") listings.push(request.url())
    })
    await b.goto(server.url)
    await expect.poll(() => b.locator("#page-info").textContent()).toBe("live")
    // Every offset page B shows, recorded in the page as its table changes.
    await b.evaluate(() => {
      const g = globalThis as any
      g.seenOffsets = []
      new g.MutationObserver(() => {
        for (const tr of g.document.querySelectorAll(`#uploads tr`)) {
          if (tr.textContent.includes("shared live.bin")) g.seenOffsets.push(Number(tr.dataset.offset))
        }
      }).observe(g.document.getElementById("uploads"), { childList: true, subtree: true })
    })

    const a = await browser.newPage()
    await a.goto(`${server.url}/?chunkSize=${128 * 1024}`)
    await a.setInputFiles("#picker", file)
    const upload = a.locator(`.file[data-name="shared live.bin"]`)
    await a.waitForFunction(() => {
      const bar = (globalThis as any).document.querySelector(".file progress")
      return bar !== null && bar.value > 0
    })
    await upload.locator("button").click()
    await expect.poll(() => upload.getAttribute("data-state")).toBe("paused")

    // Page B never loaded anything after it opened, yet shows the paused upload at the offset the server holds.
    const onB = b.locator(`#uploads tr`, { hasText: "shared live.bin" })
    const id = await onB.getAttribute("data-id", { timeout: 10_000 })
    const head = await fetch(server.endpoint + id, { method: "HEAD", headers: { "Tus-Resumable": "1.0.0" } })
    const held = head.headers.get("upload-offset")!
    expect(Number(held)).toBeGreaterThan(0)
    expect(Number(held)).toBeLessThan(data.length)
    await expect.poll(() => onB.getAttribute("data-offset")).toBe(held)
    expect(await onB.getAttribute("data-complete")).toBe("false")

    await upload.locator("button").click()
    await expect.poll(() => onB.getAttribute("data-complete"), { timeout: 30_000 }).toBe("true")
    const seen = await b.evaluate(() => (globalThis as any).seenOffsets as Array<number>)
    expect(seen).toEqual([...seen].sort((x, y) => x - y))
    expect(new Set(seen).size).toBeGreaterThanOrEqual(3)
    expect(seen.at(-1)).toBe(data.length)
    // All of it came through the event stream: page B never asked for the listing.
    expect(listings).toEqual([])
    await a.close()
    await b.close()
  })
})

describe("the upload page in Chromium on a store that cannot watch", () => {
  let polled: RunningServer
  beforeAll(async () => {
    // As a store whose watch fails (a Redis that refuses CONFIG): every other operation works.
    const store = Layer.effect(
      BaseKvStoreService,
      Effect.map(Effect.service(BaseKvStoreService), (store) => ({
        ...store,
        watch: (prefix: string) =>
          Stream.fail(
            new KvBackendError({ operation: "watch", reason: "Failure", key: prefix, message: "watch: not here." })
          )
      }))
    ).pipe(Layer.provide(memoryKvStore))
    polled = await startServer({ store })
  })
  afterAll(() => polled?.close())

  it("falls back to polling the listing", async () => {
    const page = await browser.newPage()
    await page.goto(polled.url)
    await expect.poll(() => page.locator("#page-info").textContent()).toBe("page 1 (polling)")
    const created = await fetch(polled.endpoint, {
      method: "POST",
      headers: { "Tus-Resumable": "1.0.0", "Upload-Length": "5" }
    })
    const id = created.headers.get("location")!.split("/").pop()!
    await page.locator(`#uploads tr[data-id="${id}"]`).waitFor({ timeout: 10_000 })
    await page.close()
  })
})

describe("the upload page in Chromium on Redis", () => {
  const redisScope = Scope.makeUnsafe()
  let redis: RedisServer
  let onRedis: RunningServer
  beforeAll(async () => {
    redis = await Effect.runPromise(Scope.provide(startRedisServer(), redisScope))
    onRedis = await startServer({ store: layerRedis({ url: redis.url, keyPrefix: uniqueNamespace() }) })
  }, 60_000)
  afterAll(async () => {
    await onRedis?.close()
    await Effect.runPromise(Scope.close(redisScope, Exit.void))
  })

  it("reads the uploads again after a resync (the store's subscriber connection dropped)", async () => {
    const page = await browser.newPage()
    let streams = 0
    page.on("request", (request) => {
      if (request.url().endsWith("/api/uploads/events")) streams++
    })
    await page.goto(onRedis.url)
    await expect.poll(() => page.locator("#page-info").textContent()).toBe("live")
    const create = async () => {
      const created = await fetch(onRedis.endpoint, {
        method: "POST",
        headers: { "Tus-Resumable": "1.0.0", "Upload-Length": "5" }
      })
      return created.headers.get("location")!.split("/").pop()!
    }
    await page.locator(`#uploads tr[data-id="${await create()}"]`).waitFor({ timeout: 10_000 })
    expect(streams).toBe(1)
    expect(await Effect.runPromise(redisCommand(redis.port, "CLIENT", "KILL", "TYPE", "pubsub"))).toBe("1")
    await expect.poll(() => streams, { timeout: 15_000 }).toBe(2)
    await page.locator(`#uploads tr[data-id="${await create()}"]`).waitFor({ timeout: 10_000 })
    expect(await page.locator("#uploads tr").count()).toBe(2)
    await page.close()
  })
})
