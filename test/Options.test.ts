/**
 * Bad options fail one way on every backend: `KvInputError` with reason `"InvalidOption"`, operation `"options"` and
 * the option's name as `argument`, with a message that names the option and what it accepts; and a layer fails with
 * it before it opens any connection. Each layer points at a TCP listener that counts the connections it accepts: a
 * bad option must leave it at zero, while the same layer with good options does reach it.
 */
import { assert, describe, it } from "@effect/vitest"
import { type BaseKvStoreService, KvInputError } from "effect-kv"
import { layerRedis, layerRedisConfig } from "effect-kv/redis"
import { layerPg, layerSql, layerSqlConfig } from "effect-kv/sql"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as net from "node:net"
import { redactUrl } from "../src/internal/options.ts"
import { buildStore, eventually, holds } from "./support/fixtures.ts"
import { useSqliteDir } from "./support/sqlFixtures.ts"
import * as SqliteClient from "./support/SqliteClient.ts"

const sqlite = useSqliteDir()

/** A TCP server that accepts connections, counts them and never answers. */
const listener: Effect.Effect<{ readonly port: number; readonly accepted: () => number }, never, Scope.Scope> = Effect
  .acquireRelease(
    Effect.promise(() =>
      new Promise<{ server: net.Server; port: number; accepted: () => number; sockets: Set<net.Socket> }>((resolve) => {
        let accepted = 0
        const sockets = new Set<net.Socket>()
        const server = net.createServer((socket) => {
          accepted++
          sockets.add(socket)
          socket.on("error", () => undefined)
          socket.on("close", () => sockets.delete(socket))
        })
        server.listen(
          0,
          "127.0.0.1",
          () => resolve({ server, port: (server.address() as net.AddressInfo).port, accepted: () => accepted, sockets })
        )
      })
    ),
    ({ server, sockets }) =>
      Effect.promise(() =>
        new Promise<void>((resolve) => {
          for (const socket of sockets) socket.destroy()
          server.close(() => resolve())
        })
      )
  )

const expectOptionError = (error: unknown, backend: string, option: string, mentions: string) => {
  assert.instanceOf(error, KvInputError, `${backend} ${option}: ${String(error)}`)
  const inputError = error as KvInputError
  assert.deepInclude(inputError, { operation: "options", argument: option, reason: "InvalidOption", key: undefined })
  assert.match(inputError.message, new RegExp(`^effect-kv ${backend}: `), "the message names the backend")
  assert.include(inputError.message, option, "the message names the option")
  assert.include(inputError.message, mentions)
}

/** Builds the layer to its failure and checks that nothing connected to the listener meanwhile. */
const failsBeforeConnecting = <E>(
  layer: Layer.Layer<BaseKvStoreService, E>,
  accepted: () => number
): Effect.Effect<E> =>
  Effect.gen(function*() {
    // A layer that builds is a failure of the test: Effect.orDie reports it.
    const error = yield* Effect.orDie(Effect.flip(Effect.scoped(buildStore(layer))))
    assert.strictEqual(accepted(), 0, "no connection was opened")
    return error
  })

/** The same layer with good options does connect: the listener is reachable, so a zero above means something. */
const reaches = <E>(layer: Layer.Layer<BaseKvStoreService, E>, accepted: () => number) =>
  Effect.gen(function*() {
    const building = yield* Effect.forkChild(Effect.scoped(buildStore(layer)))
    yield* eventually("the layer connects to the listener", 10_000, holds(Effect.sync(() => accepted() > 0)))
    yield* Fiber.interrupt(building)
  })

describe("bad options fail with KvInputError before any connection", () => {
  const redisCases: ReadonlyArray<readonly [string, Record<string, unknown>, string]> = [
    ["timeout", { timeout: 0 }, "a duration from 1 ms"],
    ["listTimeout", { listTimeout: 2 ** 31 }, "received 2147483648"],
    ["connectTimeout", { connectTimeout: "2 secs" }, "received \"2 secs\""],
    ["scanCount", { scanCount: -1 }, "a positive integer, received -1"],
    ["keyPrefix", { keyPrefix: "\uDC00" }, "without lone surrogates"],
    ["orderedIndex", { orderedIndex: "yes" }, "true or false, received \"yes\""],
    ["client", { client: "jedis" }, "\"node-redis\" or \"ioredis\""],
    ["clientOptions", { clientOptions: 42 }, "an object"],
    ["username", { username: "other" }, "not both"]
  ]
  for (const client of ["node-redis", "ioredis"] as const) {
    it.live(`redis (${client}): every bad option, and the same layer with good options connects`, () =>
      Effect.gen(function*() {
        const { accepted, port } = yield* listener
        const url = `redis://user:secret@127.0.0.1:${port}`
        for (const [option, bad, mentions] of redisCases) {
          const error = yield* failsBeforeConnecting(layerRedis({ url, client, ...bad }), accepted)
          expectOptionError(error, "redis", option, mentions)
          assert.notInclude((error as KvInputError).message, "secret")
        }
        // A custom Config reaches the same checks.
        const fromConfig = yield* failsBeforeConnecting(
          layerRedisConfig({ url: Config.succeed(url), client: Config.succeed(client), timeout: Config.succeed(-1) }),
          accepted
        )
        expectOptionError(fromConfig, "redis", "timeout", "received -1")
        // Building a layer cannot be interrupted while it connects: keep the wait for the interruption short.
        yield* reaches(layerRedis({ url, client, connectTimeout: "2 seconds" }), accepted)
      }))
  }

  it.live("redis: a URL of another scheme or that does not parse names url, without its password", () =>
    Effect.gen(function*() {
      for (const url of ["http://user:secret@127.0.0.1:1", "redis://user:secret@[::1"]) {
        const error = yield* Effect.flip(Effect.scoped(buildStore(layerRedis({ url }))))
        expectOptionError(error, "redis", "url", "a redis:// or rediss:// URL")
        assert.notInclude((error as KvInputError).message, "secret")
      }
      const error = yield* Effect.flip(
        Effect.scoped(buildStore(layerRedis({ cluster: { rootNodes: ["redis://127.0.0.1:1", "tcp://x"] } })))
      )
      expectOptionError(error, "redis", "cluster.rootNodes[1]", "a redis:// or rediss:// URL")
    }))

  const pgCases: ReadonlyArray<readonly [string, Record<string, unknown>, string]> = [
    ["timeout", { timeout: 0 }, "a duration from 1 ms"],
    ["purgeInterval", { purgeInterval: "soon" }, "received \"soon\""],
    ["table", { table: "a-b" }, "an identifier"],
    ["keyPrefix", { keyPrefix: 7 }, "received 7"],
    ["maxConnections", { maxConnections: 0 }, "a positive integer"]
  ]
  it.live("postgres: every bad option of layerPg and layerSqlConfig, and the same layer with good options connects", () =>
    Effect.gen(function*() {
      const { accepted, port } = yield* listener
      const url = `postgres://user:secret@127.0.0.1:${port}/db`
      for (const [option, bad, mentions] of pgCases) {
        const error = yield* failsBeforeConnecting(layerPg({ url, ...bad }), accepted)
        expectOptionError(error, "sql", option, mentions)
        assert.notInclude((error as KvInputError).message, "secret")
      }
      const fromConfig = yield* failsBeforeConnecting(
        layerSqlConfig({ url: Config.succeed(url), purgeInterval: Config.succeed(0) }),
        accepted
      )
      expectOptionError(fromConfig, "sql", "purgeInterval", "received 0")
      const scheme = yield* Effect.flip(
        Effect.scoped(buildStore(layerPg({ url: `mysql://user:secret@127.0.0.1:${port}/db` })))
      )
      expectOptionError(scheme, "sql", "url", "a postgres:// or postgresql:// URL")
      assert.notInclude((scheme as KvInputError).message, "secret")
      yield* reaches(layerPg({ url }), accepted)
    }))

  it.live("sql over a client of the program's: a bad option fails before any statement", () =>
    Effect.gen(function*() {
      const filename = sqlite.file()
      const error = yield* Effect.flip(
        Effect.scoped(
          buildStore(layerSql({ timeout: "-1 seconds" }).pipe(Layer.provide(SqliteClient.layer({ filename }))))
        )
      )
      expectOptionError(error, "sql", "timeout", "a duration from 1 ms")
    }))
})

describe("redactUrl", () => {
  const cases: ReadonlyArray<readonly [string, string]> = [
    ["redis://user:secret@host:6379/0", "redis://user:***@host:6379/0"],
    ["redis://:secret@host", "redis://:***@host"],
    ["rediss://user:se@cr@et@host", "rediss://user:***@host"],
    ["postgres://user:se/cr:et@host/db", "postgres://user:***@host/db"],
    ["postgres://user:%40secret@host/db", "postgres://user:***@host/db"],
    ["redis://user@host:6379", "redis://user@host:6379"],
    ["redis://host:6379", "redis://host:6379"],
    ["not a url", "not a url"]
  ]
  for (const [url, shown] of cases) {
    it(`${url} is shown as ${shown}`, () => {
      assert.strictEqual(redactUrl(url), shown)
    })
  }

  it("a query holding @ hides more than the password, never less", () => {
    const shown = redactUrl("postgres://user:secret@host:5432/db?application_name=a@b")
    assert.notInclude(shown, "secret")
  })
})
