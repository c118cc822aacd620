/**
 * Spans around every store operation, following OpenTelemetry's database conventions as Effect's SQL client does.
 *
 * Free when no tracer is installed: the fiber's context cache says whether a tracer other than Effect's native one is
 * there (`Tracer.nativeTracer` creates spans nobody reads), and when none is, the operation's effect runs as it is,
 * for the price of one `withFiber`.
 */
import * as Effect from "effect/Effect"
import * as Tracer from "effect/Tracer"
import type { BaseKvStore, KvStoreError, Operation } from "../BaseKvStore.ts"

/**
 * What a backend tells `make` about itself for its spans (and metrics): OpenTelemetry's database attributes.
 *
 * @since 0.2.0
 * @category models
 */
export interface Telemetry {
  /** `db.system.name`: `redis`, `postgresql`, `sqlite`; effect-kv's memory store says `memory`. */
  readonly system: string
  /** `db.namespace`: the Redis database index, the PostgreSQL database, the SQLite file. */
  readonly namespace?: string | undefined
  /** `db.collection.name`: the SQL table. */
  readonly collection?: string | undefined
  /** `server.address` of a networked backend (the first root node of a Redis Cluster). */
  readonly serverAddress?: string | undefined
  /** `server.port` of a networked backend. */
  readonly serverPort?: number | undefined
}

/** Whether spans would reach anyone: a tracer other than the native one is installed, and tracing is enabled. */
const tracing = (cache: { readonly tracer: Tracer.Tracer | undefined; readonly tracerEnabled: boolean }) =>
  cache.tracer !== undefined && cache.tracer !== Tracer.nativeTracer && cache.tracerEnabled

/** The `error.type` of a failure: low-cardinality, never the key. */
const errorType = (error: KvStoreError): string => error._tag === "KvBackendError" ? error.reason : error._tag

/**
 * `store` with every operation but `listStream` in a client span named `<operation> <target>` (OpenTelemetry: the
 * target is `db.collection.name`, else `db.namespace`, else `server.address:port`), child of the caller's span. Attributes: `db.system.name`,
 * `db.operation.name`, `db.namespace`, `db.collection.name`, `server.address`, `server.port`,
 * `db.operation.batch.size` on batches, `error.type` on failure. Never a key or a value.
 */
export const traceStore = (store: BaseKvStore, telemetry: Telemetry): BaseKvStore => {
  const base: Record<string, unknown> = { "db.system.name": telemetry.system }
  if (telemetry.namespace !== undefined) base["db.namespace"] = telemetry.namespace
  if (telemetry.collection !== undefined) base["db.collection.name"] = telemetry.collection
  if (telemetry.serverAddress !== undefined) base["server.address"] = telemetry.serverAddress
  if (telemetry.serverPort !== undefined) base["server.port"] = telemetry.serverPort
  const target = telemetry.collection ?? telemetry.namespace ??
    (telemetry.serverAddress === undefined
      ? undefined
      : telemetry.serverPort === undefined
      ? telemetry.serverAddress
      : `${telemetry.serverAddress}:${telemetry.serverPort}`)

  const spans = new Map<Operation, { readonly name: string; readonly attributes: Record<string, unknown> }>()
  const spanOf = (operation: Operation) => {
    let span = spans.get(operation)
    if (span === undefined) {
      span = {
        name: target === undefined ? operation : `${operation} ${target}`,
        attributes: { ...base, "db.operation.name": operation }
      }
      spans.set(operation, span)
    }
    return span
  }
  const annotated = <A>(effect: Effect.Effect<A, KvStoreError>) =>
    Effect.tapError(effect, (error) => Effect.annotateCurrentSpan("error.type", errorType(error)))

  const traced = <A>(
    operation: Operation,
    effect: Effect.Effect<A, KvStoreError>,
    batch?: unknown
  ): Effect.Effect<A, KvStoreError> =>
    Effect.withFiber((fiber) => {
      if (!tracing(fiber.cache)) return effect
      const { attributes, name } = spanOf(operation)
      return Effect.withSpan(annotated(effect), name, {
        kind: "client",
        // A stack trace per operation costs more than the operation; the span's name says where it comes from.
        captureStackTrace: false,
        attributes: Array.isArray(batch) ? { ...attributes, "db.operation.batch.size": batch.length } : attributes
      })
    })

  return {
    // Members this module does not know of yet stay as they are.
    ...store,
    get: (key) => traced("get", store.get(key)),
    set: (key, value, options) => traced("set", store.set(key, value, options)),
    delete: (key) => traced("delete", store.delete(key)),
    list: (prefix) => traced("list", store.list(prefix)),
    has: (key) => traced("has", store.has(key)),
    getMany: (keys) => traced("getMany", store.getMany(keys), keys),
    setMany: (entries, options) => traced("setMany", store.setMany(entries, options), entries),
    deleteMany: (keys) => traced("deleteMany", store.deleteMany(keys), keys),
    count: (prefix) => traced("count", store.count(prefix)),
    clear: (prefix) => traced("clear", store.clear(prefix)),
    listPage: (prefix, options) => traced("listPage", store.listPage(prefix, options)),
    // A stream's pages are pulled by the consumer; one span around it would measure the consumer, not the store.
    listStream: store.listStream,
    setIfAbsent: (key, value, options) => traced("setIfAbsent", store.setIfAbsent(key, value, options)),
    compareAndSet: (key, expected, next, options) =>
      traced("compareAndSet", store.compareAndSet(key, expected, next, options)),
    modify: (key, f, options) => traced("modify", store.modify(key, f, options)),
    ttl: (key) => traced("ttl", store.ttl(key))
  }
}
