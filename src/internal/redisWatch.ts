/**
 * `watch` on Redis: the store's `subscribe` primitive, on keyspace notifications.
 *
 * Why keyspace notifications rather than publishing on every write: the write path stays as it is (no second command
 * per write, no Lua change), writes from any client of the server are seen, not only effect-kv's, and the server
 * itself reports expiries (`expired`) and evictions (`evicted`), which a publisher could not. The price is the
 * server's `notify-keyspace-events` setting: the stream turns it on with `CONFIG SET` (adding only the flags it lacks,
 * `Kg$xe`), and fails with a `KvBackendError` that names the setting where the server refuses (managed services that
 * disable `CONFIG`).
 *
 * A notification carries the event, not the value: for a `set` the value is read with `GET` on the store's own
 * connection. The reads are sent in notification order on one connection and emitted in that order, so one writer's
 * events keep its order, and the value is the one written or a later one. A key deleted before its `GET` answers is
 * skipped: its `del` follows.
 *
 * The subscriber is a duplicate of the store's client, one per watch. When it loses its connection, the client
 * reconnects and subscribes again; the watch then checks the setting again (a restarted server forgot it) and emits
 * `Resync`, since notifications sent meanwhile are lost.
 *
 * On a Cluster each master notifies only of its own keys: `redisClusterWatch.ts` holds a subscriber per master and
 * follows the masters as they change, with the same events built here.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { KvStoreError, WatchEvent, WatchSink } from "../BaseKvStore.ts"
import { backendError } from "./backendError.ts"
import { describeCause } from "./options.ts"
import { closeNodeRedis, type RedisAdapter } from "./redisClients.ts"
import { clusterSubscribe } from "./redisClusterWatch.ts"
import { indexKeyNames } from "./redisIndex.ts"

// The clients are typed loosely on purpose, as in redisClients.ts.
type Loose = any

/** The flags a watch needs: keyspace channel (K), generic (g: del, expired...), strings ($: set), x, e. */
const NEEDED_FLAGS = ["K", "g", "$", "x", "e"] as const

/** The client each adapter wraps, for the subscriber connection a watch duplicates from it. */
const clients = new WeakMap<RedisAdapter, Loose>()

/** Records the client an adapter wraps, so that its store can watch. */
export const rememberClient = (adapter: RedisAdapter, client: unknown): RedisAdapter => {
  clients.set(adapter, client)
  return adapter
}

export const escapeGlob = (literal: string): string => literal.replace(/[*?[\]\\]/g, "\\$&")

export const isIoRedis = (client: Loose): boolean => typeof client.status === "string"

const databaseOf = (client: Loose): number => {
  if (isIoRedis(client)) return Number(client.options?.db ?? 0)
  const database = client.options?.database
  if (database !== undefined) return Number(database)
  const url = client.options?.url
  if (typeof url === "string") {
    const path = new URL(url).pathname.slice(1)
    if (path !== "") return Number(path)
  }
  return 0
}

/** The flags `notify-keyspace-events` lacks for a watch; `A` stands for every event class. */
export const missingFlags = (current: string): string => {
  const has = (flag: string) => current.includes(flag) || (flag !== "K" && flag !== "E" && current.includes("A"))
  return NEEDED_FLAGS.filter((flag) => !has(flag)).join("")
}

/** The reply of `CONFIG GET name`: `[name, value]` in RESP2, `{ name: value }` in RESP3. */
const configValue = (reply: unknown): string =>
  Array.isArray(reply) ? String(reply[1] ?? "") : String(Object.values(reply as object)[0] ?? "")

/** Sends one command on a connection that is not subscribed: the store's own, or a subscriber's before it subscribes. */
export type Call = (args: ReadonlyArray<string>) => Promise<unknown>

/** Turns on the keyspace notifications a watch needs, or fails saying which setting the server refused. */
export const ensureNotifications = (call: Call, prefix: string): Effect.Effect<void, KvStoreError> =>
  Effect.tryPromise({
    try: async () => {
      const current = configValue(await call(["CONFIG", "GET", "notify-keyspace-events"]))
      const missing = missingFlags(current)
      if (missing !== "") await call(["CONFIG", "SET", "notify-keyspace-events", current + missing])
    },
    catch: (cause) =>
      backendError(
        "watch",
        prefix,
        "Failure",
        "watch needs Redis keyspace notifications, and the server refused CONFIG GET/SET notify-keyspace-events " +
          `(${describeCause(cause)}). Set notify-keyspace-events to include "${
            NEEDED_FLAGS.join("")
          }" in redis.conf or your provider's settings, or allow CONFIG for this user.`,
        cause
      )
  })

/**
 * What a watch makes of the notifications of its subscriber connections (one, or one per master of a cluster): its
 * events, in the order the notifications arrive.
 */
export const changeEvents = (adapter: RedisAdapter, keyPrefix: string, database: number, sink: WatchSink) => {
  const channelPrefix = `__keyspace@${database}__:`
  // The ordered index's own keys share the namespace; their changes are the store's bookkeeping, not its keys.
  const ownKeys = new Set(indexKeyNames(keyPrefix))
  let closed = false
  // Each event waits for the one before it, so a slow GET cannot let a later delete overtake its write.
  let tail: Promise<unknown> = Promise.resolve()
  const emit = (event: WatchEvent) => {
    if (!closed) sink.emit(event)
  }
  const onMessage = (channel: string, message: string) => {
    if (!channel.startsWith(channelPrefix)) return
    const full = channel.slice(channelPrefix.length)
    if (!full.startsWith(keyPrefix) || full.length === keyPrefix.length || ownKeys.has(full)) return
    const key = full.slice(keyPrefix.length)
    switch (message) {
      case "set": {
        const value = adapter.get(full).then((value) => value, () => undefined)
        tail = Promise.all([value, tail]).then(([value]) =>
          // A failed read: the connection is in trouble, the value unknown.
          value === undefined
            ? emit({ _tag: "Resync" })
            : value !== null && emit({ _tag: "Set", key, value: String(value) })
        )
        return
      }
      case "del":
      case "evicted":
      case "expired": {
        const event: WatchEvent = message === "expired" ? { _tag: "Expire", key } : { _tag: "Delete", key }
        tail = tail.then(() => emit(event))
        return
      }
    }
  }
  return {
    /** The subscription pattern for the keys under `prefix`. */
    pattern: (prefix: string) => `${channelPrefix}${escapeGlob(keyPrefix + prefix)}*`,
    onMessage,
    /** Runs `effect` after the events received so far, then emits its `Resync`, or fails the watch with its error. */
    resyncAfter: (effect: Effect.Effect<void, KvStoreError>) => {
      tail = tail.then(() =>
        Effect.runPromise(Effect.result(effect)).then((result) =>
          result._tag === "Success" ? emit({ _tag: "Resync" }) : closed || sink.fail(result.failure)
        )
      )
    },
    close: Effect.sync(() => {
      closed = true
    })
  }
}

/**
 * A subscriber connection: pattern messages go to `onMessage`; a lost connection to `onDrop` (before the client
 * tries again), each reconnection (subscribed again) to `onReconnect`.
 */
const subscriber = (
  client: Loose,
  pattern: string,
  onMessage: (channel: string, message: string) => void,
  onDrop: () => void,
  onReconnect: () => void
): Effect.Effect<void, KvStoreError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const sub: Loose = client.duplicate()
        // A lost connection must never crash the process; the client reconnects by itself.
        sub.on("error", () => {})
        let ready = false
        if (isIoRedis(sub)) {
          sub.on("pmessage", (_pattern: string, channel: string, message: string) => onMessage(channel, message))
          if (sub.status === "wait") await sub.connect()
          else if (sub.status !== "ready") await new Promise((resolve) => sub.once("ready", resolve))
          await sub.psubscribe(pattern)
          // ioredis subscribes again on "ready" after a reconnection (autoResubscribe).
          sub.on("ready", () => ready && onReconnect())
        } else {
          await sub.connect()
          await sub.pSubscribe(pattern, (message: string, channel: string) => onMessage(channel, message))
          // node-redis subscribes again before it reports "ready" after a reconnection.
          sub.on("ready", () => ready && onReconnect())
        }
        // Both clients say "reconnecting" before each new attempt, so before anything the new connection receives.
        sub.on("reconnecting", () => ready && onDrop())
        ready = true
        return sub
      },
      catch: (cause) =>
        backendError(
          "watch",
          undefined,
          "Unavailable",
          `cannot open the subscriber connection: ${describeCause(cause)}`
        )
    }),
    (sub) =>
      Effect.promise(async () => {
        if (isIoRedis(sub)) sub.disconnect()
        else await closeNodeRedis(sub, 1000)
      })
  )

/**
 * The `subscribe` primitive of a Redis store over `adapter`, whose keys live under `keyPrefix`; `undefined` when the
 * adapter's client is unknown (a store built otherwise), so that `watch` says it cannot deliver changes.
 */
export const redisSubscribe = (
  adapter: RedisAdapter,
  keyPrefix: string
): ((prefix: string, sink: WatchSink) => Effect.Effect<void, KvStoreError, Scope.Scope>) | undefined => {
  const client = clients.get(adapter)
  if (client === undefined) return undefined
  return (prefix, sink) =>
    Effect.gen(function*() {
      if (adapter.cluster) return yield* clusterSubscribe(client, adapter, keyPrefix, prefix, sink)
      const call: Call = (args) => adapter.call("", args, false)
      yield* ensureNotifications(call, prefix)
      const events = changeEvents(adapter, keyPrefix, databaseOf(client), sink)
      yield* Effect.addFinalizer(() => events.close)
      // After a lost connection, one Resync before anything the new connection delivers: node-redis subscribes again
      // before it says "ready", so a notification can come first. A restarted server forgot the setting: turn it on
      // again first, or end the watch saying why.
      let dropped = false
      const resync = () => {
        if (!dropped) return
        dropped = false
        events.resyncAfter(ensureNotifications(call, prefix))
      }
      const onMessage = (channel: string, message: string) => {
        resync()
        events.onMessage(channel, message)
      }
      yield* subscriber(client, events.pattern(prefix), onMessage, () => dropped = true, resync)
    })
}
