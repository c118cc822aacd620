/**
 * Where the bytes of a PATCH are written (`Files.ts`): chunks up to `syncWriteBytes` from the event loop, larger ones
 * (or every one, at `0`, or for a while once the writes there turn slow) in Node's thread pool. Both paths must land
 * every byte at its offset and turn a failed write into a failed request that leaves the offset where it was.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { makeWritePolicy, POOL_FOR_MS, SLOW_WRITE_MS } from "../../apps/upload-server/src/Files.ts"
import { randomData, type RunningServer, sha256, startServer, TUS, upload } from "./support.ts"

const servers: Array<RunningServer> = []
afterAll(() => Promise.all(servers.map((server) => server.close())))

/** The server writing on the loop (default), in the thread pool only (`0`), and both by chunk size (`1000`). */
const SETTINGS = [
  ["on the event loop (the default)", undefined],
  ["in the thread pool (UPLOAD_SYNC_WRITE_BYTES=0)", 0],
  ["on either, by chunk size (UPLOAD_SYNC_WRITE_BYTES=1000)", 1000]
] as const

describe.each(SETTINGS)("the bytes of a PATCH written %s", (_, syncWriteBytes) => {
  const started = startServer(syncWriteBytes === undefined ? {} : { settings: { syncWriteBytes } }).then((server) => {
    servers.push(server)
    return server
  })

  it("land byte for byte at their offsets", async () => {
    const server = await started
    const data = randomData(3 * 1024 * 1024 + 77)
    const url = await upload(data, { endpoint: server.endpoint, chunkSize: 256 * 1024 + 3 })
    expect(sha256(fs.readFileSync(path.join(server.dataDir, url.split("/").pop()!)))).toBe(sha256(data))
  })

  it("a write the disk refuses (ENOSPC) fails the PATCH and leaves the offset where it was", async () => {
    const server = await started
    const created = await fetch(server.endpoint, { method: "POST", headers: { ...TUS, "Upload-Length": "4096" } })
    expect(created.status).toBe(201)
    const id = created.headers.get("location")!.split("/").pop()!
    // The upload's file becomes /dev/full, where every write fails with ENOSPC, as on a full disk.
    const file = path.join(server.dataDir, id)
    fs.rmSync(file)
    fs.symlinkSync("/dev/full", file)
    const patched = await fetch(server.endpoint + id, {
      method: "PATCH",
      headers: { ...TUS, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0" },
      body: randomData(4096)
    })
    expect(patched.status).toBe(500)
    const head = await fetch(server.endpoint + id, { method: "HEAD", headers: TUS })
    expect(head.headers.get("upload-offset")).toBe("0")
  })
})

describe("where a chunk is written", () => {
  const clock = () => {
    let now = 1_000
    return { now: () => now, advance: (ms: number) => now += ms }
  }

  it("on the loop up to the size, in the thread pool past it", () => {
    const time = clock()
    const policy = makeWritePolicy(64 * 1024, time.now)
    expect(policy.onLoop(1)).toBe(true)
    expect(policy.onLoop(64 * 1024)).toBe(true)
    expect(policy.onLoop(64 * 1024 + 1)).toBe(false)
    expect(makeWritePolicy(0, time.now).onLoop(1)).toBe(false)
  })

  it("in the thread pool for a while once the writes on the loop turn slow, then on the loop again", () => {
    const time = clock()
    const policy = makeWritePolicy(64 * 1024, time.now)
    // The odd slow write (the process taken off its CPU mid-write) among fast ones changes nothing.
    for (let i = 0; i < 1000; i++) expect(policy.took(i % 100 === 0 ? 5 : 0.03)).toBe(false)
    expect(policy.onLoop(16 * 1024)).toBe(true)
    // One write that stalls the loop for 16 ms does.
    expect(policy.took(16 * SLOW_WRITE_MS + 1)).toBe(true)
    expect(policy.onLoop(16 * 1024)).toBe(false)
    time.advance(POOL_FOR_MS - 1)
    expect(policy.onLoop(16 * 1024)).toBe(false)
    time.advance(1)
    expect(policy.onLoop(16 * 1024)).toBe(true)
    expect(policy.onLoop(16 * 1024)).toBe(true)
  })

  it("in the thread pool once every write on the loop takes a couple of milliseconds (a network file system)", () => {
    const policy = makeWritePolicy(64 * 1024, clock().now)
    let writes = 0
    while (!policy.took(2 * SLOW_WRITE_MS)) writes++
    // The running average weighs each write 1/16: a few writes, not the first and not hundreds.
    expect(writes).toBeGreaterThan(5)
    expect(writes).toBeLessThan(30)
    expect(policy.onLoop(16 * 1024)).toBe(false)
  })
})
