/**
 * The derived `watch`: what every backend's change stream shares, built once on the backend's `subscribe`.
 *
 * A backend only delivers raw changes with full keys. This module filters them by the watched prefix and strips it,
 * holds them for the consumer in a bounded buffer that turns an overflow into `Resync`, and replays the initial
 * entries after the subscription is live, so nothing is missed between the replay and the live events.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { KvStoreError, WatchEvent, WatchSink } from "../BaseKvStore.ts"

const RESYNC: WatchEvent = { _tag: "Resync" }

/** What the derivation needs of a store's primitives. */
export interface WatchPrimitives {
  readonly subscribe: (prefix: string, sink: WatchSink) => Effect.Effect<void, KvStoreError, Scope.Scope>
  readonly getMany: (keys: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<string | null>, KvStoreError>
  readonly listAfter: (
    prefix: string,
    after: string | null,
    limit: number
  ) => Effect.Effect<ReadonlyArray<string>, KvStoreError>
  /** Keys read per step of the initial replay. */
  readonly pageSize: number
}

/** The event with `prefix` removed from its key, or `undefined` for a key outside it. */
const relative = (event: WatchEvent, prefix: string): WatchEvent | undefined => {
  if (event._tag === "Resync") return event
  if (!event.key.startsWith(prefix)) return undefined
  if (prefix === "") return event
  const key = event.key.slice(prefix.length)
  return event._tag === "Set" ? { _tag: "Set", key, value: event.value } : { _tag: event._tag, key }
}

/**
 * `watch(prefix, initial, bufferSize)` for arguments that passed the input rules.
 *
 * @since 0.1.0
 */
export const deriveWatch = (primitives: WatchPrimitives) => {
  const { getMany, listAfter, pageSize, subscribe } = primitives

  /** The entries under `prefix` as `Set` events in key order, read a page at a time. */
  const replay = (prefix: string): Stream.Stream<WatchEvent, KvStoreError> =>
    Stream.paginate(null as string | null, (after) =>
      Effect.flatMap(listAfter(prefix, after, pageSize), (listed) => {
        const keys = listed.length > pageSize ? listed.slice(0, pageSize) : listed
        return Effect.map(
          keys.length === 0 ? Effect.succeed([]) : getMany(keys.map((key) => prefix + key)),
          (values) => {
            const events: Array<WatchEvent> = []
            // A key deleted between the listing and the read is skipped; its Delete event follows live.
            for (let i = 0; i < keys.length; i++) {
              const value = values[i]
              if (value !== null) events.push({ _tag: "Set", key: keys[i], value })
            }
            return [
              events,
              listed.length > pageSize ? Option.some(keys[keys.length - 1]) : Option.none()
            ] as const
          }
        )
      }))

  return (prefix: string, initial: boolean, bufferSize: number): Stream.Stream<WatchEvent, KvStoreError> =>
    Stream.unwrap(Effect.gen(function*() {
      // "dropping": an offer to a full buffer is refused instead of suspending the writer that caused the event.
      const queue = yield* Queue.make<WatchEvent, KvStoreError | Cause.Done>({
        capacity: bufferSize,
        strategy: "dropping"
      })
      yield* Effect.addFinalizer(() => Queue.shutdown(queue))
      const offer = (event: WatchEvent) => {
        if (Queue.offerUnsafe(queue, event)) return
        // The consumer fell behind by a whole buffer: what it has not taken is dropped, and it is told to re-read.
        // Memory stays at one buffer however far behind it is, and nothing is lost silently.
        Effect.runSync(Queue.clear(queue))
        Queue.offerUnsafe(queue, RESYNC)
      }
      yield* subscribe(prefix, {
        emit: (event) => {
          const seen = relative(event, prefix)
          if (seen !== undefined) offer(seen)
        },
        fail: (error) => {
          Queue.failCauseUnsafe(queue, Cause.fail(error))
        }
      })
      // Subscribed first, read second: a change made while the replay reads waits in the buffer.
      const live = Stream.fromQueue(queue)
      return initial ? Stream.concat(replay(prefix), live) : live
    }))
}
