/**
 * `UPLOAD_BYTES_PER_OWNER` in-process on memory, with two owners: creations past an owner's quota are 413 and create
 * nothing, a deferred-length upload is counted as it grows, and terminated or expired uploads give their bytes back.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Authorization from "../../apps/upload-server/src/Authorization.ts"
import { as, randomData, type RunningServer, startServer, TUS, upload, waitFor } from "./support.ts"

const QUOTA = 1000

let server: RunningServer
beforeAll(async () => {
  server = await startServer({
    authorization: Authorization.layerBearer((token) => Effect.succeed(token.slice(5))),
    settings: { bytesPerOwner: QUOTA, expiresAfter: Duration.seconds(2) }
  })
})
afterAll(() => server.close())

const create = (owner: string, headers: Record<string, string>) =>
  fetch(server.endpoint, { method: "POST", headers: { ...TUS, ...as(owner), ...headers } })
const urlOf = (response: Response) => new URL(response.headers.get("location")!, server.endpoint).href
const patch = (owner: string, url: string, offset: number, body: Buffer, headers: Record<string, string> = {}) =>
  fetch(url, {
    method: "PATCH",
    headers: {
      ...TUS,
      ...as(owner),
      "Content-Type": "application/offset+octet-stream",
      "Upload-Offset": String(offset),
      ...headers
    },
    body
  })
const listed = async (owner: string) => {
  const response = await fetch(`${server.url}/api/uploads?limit=100`, { headers: as(owner) })
  return ((await response.json()) as { uploads: Array<unknown> }).uploads.length
}

describe("UPLOAD_BYTES_PER_OWNER", () => {
  it("refuses a creation past the owner's quota with 413 and a clear message, for that owner only", async () => {
    expect((await create("ann", { "Upload-Length": "600" })).status).toBe(201)
    const refused = await create("ann", { "Upload-Length": "401" })
    expect(refused.status).toBe(413)
    expect(await refused.text()).toMatch(/quota of 1000 bytes \(600 in use\)/)
    expect(await listed("ann")).toBe(1)
    // Another owner has a quota of their own.
    expect((await create("ben", { "Upload-Length": "1000" })).status).toBe(201)
    // What fits still fits, to the byte.
    expect((await create("ann", { "Upload-Length": "400" })).status).toBe(201)
    expect((await create("ann", { "Upload-Length": "1" })).status).toBe(413)
  })

  it("counts finished uploads until they are terminated", async () => {
    const url = await upload(randomData(900), { endpoint: server.endpoint, chunkSize: 300, headers: as("cat") })
    expect((await create("cat", { "Upload-Length": "200" })).status).toBe(413)
    expect((await fetch(url, { method: "DELETE", headers: { ...TUS, ...as("cat") } })).status).toBe(204)
    expect((await create("cat", { "Upload-Length": "1000" })).status).toBe(201)
  })

  it("counts a deferred-length upload as it grows and keeps what fits of a body past the quota", async () => {
    expect((await create("dan", { "Upload-Length": "500" })).status).toBe(201)
    const deferred = urlOf(await create("dan", { "Upload-Defer-Length": "1" }))
    expect((await patch("dan", deferred, 0, randomData(300))).status).toBe(204)
    // 800 of 1000 held: a creation of 300 no longer fits, though the deferred upload declared nothing.
    expect((await create("dan", { "Upload-Length": "300" })).status).toBe(413)
    const past = await patch("dan", deferred, 300, randomData(400))
    expect(past.status).toBe(413)
    expect(await past.text()).toMatch(/quota of 1000 bytes; the first 200 bytes were kept/)
    expect(past.headers.get("upload-offset")).toBe("500")
    expect((await patch("dan", deferred, 500, randomData(1))).status).toBe(413)
    // Declaring a length that passes the quota is refused too; one that fits finishes the upload.
    expect((await patch("dan", deferred, 500, Buffer.alloc(0), { "Upload-Length": "501" })).status).toBe(413)
    expect((await patch("dan", deferred, 500, Buffer.alloc(0), { "Upload-Length": "500" })).status).toBe(204)
  })

  it("gives an expired upload's bytes back", async () => {
    expect((await create("eve", { "Upload-Length": "1000" })).status).toBe(201)
    expect((await create("eve", { "Upload-Length": "1" })).status).toBe(413)
    await waitFor("the upload to expire", async () => (await listed("eve")) === 0)
    expect((await create("eve", { "Upload-Length": "1000" })).status).toBe(201)
  })
})
