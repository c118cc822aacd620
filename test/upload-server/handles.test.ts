/**
 * The open files the server keeps between PATCHes belong to the requests that use them: `npm start` is paused
 * (SIGSTOP) mid-PATCH for longer than the idle timeout of its handles, so that on resuming every cached handle looks
 * idle while requests are using them, and every upload must still end byte for byte, with no 5xx on the way.
 */
import { describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as http from "node:http"
import * as path from "node:path"
import { download, randomData, sha256, spawnServer, tempDir, TUS, upload, waitFor } from "./support.ts"

/** Longer than the 2 s after which `Files.ts` closes an idle handle. */
const PAUSE_MS = 3_000

describe("a paused server", () => {
  it("never closes a handle a request holds: every upload's bytes are intact after the pause", async () => {
    const dataDir = tempDir()
    const server = await spawnServer({ DATA_DIR: dataDir })
    try {
      let resumePaused!: () => void
      const paused = new Promise<void>((resolve) => resumePaused = resolve)
      // One PATCH held open halfway through its body across the pause: its handle is held for the whole pause.
      const held = randomData(1024 * 1024)
      const created = await fetch(server.endpoint, {
        method: "POST",
        headers: { ...TUS, "Upload-Length": String(held.length) }
      })
      const heldId = created.headers.get("location")!.split("/").pop()!
      let heldStatus = 0
      const heldDone = new Promise<void>((resolve, reject) => {
        const request = http.request(server.endpoint + heldId, {
          method: "PATCH",
          headers: {
            ...TUS,
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": "0",
            "Content-Length": String(held.length)
          }
        }, (response) => {
          heldStatus = response.statusCode!
          response.resume().on("end", resolve)
        })
        request.on("error", reject)
        request.write(held.subarray(0, held.length / 2))
        paused.then(() => request.end(held.subarray(held.length / 2)))
      })

      // Many uploads in small chunks, so that many handles are cached and many PATCHes are in flight at the pause.
      const datas = Array.from({ length: 12 }, () => randomData(2 * 1024 * 1024))
      const serverErrors: Array<string> = []
      let chunks = 0
      const urls = Promise.all(datas.map((data) =>
        upload(data, {
          endpoint: server.endpoint,
          chunkSize: 64 * 1024,
          onAfterResponse: (request, response) => {
            if (response.getStatus() >= 500) serverErrors.push(`${request.getMethod()} ${response.getStatus()}`)
          },
          onChunkComplete: () => {
            chunks++
          }
        })
      ))

      await waitFor(
        "half of the held PATCH on disk",
        () => fs.statSync(path.join(dataDir, heldId)).size >= held.length / 2
      )
      await waitFor("uploads under way", () => chunks >= datas.length * 3)
      server.process.kill("SIGSTOP")
      await new Promise((resolve) => setTimeout(resolve, PAUSE_MS))
      server.process.kill("SIGCONT")
      resumePaused()

      const finished = await urls
      await heldDone
      expect(serverErrors).toEqual([])
      expect(heldStatus).toBe(204)
      expect(sha256((await download(server.endpoint + heldId)).body)).toBe(sha256(held))
      for (const [i, url] of finished.entries()) {
        expect(sha256((await download(url)).body), `upload ${i}`).toBe(sha256(datas[i]))
      }
      expect(server.output()).not.toMatch(/EBADF|request failed/)
    } finally {
      server.process.kill("SIGCONT")
      server.process.kill("SIGTERM")
      await server.exited
    }
  }, 120_000)
})
