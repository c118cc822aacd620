/**
 * Owners and hooks, in-process on memory, with the example's rule (`Bearer user:<name>`) as the mounting program's
 * authorization: tus-js-client uploads with its `headers`; the refusals are raw HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Hooks from "../../apps/upload-server/src/Hooks.ts"
import type { Upload } from "../../apps/upload-server/src/Uploads.ts"
import { as, randomData, type RunningServer, sha256, startServer, TUS, upload, userBearer, waitFor } from "./support.ts"

const b64 = (text: string) => Buffer.from(text).toString("base64")

const finished: Array<Upload> = []
let server: RunningServer
beforeAll(async () => {
  server = await startServer({
    authorization: userBearer,
    hooks: Hooks.layer({
      onCreate: (upload) => {
        const name = upload.metadata.get("filename") ?? ""
        if (name.endsWith(".exe")) {
          return Effect.fail(new Hooks.UploadRejected({ status: 403, reason: "no executables" }))
        }
        // The program files every upload under its owner's name.
        return Effect.succeed({ metadata: new Map([...upload.metadata, ["filename", `${upload.owner}-${name}`]]) })
      },
      onFinish: (upload) => Effect.sync(() => finished.push(upload))
    })
  })
})
afterAll(() => server.close())

const create = (owner: string, headers: Record<string, string> = {}) =>
  fetch(server.endpoint, { method: "POST", headers: { ...TUS, ...as(owner), "Upload-Length": "5", ...headers } })

const listing = async (owner: string) => {
  const response = await fetch(`${server.url}/api/uploads?limit=100`, { headers: as(owner) })
  expect(response.status).toBe(200)
  return ((await response.json()) as { uploads: Array<{ id: string; filename: string | null }> }).uploads
}

describe("owners", () => {
  it("an upload by one owner is 404 to another on HEAD, PATCH, GET and DELETE, and stays intact", async () => {
    const data = randomData(300 * 1024)
    const url = await upload(data, {
      endpoint: server.endpoint,
      chunkSize: 100 * 1024,
      headers: as("alice"),
      metadata: { filename: "a.bin" }
    })
    const other = { ...TUS, ...as("bob") }
    expect((await fetch(url, { method: "HEAD", headers: other })).status).toBe(404)
    expect(
      (await fetch(url, {
        method: "PATCH",
        headers: { ...other, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0" },
        body: randomData(10)
      })).status
    ).toBe(404)
    expect((await fetch(url, { headers: other })).status).toBe(404)
    expect((await fetch(url, { method: "DELETE", headers: other })).status).toBe(404)
    const mine = await fetch(url, { headers: as("alice") })
    expect(mine.status).toBe(200)
    expect(sha256(Buffer.from(await mine.arrayBuffer()))).toBe(sha256(data))
  })

  it("refuses a request without credentials with 401 and WWW-Authenticate, before touching anything", async () => {
    for (const headers of [{}, { Authorization: "Bearer nobody" }, { Authorization: "Basic dXNlcjpwdw==" }]) {
      const response = await fetch(server.endpoint, {
        method: "POST",
        headers: { ...TUS, "Upload-Length": "5", ...headers }
      })
      expect(response.status).toBe(401)
      expect(response.headers.get("www-authenticate")).toBe("Bearer")
    }
    expect((await fetch(`${server.url}/api/uploads`)).status).toBe(401)
  })

  it("lists the caller's own uploads only", async () => {
    const carol = await create("carol")
    const dave = await create("dave")
    expect(carol.status).toBe(201)
    const id = (response: Response) => response.headers.get("location")!.split("/").pop()
    const carols = (await listing("carol")).map((upload) => upload.id)
    const daves = (await listing("dave")).map((upload) => upload.id)
    expect(carols).toContain(id(carol))
    expect(carols).not.toContain(id(dave))
    expect(daves).toEqual([id(dave)])
  })

  it("concatenates only the caller's own partial uploads", async () => {
    const partial = async (owner: string, body: string) => {
      const response = await create(owner, { "Upload-Length": String(body.length), "Upload-Concat": "partial" })
      const url = new URL(response.headers.get("location")!, server.endpoint).href
      await fetch(url, {
        method: "PATCH",
        headers: { ...TUS, ...as(owner), "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0" },
        body
      })
      return url
    }
    const mine = await partial("erin", "abc")
    const theirs = await partial("frank", "def")
    const final = (parts: Array<string>) =>
      fetch(server.endpoint, {
        method: "POST",
        headers: { ...TUS, ...as("erin"), "Upload-Concat": `final;${parts.join(" ")}` }
      })
    expect((await final([mine, theirs])).status).toBe(400)
    const own = await final([mine, await partial("erin", "xyz")])
    expect(own.status).toBe(201)
    const url = new URL(own.headers.get("location")!, server.endpoint).href
    expect(await (await fetch(url, { headers: as("erin") })).text()).toBe("abcxyz")
  })
})

describe("hooks", () => {
  it("onCreate refuses an upload with its status, and nothing is created", async () => {
    const before = (await listing("grace")).length
    const response = await create("grace", { "Upload-Metadata": `filename ${b64("setup.exe")}` })
    expect(response.status).toBe(403)
    expect(await response.text()).toContain("no executables")
    expect((await listing("grace")).length).toBe(before)
  })

  it("onCreate sets the metadata and onFinish sees the finished upload once", async () => {
    const url = await upload(randomData(1000), {
      endpoint: server.endpoint,
      chunkSize: 400,
      headers: as("heidi"),
      metadata: { filename: "notes.txt" }
    })
    const id = url.split("/").pop()
    const head = await fetch(url, { method: "HEAD", headers: { ...TUS, ...as("heidi") } })
    expect(head.headers.get("upload-metadata")).toBe(`filename ${b64("heidi-notes.txt")}`)
    await waitFor("onFinish", () => finished.some((upload) => upload.id === id))
    const calls = finished.filter((upload) => upload.id === id)
    expect(calls.length).toBe(1)
    expect(calls[0]).toMatchObject({ owner: "heidi", offset: 1000, length: 1000 })
  })
})
