/**
 * Every request is answered, from the first connection on: requests are fired at `npm start` from the moment its
 * process is spawned, and any that connects must get a response (the routes' own, or 503 with `Retry-After` while
 * they are not attached yet; 423 for a HEAD, which tus-js-client retries where a 503 makes it start over), never be
 * held until the client gives up.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as http from "node:http"
import { freePort } from "../support/RedisServer.ts"
import { spawnServer, tempDir, waitFor } from "./support.ts"

/** How long a connected request may go unanswered before it counts as lost: far above any answer on loopback. */
const ANSWER_WITHIN_MS = 5_000

interface Shot {
  readonly method: "OPTIONS" | "HEAD"
  connected: boolean
  status: number | null
  retryAfter: string | undefined
  done: boolean
}

/** An upload that does not exist: 404 once the routes serve. */
const MISSING = "/files/" + "0".repeat(32)

const fire = (port: number, shots: Array<Shot>) => {
  const method = shots.length % 2 === 0 ? "OPTIONS" : "HEAD"
  const shot: Shot = { method, connected: false, status: null, retryAfter: undefined, done: false }
  shots.push(shot)
  const request = http.request({
    host: "127.0.0.1",
    port,
    method,
    path: method === "OPTIONS" ? "/files/" : MISSING,
    headers: { "Tus-Resumable": "1.0.0" },
    agent: false
  })
  request.on("socket", (socket) => socket.on("connect", () => shot.connected = true))
  request.setTimeout(ANSWER_WITHIN_MS, () => request.destroy(new Error("no answer")))
  request.on("response", (response) => {
    shot.status = response.statusCode!
    shot.retryAfter = response.headers["retry-after"]
    response.resume().on("end", () => shot.done = true)
  })
  request.on("error", () => shot.done = true)
  request.end()
}

describe("npm start from its first connection", () => {
  it("answers every request that connects while it starts", async () => {
    const shots: Array<Shot> = []
    for (let start = 0; start < 2; start++) {
      const port = await Effect.runPromise(freePort(false))
      const listening = spawnServer({ PORT: String(port), DATA_DIR: tempDir() })
      // A request every 2 ms from the spawn until well after the start-up line.
      let firing = true
      const timer = setInterval(() => firing && fire(port, shots), 2)
      const server = await listening
      await waitFor(
        "requests answered after start-up",
        () => shots.filter((shot) => shot.status === 204 || shot.status === 404).length >= 50
      )
      firing = false
      clearInterval(timer)
      await waitFor("every request settled", () => shots.every((shot) => shot.done), 2 * ANSWER_WITHIN_MS)
      server.process.kill("SIGTERM")
      await server.exited
    }
    const connected = shots.filter((shot) => shot.connected)
    const unanswered = connected.filter((shot) => shot.status === null)
    expect(connected.length).toBeGreaterThan(0)
    expect(unanswered.length, `${unanswered.length} of ${connected.length} connected requests got no answer`).toBe(0)
    for (const shot of connected) {
      expect(shot.method === "OPTIONS" ? [204, 503] : [404, 423]).toContain(shot.status)
      if (shot.status === 503 || shot.status === 423) expect(shot.retryAfter).toBe("1")
    }
  }, 120_000)
})
