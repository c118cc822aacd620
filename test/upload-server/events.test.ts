/**
 * `GET /api/uploads/events` over real HTTP: the stream a page reads (created, progress, finished, deleted, expired),
 * each owner seeing only their own uploads, the watch released when the client goes away, a Redis Cluster's uploads on
 * every master, a Redis that refuses `CONFIG` answered with `unavailable`, and two `npm start` instances on one Redis
 * where an upload sent to one moves live in the other's stream.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { BaseKvStoreService, memoryKvStore } from "effect-kv"
import { layerRedis } from "effect-kv/redis"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as path from "node:path"
import { rootNodes, uniqueNamespace, useRedisCluster } from "../support/fixtures.ts"
import { redisCommand, type RedisServer, startRedisServer } from "../support/RedisServer.ts"
import {
  as,
  type ChildServer,
  randomData,
  type RunningServer,
  spawnServer,
  startServer,
  tempDir,
  TUS,
  upload,
  userBearer,
  waitFor
} from "./support.ts"

interface Event {
  readonly event: string
  readonly data: any
}

/** Reads the event stream with `fetch`, as the page does, collecting events until `close` or the stream's end. */
const openEvents = async (url: string, headers: Record<string, string> = {}) => {
  const controller = new AbortController()
  const response = await fetch(`${url}/api/uploads/events`, { headers, signal: controller.signal })
  const events: Array<Event> = []
  let heartbeats = 0
  let ended = false
  const reading = (async () => {
    if (!response.ok || response.body === null) return
    const decoder = new TextDecoder()
    let buffer = ""
    try {
      for await (const chunk of response.body) {
        buffer += decoder.decode(chunk, { stream: true })
        let end: number
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          if (block.startsWith(":")) heartbeats++
          else {
            const event = /^event: (.*)$/m.exec(block)![1]
            events.push({ event, data: JSON.parse(/^data: (.*)$/m.exec(block)![1]) })
          }
        }
      }
    } catch {
      // Aborted by `close`.
    }
    ended = true
  })()
  return {
    response,
    events,
    heartbeats: () => heartbeats,
    ended: () => ended,
    of: (id: string) => events.filter((event) => event.data.id === id),
    close: async () => {
      controller.abort()
      await reading
    }
  }
}

const patch = (url: string, offset: number, body: Uint8Array, headers: Record<string, string> = {}) =>
  fetch(url, {
    method: "PATCH",
    headers: { ...TUS, ...headers, "Content-Type": "application/offset+octet-stream", "Upload-Offset": String(offset) },
    body
  })

const create = async (server: { readonly endpoint: string }, length: number, headers: Record<string, string> = {}) => {
  const response = await fetch(server.endpoint, {
    method: "POST",
    headers: {
      ...TUS,
      ...headers,
      "Upload-Length": String(length),
      "Upload-Metadata": `filename ${Buffer.from("notes.txt").toString("base64")}`
    }
  })
  expect(response.status).toBe(201)
  return response.headers.get("location")!.split("/").pop()!
}

/** The memory store, its watch counted: how many watches are open right now. */
const countingStore = () => {
  let open = 0
  const layer = Layer.effect(
    BaseKvStoreService,
    Effect.map(Effect.service(BaseKvStoreService), (store) => ({
      ...store,
      watch: (prefix: string, options?: Parameters<typeof store.watch>[1]) =>
        Stream.suspend(() => {
          open++
          return Stream.ensuring(store.watch(prefix, options), Effect.sync(() => open--))
        })
    }))
  ).pipe(Layer.provide(memoryKvStore))
  return { layer, open: () => open }
}

describe("the event stream on memory", () => {
  const counted = countingStore()
  let server: RunningServer
  beforeAll(async () => {
    server = await startServer({ store: counted.layer, settings: { expiresAfter: Duration.millis(1500) } })
  })
  afterAll(() => server.close())

  it("answers text/event-stream, opening with reset and the uploads there before it", async () => {
    const before = await create(server, 10)
    const events = await openEvents(server.url)
    expect(events.response.status).toBe(200)
    expect(events.response.headers.get("content-type")).toContain("text/event-stream")
    expect(events.response.headers.get("cache-control")).toBe("no-store")
    await waitFor("the snapshot", () => events.of(before).length > 0)
    expect(events.events[0]).toEqual({ event: "reset", data: {} })
    expect(events.of(before)[0]).toMatchObject({
      event: "upload",
      data: { id: before, offset: 0, length: 10, filename: "notes.txt" }
    })
    await events.close()
  })

  it("streams an upload created, moving forward, finished and deleted", async () => {
    const events = await openEvents(server.url)
    await waitFor("reset", () => events.events.length > 0)
    const id = await create(server, 10)
    await waitFor("created", () => events.of(id).length === 1)
    expect(events.of(id)[0].data).toMatchObject({ offset: 0, length: 10 })
    expect(events.of(id)[0].data.expiresAt).toBeTypeOf("number")

    expect((await patch(server.endpoint + id, 0, randomData(4))).status).toBe(204)
    await waitFor("progress", () => events.of(id).length === 2)
    expect(events.of(id)[1]).toMatchObject({ event: "upload", data: { offset: 4 } })

    expect((await patch(server.endpoint + id, 4, randomData(6))).status).toBe(204)
    await waitFor("finished", () => events.of(id).length === 3)
    expect(events.of(id)[2]).toMatchObject({ event: "upload", data: { offset: 10, length: 10, expiresAt: null } })

    expect((await fetch(server.endpoint + id, { method: "DELETE", headers: TUS })).status).toBe(204)
    await waitFor("deleted", () => events.of(id).length === 4)
    expect(events.of(id)[3]).toEqual({ event: "delete", data: { id, reason: "deleted" } })
    await events.close()
  })

  it("streams an unfinished upload expiring, with nobody reading it", async () => {
    const events = await openEvents(server.url)
    const id = await create(server, 10)
    await waitFor("expired", () => events.of(id).some((event) => event.event === "delete"), 10_000)
    expect(events.of(id).at(-1)).toEqual({ event: "delete", data: { id, reason: "expired" } })
    await events.close()
  })

  it("releases the watch when the client goes away", async () => {
    await waitFor("earlier streams released", () => counted.open() === 0)
    const first = await openEvents(server.url)
    const second = await openEvents(server.url)
    await waitFor("two watches", () => counted.open() === 2)
    await first.close()
    await waitFor("one watch released", () => counted.open() === 1)
    // The other stream goes on.
    const id = await create(server, 3)
    await waitFor("the other stream still live", () => second.of(id).length === 1)
    await second.close()
    await waitFor("both released", () => counted.open() === 0)
  })
})

describe("the event stream when nothing changes", () => {
  let server: RunningServer
  beforeAll(async () => {
    server = await startServer({ heartbeat: Duration.millis(100) })
  })
  afterAll(() => server.close())

  it("sends heartbeat comments, so proxies keep the connection", async () => {
    const events = await openEvents(server.url)
    await waitFor("three heartbeats", () => events.heartbeats() >= 3)
    expect(events.events).toEqual([{ event: "reset", data: {} }])
    await events.close()
  })
})

describe("the event stream with owners", () => {
  let server: RunningServer
  beforeAll(async () => {
    server = await startServer({
      authorization: userBearer,
      settings: { expiresAfter: Duration.millis(1500) }
    })
  })
  afterAll(() => server.close())

  it("refuses a caller without a token, like the listing", async () => {
    const events = await openEvents(server.url)
    expect(events.response.status).toBe(401)
    expect(await events.response.json()).toEqual({ error: "an Authorization: Bearer <token> header is required" })
  })

  it("shows each owner only their own uploads: snapshot, progress, delete and expiry alike", async () => {
    const bobsEarlier = await create(server, 5, as("bob"))
    const alice = await openEvents(server.url, as("alice"))
    const bob = await openEvents(server.url, as("bob"))
    await waitFor("bob's snapshot", () => bob.of(bobsEarlier).length === 1)

    const bobsExpiring = await create(server, 5, as("bob"))
    const bobs = await create(server, 5, as("bob"))
    expect((await patch(server.endpoint + bobs, 0, randomData(5), as("bob"))).status).toBe(204)
    expect((await fetch(server.endpoint + bobsEarlier, { method: "DELETE", headers: { ...TUS, ...as("bob") } })).status)
      .toBe(204)
    const alices = await create(server, 5, as("alice"))
    expect((await patch(server.endpoint + alices, 0, randomData(5), as("alice"))).status).toBe(204)

    await waitFor("alice's upload finished", () => alice.of(alices).length === 2)
    await waitFor("bob's events", () => bob.of(bobs).length === 2 && bob.of(bobsEarlier).length === 2)
    await waitFor("bob's upload expired", () => bob.of(bobsExpiring).some((event) => event.event === "delete"))
    expect(bob.of(bobsExpiring).at(-1)).toEqual({ event: "delete", data: { id: bobsExpiring, reason: "expired" } })
    // Bob's events came on the same store as alice's, the expiry last: had they been sent to alice, she would have them.
    expect(alice.events.map((event) => event.data.id ?? null)).toEqual([null, alices, alices])
    expect(bob.events.some((event) => event.data.id === alices)).toBe(false)
    await alice.close()
    await bob.close()
  })
})

describe("the event stream on a Redis Cluster", () => {
  const cluster = useRedisCluster()
  let server: RunningServer
  beforeAll(async () => {
    server = await startServer({
      store: layerRedis({ cluster: { rootNodes: rootNodes(cluster()) }, keyPrefix: uniqueNamespace() })
    })
  }, 60_000)
  afterAll(() => server?.close())

  it("streams uploads created and deleted, whichever master holds them", async () => {
    const events = await openEvents(server.url)
    // Created until seen: the subscriptions are live once an upload made after them arrives.
    await waitFor("the stream is live", async () => events.of(await create(server, 5)).length > 0)
    const ids = await Promise.all(Array.from({ length: 12 }, () => create(server, 5)))
    await waitFor("every upload created", () => ids.every((id) => events.of(id).length > 0))
    for (const id of ids) {
      expect((await fetch(server.endpoint + id, { method: "DELETE", headers: TUS })).status).toBe(204)
    }
    await waitFor("every upload deleted", () => ids.every((id) => events.of(id).at(-1)?.event === "delete"))
    expect(events.events.some((event) => event.event === "resync" || event.event === "unavailable")).toBe(false)
    await events.close()
  })
})

describe("the event stream on a Redis that refuses CONFIG", () => {
  const redisScope = Scope.makeUnsafe()
  let server: RunningServer
  beforeAll(async () => {
    const redis = await Effect.runPromise(
      Scope.provide(startRedisServer({ args: ["--rename-command", "CONFIG", ""] }), redisScope)
    )
    server = await startServer({ store: layerRedis({ url: redis.url, keyPrefix: uniqueNamespace() }) })
  }, 60_000)
  afterAll(async () => {
    await server?.close()
    await Effect.runPromise(Scope.close(redisScope, Exit.void))
  })

  it("says unavailable, naming the setting, and ends; the listing still answers", async () => {
    const events = await openEvents(server.url)
    expect(events.response.status).toBe(200)
    await waitFor("the stream ends", () => events.ended())
    expect(events.events.map((event) => event.event)).toEqual(["reset", "unavailable"])
    expect(events.events[1].data.error).toMatch(/notify-keyspace-events/)
    await create(server, 5)
    const listing = await fetch(`${server.url}/api/uploads`)
    expect(listing.status).toBe(200)
    expect(((await listing.json()) as { uploads: Array<unknown> }).uploads).toHaveLength(1)
  })
})

describe("stopping the server", () => {
  it("ends the open streams instead of waiting for them", async () => {
    const server = await startServer({ settings: { shutdownTimeout: Duration.minutes(5) } })
    const events = await openEvents(server.url)
    await waitFor("reset", () => events.events.length > 0)
    await server.close()
    await waitFor("the stream ends", () => events.ended())
  }, 30_000)
})

const stopAll = async (servers: ReadonlyArray<ChildServer>) => {
  for (const server of servers) {
    server.process.kill("SIGTERM")
    await server.exited
  }
}

/**
 * Uploads to one `npm start` on `env` while another's event stream is read: it sees every step of the upload, then
 * its end. Each request waits until b's stream shows what the one before it did: without that, an upload that takes
 * less than one poll of a change log (SQLite's) reaches b as its final state only.
 */
const liveAcrossInstances = async (servers: Array<ChildServer>, env: Record<string, string>) => {
  while (servers.length < 2) servers.push(await spawnServer(env))
  const [a, b] = servers
  const events = await openEvents(b.url)
  await waitFor("reset", () => events.events.length > 0)
  const chunkSize = 256 * 1024
  const data = randomData(4 * chunkSize)
  const seen = (id: string, offset: number) =>
    waitFor(`b's stream shows ${offset} bytes`, () => events.of(id).some((event) => event.data.offset === offset))
  const url = await upload(data, {
    endpoint: a.endpoint,
    chunkSize,
    onAfterResponse: async (req, res) => {
      const location = res.getHeader("Location")
      if (location !== undefined && location !== "") return seen(location.split("/").pop()!, 0)
      const offset = res.getHeader("Upload-Offset")
      if (offset !== undefined && offset !== "") await seen(req.getURL().split("/").pop()!, Number(offset))
    }
  })
  const id = url.split("/").pop()!
  const offsets = events.of(id).map((event) => event.data.offset)
  expect(offsets).toEqual([...offsets].sort((x, y) => x - y))
  expect([...new Set(offsets)]).toEqual([0, chunkSize, 2 * chunkSize, 3 * chunkSize, data.length])

  expect((await fetch(a.endpoint + id, { method: "DELETE", headers: TUS })).status).toBe(204)
  await waitFor("deleted on b's stream", () => events.of(id).some((event) => event.event === "delete"))
  expect(events.of(id).at(-1)).toEqual({ event: "delete", data: { id, reason: "deleted" } })
  await events.close()
}

describe("on one Redis server", () => {
  let redis: RedisServer
  const redisScope = Scope.makeUnsafe()
  const servers: Array<ChildServer> = []
  beforeAll(async () => {
    redis = await Effect.runPromise(Scope.provide(startRedisServer(), redisScope))
  }, 60_000)
  afterAll(async () => {
    await stopAll(servers)
    await Effect.runPromise(Scope.close(redisScope, Exit.void))
  })

  const subscribers = async () => {
    const list = await Effect.runPromise(redisCommand(redis.port, "CLIENT", "LIST", "TYPE", "pubsub"))
    return (list ?? "").split("\n").filter((line) => line.trim() !== "").length
  }

  it("a dropped subscriber connection is a resync, and a client going away closes the subscription", async () => {
    const server = await startServer({ store: layerRedis({ url: redis.url, keyPrefix: uniqueNamespace() }) })
    try {
      const events = await openEvents(server.url)
      // Created until seen: the subscription is live once an upload made after it arrives.
      await waitFor("the stream is live", async () => events.of(await create(server, 5)).length > 0)
      expect(await subscribers()).toBe(1)
      expect(await Effect.runPromise(redisCommand(redis.port, "CLIENT", "KILL", "TYPE", "pubsub"))).toBe("1")
      await waitFor("resync", () => events.events.some((event) => event.event === "resync"))
      await events.close()
      await waitFor("no subscriber connection left", async () => (await subscribers()) === 0)
    } finally {
      await server.close()
    }
  })

  it("an upload sent to one instance moves live in the other's stream", async () => {
    const env = { REDIS_URL: redis.url, REDIS_KEY_PREFIX: uniqueNamespace(), DATA_DIR: tempDir() }
    await liveAcrossInstances(servers, env)
  }, 90_000)
})

describe("two npm start instances on one SQLite file", () => {
  const servers: Array<ChildServer> = []
  afterAll(() => stopAll(servers))

  it("an upload sent to one instance moves live in the other's stream", async () => {
    const env = { SQLITE_FILE: path.join(tempDir(), "kv.db"), DATA_DIR: tempDir() }
    // The first instance creates the table; the second starts on it.
    servers.push(await spawnServer(env))
    await liveAcrossInstances(servers, env)
  }, 90_000)
})
