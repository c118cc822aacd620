/**
 * Every protocol rule the server enforces, with raw requests: each malformed request gets the status tus 1.0 names
 * and leaves the upload as it was (offset, bytes on disk).
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as http from "node:http"
import * as path from "node:path"
import { randomData, type RunningServer, startServer, TUS, waitFor } from "./support.ts"

const MAX_SIZE = 1_000_000
let server: RunningServer
beforeAll(async () => {
  server = await startServer({ settings: { maxSize: MAX_SIZE } })
})
afterAll(() => server.close())

const OCTETS = { "Content-Type": "application/offset+octet-stream" }
const b64 = (text: string) => Buffer.from(text).toString("base64")

const create = async (headers: Record<string, string> = { "Upload-Length": "100" }) => {
  const response = await fetch(server.endpoint, { method: "POST", headers: { ...TUS, ...headers } })
  expect(response.status).toBe(201)
  return new URL(response.headers.get("location")!, server.endpoint).href
}

const head = (url: string) => fetch(url, { method: "HEAD", headers: TUS })
const offsetOf = async (url: string) => Number((await head(url)).headers.get("upload-offset"))
const fileOf = (url: string) => path.join(server.dataDir, url.split("/").pop()!)
const patch = (url: string, offset: number, body: Uint8Array, headers: Record<string, string> = {}) =>
  fetch(url, {
    method: "PATCH",
    headers: { ...TUS, ...OCTETS, "Upload-Offset": String(offset), ...headers },
    body
  })

/** The upload is untouched: same offset in the record, same bytes on disk. */
const unchanged = async (url: string, offset: number) => {
  expect(await offsetOf(url)).toBe(offset)
  expect(fs.statSync(fileOf(url)).size).toBe(offset)
}

describe("core protocol", () => {
  it("OPTIONS names the version, extensions, max size and checksum algorithms, without Tus-Resumable", async () => {
    const response = await fetch(server.endpoint, { method: "OPTIONS" })
    expect(response.status).toBe(204)
    expect(response.headers.get("tus-version")).toBe("1.0.0")
    expect(response.headers.get("tus-max-size")).toBe(String(MAX_SIZE))
    expect(response.headers.get("tus-extension")?.split(",")).toEqual(
      expect.arrayContaining([
        "creation",
        "creation-with-upload",
        "creation-defer-length",
        "termination",
        "expiration",
        "checksum",
        "concatenation"
      ])
    )
    expect(response.headers.get("tus-checksum-algorithm")?.split(",")).toEqual(
      expect.arrayContaining(["sha1", "sha256"])
    )
  })

  it("answers a CORS preflight and exposes the tus headers to other origins", async () => {
    const preflight = await fetch(server.endpoint, {
      method: "OPTIONS",
      headers: { Origin: "http://elsewhere.test", "Access-Control-Request-Method": "PATCH" }
    })
    expect(preflight.headers.get("access-control-allow-origin")).toBe("*")
    expect(preflight.headers.get("access-control-allow-methods")).toContain("PATCH")
    expect(preflight.headers.get("access-control-allow-headers")).toContain("Upload-Offset")
    const created = await fetch(server.endpoint, {
      method: "POST",
      headers: { ...TUS, "Upload-Length": "1", Origin: "http://elsewhere.test" }
    })
    expect(created.headers.get("access-control-allow-origin")).toBe("*")
    expect(created.headers.get("access-control-expose-headers")).toContain("Location")
    expect(created.headers.get("access-control-expose-headers")).toContain("Upload-Offset")
  })

  it("refuses a missing or other Tus-Resumable with 412 and the supported version", async () => {
    for (const headers of [{}, { "Tus-Resumable": "0.2.2" }]) {
      const response = await fetch(server.endpoint, { method: "POST", headers: { ...headers, "Upload-Length": "1" } })
      expect(response.status).toBe(412)
      expect(response.headers.get("tus-version")).toBe("1.0.0")
    }
    const url = await create()
    expect((await fetch(url, { method: "HEAD" })).status).toBe(412)
    const refused = await fetch(url, {
      method: "PATCH",
      headers: { ...OCTETS, "Upload-Offset": "0" },
      body: new Uint8Array(10)
    })
    expect(refused.status).toBe(412)
    await unchanged(url, 0)
  })

  it("HEAD gives offset, length, metadata and expiry, and never caches", async () => {
    const url = await create({ "Upload-Length": "100", "Upload-Metadata": `filename ${b64("a.txt")},flag` })
    const response = await head(url)
    expect(response.status).toBe(200)
    expect(response.headers.get("upload-offset")).toBe("0")
    expect(response.headers.get("upload-length")).toBe("100")
    expect(response.headers.get("upload-metadata")).toBe(`filename ${b64("a.txt")},flag`)
    expect(response.headers.get("cache-control")).toBe("no-store")
    const expires = Date.parse(response.headers.get("upload-expires")!)
    expect(expires).toBeGreaterThan(Date.now() + 23 * 3600_000)
  })

  it("answers 404 for unknown and malformed ids", async () => {
    for (const id of ["0123456789abcdef0123456789abcdef", "nope", "..%2F..%2Fetc%2Fpasswd"]) {
      expect((await fetch(server.endpoint + id, { method: "HEAD", headers: TUS })).status).toBe(404)
      expect((await patch(server.endpoint + id, 0, new Uint8Array(1))).status).toBe(404)
      expect((await fetch(server.endpoint + id, { method: "DELETE", headers: TUS })).status).toBe(404)
      expect((await fetch(server.endpoint + id)).status).toBe(404)
    }
  })

  it("PATCH appends at the offset and answers the new offset", async () => {
    const url = await create()
    const first = await patch(url, 0, randomData(40))
    expect(first.status).toBe(204)
    expect(first.headers.get("upload-offset")).toBe("40")
    const second = await patch(url, 40, randomData(60))
    expect(second.headers.get("upload-offset")).toBe("100")
    expect(second.headers.get("upload-expires")).toBeNull()
    await unchanged(url, 100)
  })

  it("refuses a PATCH at another offset with 409 and changes nothing", async () => {
    const url = await create()
    await patch(url, 0, randomData(10))
    for (const offset of [0, 5, 11, 99]) {
      expect((await patch(url, offset, randomData(5))).status).toBe(409)
    }
    await unchanged(url, 10)
  })

  it("refuses a bad Upload-Offset with 400 and a wrong Content-Type with 415", async () => {
    const url = await create()
    for (const offset of ["-1", "abc", "1.5", "", "99999999999999999999"]) {
      expect((await patch(url, 0, randomData(5), { "Upload-Offset": offset })).status).toBe(400)
    }
    const noOffset = await fetch(url, { method: "PATCH", headers: { ...TUS, ...OCTETS }, body: randomData(5) })
    expect(noOffset.status).toBe(400)
    for (const type of ["application/octet-stream", "text/plain"]) {
      expect((await patch(url, 0, randomData(5), { "Content-Type": type })).status).toBe(415)
    }
    await unchanged(url, 0)
  })

  it("keeps the bytes that fit of a body past Upload-Length, then answers 413, declared or chunked", async () => {
    // tus 1.0: the server SHOULD keep the bytes up to Upload-Length. A declared Content-Length does not stop the
    // read: the first bytes are as good as any.
    const url = await create({ "Upload-Length": "100" })
    const first = randomData(90)
    await patch(url, 0, first)
    const over = randomData(11)
    const refused = await patch(url, 90, over)
    expect(refused.status).toBe(413)
    expect(refused.headers.get("upload-offset")).toBe("100")
    expect((await head(url)).headers.get("upload-offset")).toBe("100")
    expect(fs.readFileSync(fileOf(url))).toEqual(Buffer.concat([first, over.subarray(0, 10)]))
    // Without Content-Length the server only learns the size as the bytes arrive: the same rule.
    const chunkedUrl = await create({ "Upload-Length": "10" })
    const parts = [randomData(8), randomData(8)]
    const chunked = await new Promise<number>((resolve, reject) => {
      const request = http.request(chunkedUrl, {
        method: "PATCH",
        headers: { ...TUS, ...OCTETS, "Upload-Offset": "0", "Transfer-Encoding": "chunked" }
      }, (response) => {
        response.resume()
        resolve(response.statusCode!)
      })
      request.on("error", reject)
      request.write(parts[0])
      request.end(parts[1])
    })
    expect(chunked).toBe(413)
    expect((await head(chunkedUrl)).headers.get("upload-offset")).toBe("10")
    expect(fs.readFileSync(fileOf(chunkedUrl))).toEqual(Buffer.concat(parts).subarray(0, 10))
  })

  it("answers Expect: 100-continue, then writes the body by the same rules (the platform's stream path)", async () => {
    // Node's client sends the body only once the server says 100 Continue: a server that never says it stalls here.
    const send = (url: string, offset: number, body: Uint8Array) =>
      new Promise<{ status: number; continued: boolean }>((resolve, reject) => {
        let continued = false
        const request = http.request(url, {
          method: "PATCH",
          headers: {
            ...TUS,
            ...OCTETS,
            "Upload-Offset": String(offset),
            "Content-Length": String(body.length),
            Expect: "100-continue"
          }
        }, (response) => {
          response.resume()
          resolve({ status: response.statusCode!, continued })
        })
        request.on("continue", () => {
          continued = true
          request.end(body)
        })
        request.on("error", reject)
      })
    const url = await create({ "Upload-Length": "100" })
    const first = randomData(90)
    expect(await send(url, 0, first)).toEqual({ status: 204, continued: true })
    const over = randomData(11)
    expect(await send(url, 90, over)).toEqual({ status: 413, continued: true })
    expect((await head(url)).headers.get("upload-offset")).toBe("100")
    expect(fs.readFileSync(fileOf(url))).toEqual(Buffer.concat([first, over.subarray(0, 10)]))
  })

  it("refuses uploads over Tus-Max-Size with 413", async () => {
    const response = await fetch(server.endpoint, {
      method: "POST",
      headers: { ...TUS, "Upload-Length": String(MAX_SIZE + 1) }
    })
    expect(response.status).toBe(413)
    expect(response.headers.get("tus-max-size")).toBe(String(MAX_SIZE))
  })

  it("X-HTTP-Method-Override turns a POST into PATCH, HEAD or DELETE", async () => {
    const url = await create()
    const patched = await fetch(url, {
      method: "POST",
      headers: { ...TUS, ...OCTETS, "Upload-Offset": "0", "X-HTTP-Method-Override": "PATCH" },
      body: randomData(30)
    })
    expect(patched.status).toBe(204)
    const headed = await fetch(url, { method: "POST", headers: { ...TUS, "X-HTTP-Method-Override": "HEAD" } })
    expect(headed.headers.get("upload-offset")).toBe("30")
    const deleted = await fetch(url, { method: "POST", headers: { ...TUS, "X-HTTP-Method-Override": "DELETE" } })
    expect(deleted.status).toBe(204)
    expect((await head(url)).status).toBe(404)
  })

  it("answers 405 for methods the protocol has no use for, with Allow (RFC 9110)", async () => {
    for (const method of ["PUT", "PATCH"]) {
      const response = await fetch(server.endpoint, { method, headers: TUS })
      expect(response.status).toBe(405)
      expect(response.headers.get("allow")).toBe("POST, OPTIONS")
    }
    const url = await create()
    const response = await fetch(url, { method: "PUT", headers: TUS })
    expect(response.status).toBe(405)
    expect(response.headers.get("allow")).toBe("HEAD, PATCH, GET, DELETE, OPTIONS")
  })
})

describe("creation", () => {
  it("refuses a missing, negative, non-numeric or doubled length with 400", async () => {
    for (
      const headers of [
        {},
        { "Upload-Length": "-1" },
        { "Upload-Length": "ten" },
        { "Upload-Length": "1e3" },
        { "Upload-Defer-Length": "2" },
        { "Upload-Length": "10", "Upload-Defer-Length": "1" }
      ]
    ) {
      const response = await fetch(server.endpoint, { method: "POST", headers: { ...TUS, ...headers } })
      expect(response.status, JSON.stringify(headers)).toBe(400)
    }
  })

  it("refuses malformed Upload-Metadata with 400", async () => {
    for (const metadata of ["name !!notbase64", "a b c", `name ${b64("x")},name ${b64("y")}`, " , "]) {
      const response = await fetch(server.endpoint, {
        method: "POST",
        headers: { ...TUS, "Upload-Length": "1", "Upload-Metadata": metadata }
      })
      expect(response.status, metadata).toBe(400)
    }
  })

  it("creates an empty upload that is complete at once", async () => {
    const url = await create({ "Upload-Length": "0" })
    const response = await fetch(url)
    expect(response.status).toBe(200)
    expect((await response.arrayBuffer()).byteLength).toBe(0)
  })

  it("takes data with the creation request (creation-with-upload)", async () => {
    const data = randomData(50)
    const response = await fetch(server.endpoint, {
      method: "POST",
      headers: { ...TUS, ...OCTETS, "Upload-Length": "100" },
      body: data
    })
    expect(response.status).toBe(201)
    expect(response.headers.get("upload-offset")).toBe("50")
    const url = new URL(response.headers.get("location")!, server.endpoint).href
    await unchanged(url, 50)
  })

  it("takes the length late (creation-defer-length) and refuses to change it", async () => {
    const url = await create({ "Upload-Defer-Length": "1" })
    expect((await head(url)).headers.get("upload-defer-length")).toBe("1")
    expect((await patch(url, 0, randomData(10))).status).toBe(204)
    expect((await patch(url, 10, randomData(10), { "Upload-Length": "5" })).status).toBe(400)
    expect((await patch(url, 10, randomData(10), { "Upload-Length": "20" })).status).toBe(204)
    expect((await head(url)).headers.get("upload-length")).toBe("20")
    expect((await patch(url, 20, randomData(1), { "Upload-Length": "30" })).status).toBe(400)
    expect((await fetch(url)).status).toBe(200)
  })
})

describe("checksum", () => {
  const sum = (algorithm: string, data: Uint8Array) => createHash(algorithm).update(data).digest("base64")

  it("accepts a body whose sha1 or sha256 matches", async () => {
    const url = await create()
    const a = randomData(30)
    expect((await patch(url, 0, a, { "Upload-Checksum": `sha1 ${sum("sha1", a)}` })).status).toBe(204)
    const b = randomData(30)
    expect((await patch(url, 30, b, { "Upload-Checksum": `sha256 ${sum("sha256", b)}` })).status).toBe(204)
    await unchanged(url, 60)
  })

  it("refuses a mismatch with 460 and keeps nothing of the body", async () => {
    const url = await create()
    await patch(url, 0, randomData(10))
    const data = randomData(30)
    const response = await patch(url, 10, data, { "Upload-Checksum": `sha256 ${sum("sha256", randomData(30))}` })
    expect(response.status).toBe(460)
    await unchanged(url, 10)
  })

  it("refuses an unsupported algorithm or a malformed header with 400", async () => {
    const url = await create()
    const data = randomData(10)
    for (const header of [`crc32 ${sum("sha1", data)}`, "sha1", "sha1 !!!", `sha1 ${sum("sha1", data)} extra`]) {
      expect((await patch(url, 0, data, { "Upload-Checksum": header })).status, header).toBe(400)
    }
    await unchanged(url, 0)
  })
})

describe("termination, concatenation, download", () => {
  it("DELETE removes record and bytes, and a second DELETE is 404", async () => {
    const url = await create()
    await patch(url, 0, randomData(10))
    expect((await fetch(url, { method: "DELETE", headers: TUS })).status).toBe(204)
    expect((await head(url)).status).toBe(404)
    expect(fs.existsSync(fileOf(url))).toBe(false)
    expect((await fetch(url, { method: "DELETE", headers: TUS })).status).toBe(404)
  })

  it("concatenates finished partial uploads, refuses unfinished, unknown or non-partial parts", async () => {
    const a = await create({ "Upload-Length": "3", "Upload-Concat": "partial" })
    const b = await create({ "Upload-Length": "4", "Upload-Concat": "partial" })
    const plain = await create({ "Upload-Length": "1" })
    await patch(plain, 0, Buffer.from("p"))
    await patch(a, 0, Buffer.from("abc"))
    const final = (parts: Array<string>) =>
      fetch(server.endpoint, { method: "POST", headers: { ...TUS, "Upload-Concat": `final;${parts.join(" ")}` } })
    expect((await final([a, b])).status).toBe(400)
    await patch(b, 0, Buffer.from("defg"))
    expect((await final([a, plain])).status).toBe(400)
    expect((await final([a, server.endpoint + "0123456789abcdef0123456789abcdef"])).status).toBe(400)
    expect((await final([])).status).toBe(400)
    expect((await fetch(server.endpoint, { method: "POST", headers: { ...TUS, "Upload-Concat": "whole" } })).status)
      .toBe(400)
    const created = await final([a, new URL(b).pathname])
    expect(created.status).toBe(201)
    const url = new URL(created.headers.get("location")!, server.endpoint).href
    const described = await head(url)
    expect(described.headers.get("upload-length")).toBe("7")
    // Exactly as received (tus 1.0 says MUST), the absolute URL included.
    expect(described.headers.get("upload-concat")).toBe(`final;${a} ${new URL(b).pathname}`)
    expect(await (await fetch(url)).text()).toBe("abcdefg")
    expect((await patch(url, 7, randomData(1))).status).toBe(403)
  })

  it("GET of an unfinished upload is 404; of a finished one, the bytes with a safe type and nosniff", async () => {
    const url = await create({
      "Upload-Length": "5",
      "Upload-Metadata": `filename ${b64("x.html")},filetype ${b64("text html<script>")}`
    })
    expect((await fetch(url)).status).toBe(404)
    await patch(url, 0, Buffer.from("hello"))
    const response = await fetch(url)
    expect(response.headers.get("content-type")).toBe("application/octet-stream")
    expect(response.headers.get("content-disposition")).toContain("attachment")
    expect(response.headers.get("x-content-type-options")).toBe("nosniff")
    expect(await response.text()).toBe("hello")
  })
})

describe("concurrency and interruption", () => {
  it("of 8 concurrent PATCHes at one offset exactly one applies; the others get 409 or 423", async () => {
    const url = await create({ "Upload-Length": String(8 * 100_000) })
    const bodies = Array.from({ length: 8 }, () => randomData(100_000))
    const statuses = await Promise.all(bodies.map((body) => patch(url, 0, body).then((response) => response.status)))
    expect(statuses.filter((status) => status === 204)).toHaveLength(1)
    expect(statuses.filter((status) => status !== 204).every((status) => status === 409 || status === 423)).toBe(true)
    await unchanged(url, 100_000)
    const winner = bodies[statuses.indexOf(204)]
    expect(fs.readFileSync(fileOf(url)).equals(winner)).toBe(true)
  })

  it("a PATCH whose client goes away mid-body keeps what reached the disk, and the upload resumes there", async () => {
    const url = await create({ "Upload-Length": String(1_000_000) })
    const data = randomData(1_000_000)
    await new Promise<void>((resolve) => {
      const request = http.request(url, {
        method: "PATCH",
        headers: { ...TUS, ...OCTETS, "Upload-Offset": "0", "Content-Length": String(data.length) }
      })
      request.on("error", () => resolve())
      request.write(data.subarray(0, 300_000), () => {
        // The first 300 KB are on their way; the client dies before sending the rest.
        void waitFor("bytes on disk", () => fs.statSync(fileOf(url)).size >= 300_000).then(() => request.destroy())
      })
    })
    await waitFor("the offset committed", async () => (await offsetOf(url)) === 300_000)
    await unchanged(url, 300_000)
    expect((await patch(url, 300_000, data.subarray(300_000))).status).toBe(204)
    expect(Buffer.from(await (await fetch(url)).arrayBuffer()).equals(data)).toBe(true)
  })
})
