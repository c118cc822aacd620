/**
 * Spans of every backend, seen by an in-memory tracer: one client span per operation, a child of the caller's span,
 * with OpenTelemetry's database attributes and never a key or a value.
 */
import { assert, describe, it } from "@effect/vitest"
import {
  type BaseKvStore,
  BaseKvStoreService,
  KvBackendError,
  layerWithPrefix,
  make,
  makeMemoryPrimitives,
  memoryKvStore,
  withPrefix
} from "effect-kv"
import { layerRedis } from "effect-kv/redis"
import { layerPg, layerSql } from "effect-kv/sql"
import { layerSqlite } from "effect-kv/sqlite"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Tracer from "effect/Tracer"
import { rootNodes, uniqueNamespace, useRedisCluster, useRedisServer } from "./support/fixtures.ts"
import { usePostgresServer, useSqliteDir } from "./support/sqlFixtures.ts"
import * as SqliteClient from "./support/SqliteClient.ts"

/** A tracer that keeps every span it creates. */
const recording = () => {
  const spans: Array<Tracer.NativeSpan> = []
  const tracer = Tracer.make({
    span: (options) => {
      const span = new Tracer.NativeSpan(options)
      spans.push(span)
      return span
    }
  })
  return { spans, tracer }
}

const SECRET_KEY = "secret-key:42"
const SECRET_VALUE = "secret-value-17"

interface Expected {
  readonly system: string
  /** The span name's target, when the backend has one. */
  readonly target?: string
  readonly attributes?: Record<string, unknown>
  /** Whether Effect's SQL client spans run beneath ours. */
  readonly sqlChildren?: boolean
}

const traced = (name: string, layer: Layer.Layer<BaseKvStoreService, unknown>, expectedLazy: () => Expected) =>
  it.live(`${name}: one client span per operation, child of the caller's, with database attributes`, () =>
    Effect.gen(function*() {
      const expected = expectedLazy()
      const store = yield* BaseKvStoreService
      const { spans, tracer } = recording()
      // Effect's SQL client spans (beneath ours on layerSql / layerPg) carry db.system.name but no db.operation.name.
      const ours = () =>
        spans.filter((span) =>
          span.attributes.get("db.system.name") === expected.system && span.attributes.has("db.operation.name")
        )
      yield* Effect.gen(function*() {
        yield* store.set(SECRET_KEY, SECRET_VALUE)
        // A write with a ttl takes another path on some backends (Redis: SET PX, not a coalesced MSET).
        yield* store.set("expiring", SECRET_VALUE, { ttl: "1 minute" })
        assert.strictEqual(yield* store.get(SECRET_KEY), SECRET_VALUE)
        yield* store.getMany([SECRET_KEY, "b", "c"])
        yield* store.modify(SECRET_KEY, (v) => v + "!")
        yield* Effect.flip(store.get(""))
        assert.isTrue(yield* store.has(SECRET_KEY))
        yield* store.delete(SECRET_KEY)
      }).pipe(Effect.withSpan("caller"), Effect.withTracer(tracer))

      const caller = spans.find((span) => span.name === "caller")!
      const operations = ours().map((span) => span.attributes.get("db.operation.name"))
      assert.deepStrictEqual(operations, ["set", "set", "get", "getMany", "modify", "get", "has", "delete"])
      for (const span of ours()) {
        const operation = span.attributes.get("db.operation.name") as string
        assert.strictEqual(span.name, expected.target === undefined ? operation : `${operation} ${expected.target}`)
        assert.strictEqual(span.kind, "client")
        assert.strictEqual(Option.getOrUndefined(span.parent), caller, `${operation} is a child of the caller's span`)
        assert.strictEqual(span.status._tag, "Ended")
        for (const [key, value] of Object.entries(expected.attributes ?? {})) {
          assert.strictEqual(span.attributes.get(key), value, `${operation}: ${key}`)
        }
        for (const [key, value] of span.attributes) {
          assert.notInclude(String(value), "secret", `${operation}: attribute ${key} holds no key or value`)
        }
      }
      assert.strictEqual(ours()[3].attributes.get("db.operation.batch.size"), 3, "getMany: the batch size")
      assert.isFalse(ours()[0].attributes.has("db.operation.batch.size"))
      assert.strictEqual(ours()[5].attributes.get("error.type"), "KvInputError", "a refused key: error.type")
      assert.isFalse(ours()[2].attributes.has("error.type"))
      if (expected.sqlChildren) {
        const children = spans.filter((span) => Option.getOrUndefined(span.parent) === ours()[2])
        assert.isAbove(children.length, 0, "Effect's SQL client spans run beneath the get's span")
      }
      assert.isTrue(
        spans.every((span) => span === caller || Option.getOrUndefined(span.parent) !== undefined),
        "no span is a root of its own"
      )
    }).pipe(Effect.provide(Layer.fresh(layer))))

const redis = useRedisServer()
const cluster = useRedisCluster()
const postgres = usePostgresServer()
const sqlite = useSqliteDir()

describe("tracing", () => {
  traced("memory", memoryKvStore, () => ({ system: "memory" }))
  traced(
    "memory, through withPrefix",
    Layer.effect(BaseKvStoreService, Effect.sync(() => withPrefix(make(makeMemoryPrimitives()), "tenant:"))),
    () => ({ system: "memory" })
  )
  for (const client of ["node-redis", "ioredis"] as const) {
    traced(
      `redis standalone (${client})`,
      Layer.suspend(() => layerRedis({ url: redis().url, client, keyPrefix: uniqueNamespace() })),
      () => ({ system: "redis", target: `127.0.0.1:${redis().port}`, attributes: { "server.port": redis().port } })
    )
  }
  traced(
    "redis standalone (node-redis), through withPrefix",
    layerWithPrefix("tenant:").pipe(
      Layer.provide(Layer.suspend(() => layerRedis({ url: redis().url, keyPrefix: uniqueNamespace() })))
    ),
    () => ({ system: "redis", target: `127.0.0.1:${redis().port}`, attributes: { "server.port": redis().port } })
  )
  traced(
    "redis cluster (ioredis)",
    Layer.suspend(() =>
      layerRedis({ cluster: { rootNodes: rootNodes(cluster()) }, client: "ioredis", keyPrefix: uniqueNamespace() })
    ),
    () => ({
      system: "redis",
      target: `127.0.0.1:${cluster().nodes[0].port}`,
      attributes: { "server.address": "127.0.0.1", "server.port": cluster().nodes[0].port }
    })
  )
  traced("sqlite", Layer.suspend(() => layerSqlite({ filename: sqlite.file() })), () => ({
    system: "sqlite",
    target: "effect_kv",
    attributes: { "db.collection.name": "effect_kv" }
  }))
  traced(
    "sql (SQLite through SqlClient)",
    Layer.suspend(() =>
      layerSql({ table: "kv_traced" }).pipe(Layer.provide(SqliteClient.layer({ filename: sqlite.file() })))
    ),
    () => ({ system: "sqlite", target: "kv_traced", sqlChildren: true })
  )
  traced(
    "sql (PostgreSQL)",
    Layer.suspend(() => layerPg({ url: postgres().url, keyPrefix: uniqueNamespace() })),
    () => ({
      system: "postgresql",
      target: "effect_kv",
      attributes: { "db.collection.name": "effect_kv", "server.port": postgres().port },
      sqlChildren: true
    })
  )

  it.live("a backend failure sets error.type to its reason", () =>
    Effect.gen(function*() {
      const { spans, tracer } = recording()
      const store: BaseKvStore = make({
        ...makeMemoryPrimitives(),
        get: (key) =>
          Effect.fail(new KvBackendError({ operation: "get", reason: "Timeout", key, message: "no answer" }))
      })
      yield* Effect.flip(store.get("k")).pipe(Effect.withTracer(tracer))
      assert.strictEqual(spans.length, 1)
      assert.strictEqual(spans[0].attributes.get("error.type"), "Timeout")
      assert.strictEqual(spans[0].status._tag === "Ended" && spans[0].status.exit._tag, "Failure")
    }))

  it.live("no tracer installed, or tracing disabled: no span is made", () =>
    Effect.gen(function*() {
      const store = make(makeMemoryPrimitives())
      // The store's effect runs in the caller's span: had it made one of its own, currentSpan would be that.
      const inside = yield* Effect.flatMap(store.get("k"), () => Effect.currentSpan).pipe(Effect.withSpan("caller"))
      assert.strictEqual(inside.name, "caller")
      const { spans, tracer } = recording()
      yield* store.get("k").pipe(Effect.withTracer(tracer), Effect.withTracerEnabled(false))
      assert.strictEqual(spans.length, 0)
    }))
})
