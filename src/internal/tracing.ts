/**
 * Spans around every store operation, following OpenTelemetry's database conventions as Effect's SQL client does.
 *
 * Free when no tracer is installed: the fiber's context cache says whether a tracer other than Effect's native one is
 * there (`Tracer.nativeTracer` creates spans nobody reads), and when none is, the operation's effect runs as it is,
 * for the price of one `withFiber`; an operation that never waits (the memory store's) checks in the step that does
 * its work, and costs nothing more, and so does a Redis get, set or delete, which checks in the step that queues its
 * command (`tracedPrimitive`).
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as References from "effect/References"
import * as Tracer from "effect/Tracer"
import type { BaseKvStore, KvStoreError, Operation } from "../BaseKvStore.ts"

/**
 * What a backend tells `make` about itself for its spans (and metrics): OpenTelemetry's database attributes.
 *
 * @since 0.1.0
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

/** Whether an operation run by `fiber` should make a span. */
export const isTracing = (fiber: Fiber.Fiber<unknown, unknown>): boolean => tracing(fiber.cache)

/** The `error.type` of a failure: low-cardinality, never the key. */
const errorType = (error: KvStoreError): string => error._tag === "KvBackendError" ? error.reason : error._tag

/** What a store's operations need to trace themselves: the span of each operation, built once per store. */
export interface Tracing {
  /** `effect` in a client span named for `operation` when a tracer is installed; `effect` itself otherwise. */
  readonly traced: <A, E extends KvStoreError>(
    operation: Operation,
    effect: Effect.Effect<A, E>,
    batch?: ReadonlyArray<unknown>
  ) => Effect.Effect<A, E>
  /**
   * `f()` in the calling fiber's current step, inside a span (call it when `isTracing(fiber)`): for an operation that
   * never waits (the memory store's), whose span can open and close around a synchronous call. It needs no effect of
   * its own, so the untraced operation costs one fiber step, as an untraced store would.
   */
  readonly sync: <A>(fiber: Fiber.Fiber<unknown, unknown>, operation: Operation, f: () => A) => A
}

/** The nearest span that propagates, as Effect picks a parent for its own spans. */
const parentOf = (span: Tracer.AnySpan | undefined): Option.Option<Tracer.AnySpan> => {
  if (span === undefined) return Option.none()
  if (!Context.get(span.annotations, Tracer.DisablePropagation)) return Option.some(span)
  return span._tag === "Span" ? parentOf(Option.getOrUndefined(span.parent)) : Option.none()
}

/**
 * The spans of a store with this telemetry: each named `<operation> <target>` (OpenTelemetry: the target is
 * `db.collection.name`, else `db.namespace`, else `server.address:port`), of kind client, child of the caller's span.
 * Attributes: `db.system.name`, `db.operation.name`, `db.namespace`, `db.collection.name`, `server.address`,
 * `server.port`, `db.operation.batch.size` on batches, `error.type` on failure. Never a key or a value.
 */
export const makeTracing = (telemetry: Telemetry): Tracing => {
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
  const annotated = <A, E extends KvStoreError>(effect: Effect.Effect<A, E>) =>
    Effect.tapError(effect, (error) => Effect.annotateCurrentSpan("error.type", errorType(error)))

  const traced = <A, E extends KvStoreError>(
    operation: Operation,
    effect: Effect.Effect<A, E>,
    batch?: ReadonlyArray<unknown>
  ): Effect.Effect<A, E> =>
    Effect.withFiber((fiber) => {
      if (!tracing(fiber.cache)) return effect
      const { attributes, name } = spanOf(operation)
      return Effect.withSpan(annotated(effect), name, {
        kind: "client",
        // A stack trace per operation costs more than the operation; the span's name says where it comes from.
        captureStackTrace: false,
        attributes: batch === undefined ? attributes : { ...attributes, "db.operation.batch.size": batch.length }
      })
    })

  // What `Effect.withSpan` does when it opens and closes a span, done around a synchronous call; kept to Effect's
  // public references (parent, tracer, clock, timing, sampling by trace level, annotations and links from the context).
  const sync = <A>(fiber: Fiber.Fiber<unknown, unknown>, operation: Operation, f: () => A): A => {
    const { attributes, name } = spanOf(operation)
    const parent = parentOf(fiber.cache.span)
    const clock = fiber.getRef(Clock.Clock)
    const timing = fiber.getRef(References.TracerTimingEnabled)
    const level = fiber.getRef(Tracer.CurrentTraceLevel)
    const span = fiber.cache.tracer!.span({
      name,
      parent,
      annotations: Context.empty(),
      links: fiber.getRef(References.TracerSpanLinks).slice(),
      startTime: timing ? clock.currentTimeNanosUnsafe() : BigInt(0),
      kind: "client",
      root: false,
      sampled: Option.isSome(parent) && parent.value.sampled === false
        ? false
        : !LogLevel.isGreaterThan(fiber.getRef(Tracer.MinimumTraceLevel), level)
    })
    const annotations = fiber.getRef(References.TracerSpanAnnotations)
    for (const key in annotations) span.attribute(key, annotations[key])
    for (const key in attributes) span.attribute(key, attributes[key])
    const end = (exit: Exit.Exit<unknown, unknown>) =>
      span.end(timing ? clock.currentTimeNanosUnsafe() : BigInt(0), exit)
    let value: A
    try {
      value = f()
    } catch (defect) {
      end(Exit.die(defect))
      throw defect
    }
    end(Exit.succeed(value))
    return value
  }

  return { traced, sync }
}

/**
 * `store` with every operation but `listStream`, `watch` and those named in `untraced` (which trace themselves, with
 * `Tracing.sync` or as a `tracedPrimitive`) in its span.
 */
export const traceStore = (
  store: BaseKvStore,
  { traced }: Tracing,
  untraced: ReadonlySet<Operation> = new Set()
): BaseKvStore => {
  const self = <F>(operation: Operation, wrapped: F, own: F): F => untraced.has(operation) ? own : wrapped
  return {
    // Members this module does not know of yet stay as they are.
    ...store,
    get: self("get", (key) => traced("get", store.get(key)), store.get),
    set: self("set", (key, value, options) => traced("set", store.set(key, value, options)), store.set),
    delete: self("delete", (key) => traced("delete", store.delete(key)), store.delete),
    list: (prefix) => traced("list", store.list(prefix)),
    has: self("has", (key) => traced("has", store.has(key)), store.has),
    getMany: (keys) => traced("getMany", store.getMany(keys), Array.isArray(keys) ? keys : undefined),
    setMany: (entries, options) =>
      traced("setMany", store.setMany(entries, options), Array.isArray(entries) ? entries : undefined),
    deleteMany: (keys) => traced("deleteMany", store.deleteMany(keys), Array.isArray(keys) ? keys : undefined),
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
