/**
 * No orphans: the cleanup removes a record left without its file (once it is older than a creation could take), and
 * an unfinished upload superseded by a newer upload of the same file that has received no bytes for
 * `abandonedAfter`, long before it would expire; uploads in use, not superseded, or without metadata stay.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { BaseKvStoreService, makeMemoryBaseKvStore } from "effect-kv"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { randomUUID } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { ANONYMOUS } from "../../apps/upload-server/src/Authorization.ts"
import type { Upload } from "../../apps/upload-server/src/Uploads.ts"
import { type RunningServer, startServer, TUS, waitFor } from "./support.ts"

const store = makeMemoryBaseKvStore()
let server: RunningServer
beforeAll(async () => {
  server = await startServer({
    store: Layer.succeed(BaseKvStoreService, store),
    settings: { cleanupInterval: Duration.millis(100), abandonedAfter: Duration.seconds(2) }
  })
})
afterAll(() => server.close())

const DAY = 24 * 3600_000
const HOUR = 3600_000

/** Writes a record as the server would have, `lastWriteAgo` ms after its last byte, with `bytes` on disk or none. */
const record = (fields: Partial<Upload> & { readonly lastWriteAgo: number; readonly bytes: number | null }) => {
  const { bytes, lastWriteAgo, ...rest } = fields
  const upload: Upload = {
    id: randomUUID().replaceAll("-", ""),
    owner: ANONYMOUS,
    length: 1000,
    offset: bytes ?? 0,
    metadata: "filename Zm9vLmJpbg==",
    createdAt: Date.now() - lastWriteAgo,
    expiresAt: Date.now() - lastWriteAgo + DAY,
    concat: null,
    parts: null,
    concatHeader: null,
    ...rest
  }
  if (bytes !== null) fs.writeFileSync(path.join(server.dataDir, upload.id), Buffer.alloc(bytes))
  Effect.runSync(store.set(`upload:${upload.id}`, JSON.stringify(upload)))
  return upload.id
}

const status = async (id: string) => (await fetch(server.endpoint + id, { method: "HEAD", headers: TUS })).status
const onDisk = (id: string) => fs.existsSync(path.join(server.dataDir, id))

describe("the cleanup", () => {
  it("removes a record without its file once it is older than a creation takes; a fresh one stays", async () => {
    const orphan = record({ lastWriteAgo: 2 * 60_000, bytes: null })
    const created = await fetch(server.endpoint, { method: "POST", headers: { ...TUS, "Upload-Length": "10" } })
    const fresh = created.headers.get("location")!.split("/").pop()!
    fs.rmSync(path.join(server.dataDir, fresh))
    expect(await status(orphan)).toBe(200)
    await waitFor("the orphan record removed", async () => (await status(orphan)) === 404)
    expect(await status(fresh)).toBe(200)
  })

  it("removes an upload started again as a newer one, idle for abandonedAfter, long before it expires", async () => {
    const metadata = `filename ${Buffer.from(`same-${randomUUID()}.bin`).toString("base64")}`
    const abandoned = record({ metadata, lastWriteAgo: 2 * HOUR, createdAt: Date.now() - 3 * HOUR, bytes: 500 })
    const startedAgain = record({ metadata, lastWriteAgo: 60_000, bytes: 100 })
    // Idle as long, but nothing newer of the same file (another name, another length, another owner, no metadata).
    const alone = record({ lastWriteAgo: 2 * HOUR, metadata: "filename b3RoZXI=", bytes: 10 })
    const otherLength = record({ metadata, length: 999, lastWriteAgo: 2 * HOUR, createdAt: 0, bytes: 10 })
    const otherOwner = record({ metadata, owner: "someone-else", lastWriteAgo: 2 * HOUR, bytes: 10 })
    const noMetadata = [
      record({ metadata: null, lastWriteAgo: 2 * HOUR, createdAt: 0, bytes: 10 }),
      record({ metadata: null, lastWriteAgo: 60_000, bytes: 10 })
    ]
    // Superseded but written to within abandonedAfter: still in use.
    const inUseMetadata = `filename ${Buffer.from(`busy-${randomUUID()}.bin`).toString("base64")}`
    const inUse = record({ metadata: inUseMetadata, lastWriteAgo: 0, createdAt: 0, bytes: 10 })
    record({ metadata: inUseMetadata, lastWriteAgo: 0, bytes: 10 })

    expect(await status(abandoned)).toBe(200)
    await waitFor("the abandoned upload removed", async () => (await status(abandoned)) === 404 && !onDisk(abandoned))
    for (const id of [startedAgain, alone, otherLength, ...noMetadata, inUse]) {
      expect(await status(id), id).toBe(200)
      expect(onDisk(id), id).toBe(true)
    }
    expect(Effect.runSync(store.has(`upload:${otherOwner}`))).toBe(true)
  })
})
