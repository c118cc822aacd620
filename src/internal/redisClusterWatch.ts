/**
 * `watch` on a Redis Cluster: keyspace notifications are local to the node where the key lives, so a watch holds one
 * subscriber connection per master and follows the cluster's masters as they change.
 *
 * Every `TOPOLOGY_INTERVAL` (and at once when a subscriber connection drops) the watch reads `CLUSTER SLOTS` through
 * the store's client, closes the subscribers of nodes that are no longer masters and opens one on each master it does
 * not hold yet: a replica promoted by a failover, a master that came back, a node added by resharding. Each new
 * subscriber first turns on `notify-keyspace-events` on its own node with `CONFIG SET` (a promoted replica never had
 * it: the setting is per node and not replicated), then subscribes, and the watch then emits `Resync`: what that
 * master's keys did before is unknown. A subscriber whose connection drops does not reconnect by itself; it is closed
 * and opened again by the next round, with its `Resync`, as a new master's is.
 *
 * One writer's events keep its order across masters as they do on one server: a write's notification leaves its
 * master before the write's reply does, so it is in flight before the writer's next command is even sent, and all
 * subscribers feed one queue of events in arrival order.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import type { KvStoreError, WatchSink } from "../BaseKvStore.ts"
import { backendError } from "./backendError.ts"
import { describeCause } from "./options.ts"
import { closeNodeRedis, type RedisAdapter } from "./redisClients.ts"
import { type Call, changeEvents, ensureNotifications, isIoRedis } from "./redisWatch.ts"

// The clients are typed loosely on purpose, as in redisClients.ts.
type Loose = any

/**
 * How often a watch reads the cluster's masters when nothing dropped: the bound on how long a master that appears
 * without any connection dropping (a manual failover, a new node) goes unwatched, at one `CLUSTER SLOTS` per watch.
 */
const TOPOLOGY_INTERVAL = Duration.seconds(1)

/** How long opening a subscriber (connect, `CONFIG`, `PSUBSCRIBE`) may take before the round gives up on it. */
const OPEN_TIMEOUT = Duration.seconds(5)

interface Address {
  readonly host: string
  readonly port: number
}

const addressKey = (address: Address) => `${address.host}:${address.port}`

/** The masters in a `CLUSTER SLOTS` reply: `[[from, to, [host, port, id, ...], ...replicas], ...]`. */
const mastersOf = (reply: unknown): Map<string, Address> => {
  const masters = new Map<string, Address>()
  for (const range of reply as ReadonlyArray<ReadonlyArray<unknown>>) {
    const [host, port] = range[2] as ReadonlyArray<unknown>
    const address = { host: String(host), port: Number(port) }
    masters.set(addressKey(address), address)
  }
  return masters
}

/** A new standalone connection to `address`, with the credentials and TLS settings of the cluster's own connections. */
const connectionTo = async (cluster: Loose, address: Address): Promise<Loose> => {
  if (isIoRedis(cluster)) {
    const template: Loose = cluster.nodes("all")[0]
    if (template === undefined) throw new Error("the cluster client knows no node")
    // No reconnection of its own: a dropped subscriber is replaced by the next round, which emits the Resync.
    return template.duplicate({
      host: address.host,
      port: address.port,
      lazyConnect: true,
      readOnly: false,
      retryStrategy: () => null
    })
  }
  const node: Loose = [...cluster.masters, ...cluster.replicas].find((node: Loose) => node.client !== undefined) ??
    cluster.masters[0]
  if (node === undefined) throw new Error("the cluster client knows no node")
  const template: Loose = await cluster.nodeClient(node)
  return template.duplicate({
    clientSideCache: undefined,
    socket: { ...template.options?.socket, host: address.host, port: address.port, reconnectStrategy: false }
  })
}

interface Subscriber {
  /** Closes the connection; its loss is then no longer reported. */
  readonly close: () => Promise<void>
}

/** Connects to `address`, turns notifications on there and subscribes to `pattern`; `onLost` once it drops. */
const openSubscriber = (
  cluster: Loose,
  address: Address,
  pattern: string,
  prefix: string,
  onMessage: (channel: string, message: string) => void,
  onLost: (subscriber: Subscriber) => void
): Effect.Effect<Subscriber, KvStoreError> =>
  Effect.gen(function*() {
    let closing = false
    const sub: Loose = yield* Effect.tryPromise({
      try: () => connectionTo(cluster, address),
      catch: (cause) => unavailable(address, cause)
    })
    const self: Subscriber = {
      close: async () => {
        closing = true
        if (isIoRedis(sub)) sub.disconnect()
        else await closeNodeRedis(sub, 1000)
      }
    }
    const lost = () => {
      if (closing) return
      void self.close()
      onLost(self)
    }
    // A lost connection must never crash the process; the watch replaces it.
    sub.on("error", () => {
      if (!isIoRedis(sub)) lost()
    })
    sub.on("end", lost)
    const call: Call = isIoRedis(sub) ? (args) => sub.call(...args) : (args) => sub.sendCommand(args)
    return yield* Effect.gen(function*() {
      yield* Effect.tryPromise({ try: () => sub.connect(), catch: (cause) => unavailable(address, cause) })
      yield* ensureNotifications(call, prefix)
      yield* Effect.tryPromise({
        try: () =>
          isIoRedis(sub)
            ? (sub.on("pmessage", (_: string, channel: string, message: string) => onMessage(channel, message)),
              sub.psubscribe(pattern))
            : sub.pSubscribe(pattern, (message: string, channel: string) => onMessage(channel, message)),
        catch: (cause) => unavailable(address, cause)
      })
      if (closing) return yield* unavailable(address, "the connection dropped while subscribing")
      return self
    }).pipe(
      Effect.timeoutOrElse({
        duration: OPEN_TIMEOUT,
        orElse: () => Effect.fail(unavailable(address, `no answer within ${Duration.format(OPEN_TIMEOUT)}`))
      }),
      Effect.onError(() => Effect.promise(self.close))
    )
  })

const unavailable = (address: Address, cause: unknown) =>
  backendError(
    "watch",
    undefined,
    "Unavailable",
    `cannot open the subscriber connection to ${addressKey(address)}: ${describeCause(cause)}`,
    cause
  )

/** The `subscribe` of a store on a Redis Cluster; see the module's description. */
export const clusterSubscribe = (
  cluster: Loose,
  adapter: RedisAdapter,
  keyPrefix: string,
  prefix: string,
  sink: WatchSink
): Effect.Effect<void, KvStoreError, Scope.Scope> =>
  Effect.gen(function*() {
    // A Cluster has only database 0.
    const events = changeEvents(adapter, keyPrefix, 0, sink)
    const pattern = events.pattern(prefix)
    const subscribers = new Map<string, Subscriber>()
    // A dropped subscriber wakes the loop at once; "sliding": one pending wake-up is enough.
    const wake = yield* Queue.sliding<void>(1)
    yield* Effect.addFinalizer(() =>
      Effect.andThen(
        events.close,
        Effect.promise(() => Promise.all([...subscribers.values()].map((subscriber) => subscriber.close())))
      )
    )

    const masters = Effect.tryPromise({
      try: () => adapter.call("", ["CLUSTER", "SLOTS"], false),
      catch: (cause) =>
        backendError(
          "watch",
          prefix,
          "Unavailable",
          `cannot read the cluster's masters: ${describeCause(cause)}`,
          cause
        )
    }).pipe(Effect.map(mastersOf))

    /** Brings the subscribers in line with the masters; a later round's new subscribers each mean a `Resync`. */
    const round = (first: boolean): Effect.Effect<void, KvStoreError> =>
      Effect.gen(function*() {
        const current = yield* masters
        for (const [key, subscriber] of subscribers) {
          if (!current.has(key)) {
            subscribers.delete(key)
            yield* Effect.promise(subscriber.close)
          }
        }
        const missing = [...current].filter(([key]) => !subscribers.has(key))
        yield* Effect.forEach(missing, ([key, address]) =>
          Effect.gen(function*() {
            const subscriber = yield* openSubscriber(cluster, address, pattern, prefix, events.onMessage, (lost) => {
              if (subscribers.get(key) === lost) subscribers.delete(key)
              Queue.offerUnsafe(wake, undefined)
            })
            subscribers.set(key, subscriber)
            // After the subscription: a change made from here on is in the events, one made before is not.
            if (!first) events.resyncAfter(Effect.void)
          }).pipe(
            // A master that does not answer is tried again next round (its writes are covered by that Resync); a
            // server refusing CONFIG fails the watch.
            first ? (effect) => effect : Effect.catchIf((error) => error.reason === "Unavailable", () => Effect.void)
          ), { concurrency: "unbounded", discard: true })
      })

    yield* round(true)
    yield* Effect.raceFirst(Effect.sleep(TOPOLOGY_INTERVAL), Queue.take(wake)).pipe(
      Effect.andThen(
        round(false).pipe(
          Effect.catchIf((error) => error.reason === "Unavailable", () => Effect.void),
          Effect.tapError((error) => Effect.sync(() => sink.fail(error)))
        )
      ),
      Effect.forever,
      Effect.ignore,
      Effect.forkScoped
    )
  })
