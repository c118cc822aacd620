/**
 * `npm start` on SQLite survives a crash: an upload half sent, the server killed with SIGKILL (no graceful stop, no
 * lock released), the next start on the same `SQLITE_FILE` and `DATA_DIR` knows the acknowledged offset and the
 * upload finishes. The same run on the in-memory store loses the upload, which is what shows the file is what keeps it.
 */
import { afterEach, describe, expect, it } from "@effect/vitest"
import * as path from "node:path"
import { type ChildServer, download, randomData, sha256, spawnServer, tempDir, TUS } from "./support.ts"

const running = new Set<ChildServer>()
const start = async (env: Record<string, string>) => {
  const server = await spawnServer(env)
  running.add(server)
  return server
}
afterEach(async () => {
  for (const server of running) {
    if (server.process.exitCode === null && server.process.signalCode === null) server.process.kill("SIGKILL")
    await server.exited
  }
  running.clear()
})

const patch = (url: string, offset: number, body: Uint8Array) =>
  fetch(url, {
    method: "PATCH",
    headers: { ...TUS, "Content-Type": "application/offset+octet-stream", "Upload-Offset": String(offset) },
    body
  })

/** Creates an upload of `data`, sends its first `part` bytes, then kills the server and starts it again. */
const crashMidUpload = async (env: Record<string, string>, data: Buffer, part: number) => {
  const first = await start(env)
  const created = await fetch(first.endpoint, {
    method: "POST",
    headers: { ...TUS, "Upload-Length": String(data.length) }
  })
  expect(created.status).toBe(201)
  const id = created.headers.get("location")!.split("/").pop()!
  const patched = await patch(first.endpoint + id, 0, data.subarray(0, part))
  expect(patched.status).toBe(204)
  expect(patched.headers.get("upload-offset")).toBe(String(part))

  first.process.kill("SIGKILL")
  expect(await first.exited).toBe("SIGKILL")

  const second = await start(env)
  return { second, url: second.endpoint + id }
}

describe("npm start killed with SIGKILL mid-upload", () => {
  const data = randomData(2 * 1024 * 1024 + 17)
  const part = 768 * 1024

  it("on SQLite, the upload resumes from the acknowledged offset after the restart", async () => {
    const env = { SQLITE_FILE: path.join(tempDir(), "kv.db"), DATA_DIR: tempDir() }
    const { second, url } = await crashMidUpload(env, data, part)
    expect(second.output()).toContain("SQLite (SQLITE_FILE)")

    const head = await fetch(url, { method: "HEAD", headers: TUS })
    expect(head.status).toBe(200)
    const offset = Number(head.headers.get("upload-offset"))
    expect(offset).toBe(part)
    const finished = await patch(url, offset, data.subarray(offset))
    expect(finished.status).toBe(204)
    expect(finished.headers.get("upload-offset")).toBe(String(data.length))
    expect(sha256((await download(url)).body)).toBe(sha256(data))
  })

  it("on the in-memory store, the upload is gone after the restart", async () => {
    const { second, url } = await crashMidUpload({ DATA_DIR: tempDir() }, data, part)
    expect(second.output()).toContain("in-memory")

    const head = await fetch(url, { method: "HEAD", headers: TUS })
    expect(head.status).toBe(404)
  })
})
