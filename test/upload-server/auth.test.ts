/**
 * `npm start`'s authentication and `npm run example:mount`, as users run them: child processes configured by the
 * environment, tus-js-client with a bearer token, raw HTTP for the refusals.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Jose from "jose"
import { spawn } from "node:child_process"
import * as path from "node:path"
import { randomData, runServer, sha256, spawnServer, tempDir, TUS, upload, waitFor } from "./support.ts"

const ROOT = path.resolve(import.meta.dirname, "../..")
const SECRET = "a-test-secret-of-at-least-32-characters!"

const sign = (secret: string, claims: { sub?: string; exp?: number }) =>
  new Jose.SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setIssuedAt().sign(new TextEncoder().encode(secret))

describe("npm start with UPLOAD_JWT_SECRET", () => {
  it("takes uploads with a valid token as its sub, and answers 401 to none, forged or expired tokens", async () => {
    const server = await spawnServer({ DATA_DIR: tempDir(), UPLOAD_JWT_SECRET: SECRET })
    try {
      expect(server.output()).toContain("bearer JWT (HS256)")
      const alice = await sign(SECRET, { sub: "alice", exp: Math.floor(Date.now() / 1000) + 600 })
      const data = randomData(200 * 1024)
      const url = await upload(data, {
        endpoint: server.endpoint,
        chunkSize: 64 * 1024,
        headers: { Authorization: `Bearer ${alice}` }
      })
      const mine = await fetch(url, { headers: { Authorization: `Bearer ${alice}` } })
      expect(sha256(Buffer.from(await mine.arrayBuffer()))).toBe(sha256(data))
      const bob = await sign(SECRET, { sub: "bob", exp: Math.floor(Date.now() / 1000) + 600 })
      expect((await fetch(url, { headers: { Authorization: `Bearer ${bob}` } })).status).toBe(404)

      const refused = {
        none: undefined,
        forged: await sign("another-secret-of-at-least-32-characters", { sub: "alice" }),
        expired: await sign(SECRET, { sub: "alice", exp: Math.floor(Date.now() / 1000) - 60 }),
        "no sub": await sign(SECRET, { exp: Math.floor(Date.now() / 1000) + 600 }),
        garbage: "not.a.jwt"
      }
      for (const [what, token] of Object.entries(refused)) {
        const headers: Record<string, string> = { ...TUS, "Upload-Length": "5" }
        if (token !== undefined) headers.Authorization = `Bearer ${token}`
        const response = await fetch(server.endpoint, { method: "POST", headers })
        expect(response.status, what).toBe(401)
        const body = await response.text()
        // The answer says why without repeating the token or the secret.
        if (token !== undefined) expect(body, what).not.toContain(token)
        expect(body, what).not.toContain(SECRET)
      }
      expect(server.output()).not.toContain(SECRET)
    } finally {
      server.process.kill("SIGTERM")
    }
    expect(await server.exited).toBe(0)
  })
})

describe("npm start without authentication", () => {
  it("refuses to listen anonymously on a non-loopback host, naming UPLOAD_ALLOW_ANONYMOUS", async () => {
    const { code, output } = await runServer({ HOST: "0.0.0.0" })
    expect(code).toBe(1)
    expect(output).toContain("UPLOAD_ALLOW_ANONYMOUS=true")
    expect(output).toContain("UPLOAD_JWT_SECRET")
    expect(output).not.toMatch(/listening on/)
  })

  it("listens anonymously on a non-loopback host with UPLOAD_ALLOW_ANONYMOUS=true", async () => {
    const server = await spawnServer({ DATA_DIR: tempDir(), HOST: "0.0.0.0", UPLOAD_ALLOW_ANONYMOUS: "true" })
    try {
      expect(server.output()).toContain("anonymous")
    } finally {
      server.process.kill("SIGTERM")
    }
    expect(await server.exited).toBe(0)
  })

  it("refuses a short secret and both JWT settings at once", async () => {
    for (
      const [env, message] of [
        [{ UPLOAD_JWT_SECRET: "short" }, /at least 32 characters/],
        [{ UPLOAD_JWT_SECRET: SECRET, UPLOAD_JWKS_URL: "https://example.com/jwks.json" }, /not both/]
      ] as const
    ) {
      const { code, output } = await runServer(env)
      expect(code, JSON.stringify(env)).toBe(1)
      expect(output, JSON.stringify(env)).toMatch(message)
      expect(output).not.toContain(SECRET)
    }
  }, 120_000)
})

describe("npm run example:mount", () => {
  it("serves its own /health and the tus routes under /uploads/ with its own rule", async () => {
    // PORT=0, and the port read from the server's log: a port picked free beforehand can be taken meanwhile by a
    // server another test starts (a PostgreSQL one then holds the request unanswered for a minute).
    const child = spawn(process.execPath, ["--import", "tsx", "apps/upload-server/examples/mount.ts"], {
      cwd: ROOT,
      env: { ...process.env, PORT: "0" },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    child.stdout.on("data", (chunk: Buffer) => output += chunk.toString("utf8"))
    child.stderr.on("data", (chunk: Buffer) => output += chunk.toString("utf8"))
    let code: number | string | undefined
    const exited = new Promise((resolve) => child.once("exit", (exit, signal) => resolve(code = exit ?? signal!)))
    try {
      // Starting tsx and compiling the example takes seconds, and tens of them on a loaded machine.
      await waitFor("the example's Listening line", () => {
        if (code !== undefined) throw new Error(`the example exited (${code}) before listening:\n${output}`)
        return /Listening on http:\/\/[^\s:]+:\d+/.test(output)
      }, 90_000)
      const base = /Listening on (http:\/\/[^\s:]+:\d+)/.exec(output)![1]
      expect(await (await fetch(`${base}/health`)).json()).toEqual({ status: "ok" })
      const data = randomData(100 * 1024)
      const url = await upload(data, {
        endpoint: `${base}/uploads/`,
        chunkSize: 32 * 1024,
        headers: { Authorization: "Bearer user:alice" }
      })
      expect(new URL(url).pathname).toMatch(/^\/uploads\/[0-9a-f]{32}$/)
      const mine = await fetch(url, { headers: { Authorization: "Bearer user:alice" } })
      expect(sha256(Buffer.from(await mine.arrayBuffer()))).toBe(sha256(data))
      expect((await fetch(url, { headers: { Authorization: "Bearer user:bob" } })).status).toBe(404)
      expect((await fetch(`${base}/uploads/`, { method: "POST", headers: { ...TUS, "Upload-Length": "1" } })).status)
        .toBe(401)
    } finally {
      child.kill("SIGTERM")
    }
    await exited
  }, 120_000)
})
