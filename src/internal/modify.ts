/**
 * The derived `modify`, for backends without a native one: read, apply `f`, `compareAndSet`, and start over when
 * another writer changed the key in between.
 *
 * A store's own concurrent updates of one key take turns behind a per-key lock, so only writers in other processes
 * make an attempt lose. A lost attempt is retried on a jittered, growing schedule until the `modifyTimeout` deadline,
 * then fails with a `Conflict` `KvBackendError`.
 *
 * @internal
 */
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Result from "effect/Result"
import * as Schedule from "effect/Schedule"
import * as Semaphore from "effect/Semaphore"
import { type Expiry, KvBackendError, type KvInputError, type KvStoreError, type MakeOptions } from "../BaseKvStore.ts"
import { modifyRetries } from "./metrics.ts"
import { quote } from "./validation.ts"

/**
 * One lock per key: a store's own concurrent updates of one key take turns, so only other processes make it retry.
 * Locks exist only while someone holds or waits for them.
 */
const keyLocks = () => {
  const locks = new Map<string, { readonly semaphore: Semaphore.Semaphore; users: number }>()
  return <A, E>(key: string, effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
    Effect.suspend(() => {
      let lock = locks.get(key)
      if (lock === undefined) {
        lock = { semaphore: Semaphore.makeUnsafe(1), users: 0 }
        locks.set(key, lock)
      }
      const held = lock
      held.users++
      return Effect.ensuring(
        held.semaphore.withPermits(1)(effect),
        Effect.sync(() => {
          if (--held.users === 0) locks.delete(key)
        })
      )
    })
}

/** The longest pause between two attempts: a lost race is usually won on the next try. */
const MAX_RETRY_PAUSE = Duration.millis(50)

/** Why an attempt must start over. */
class Lost extends Data.TaggedError("Lost")<{}> {}

/** What the derived `modify` needs of a store's primitives. */
export interface ModifyPrimitives extends Pick<MakeOptions, "get" | "compareAndSet"> {
  /** How long to keep retrying when other writers win the race. */
  readonly modifyTimeout: Duration.Duration
}

export const deriveModify = ({ compareAndSet, get, modifyTimeout }: ModifyPrimitives) => {
  const withKeyLock = keyLocks()
  // Jittered, growing pauses: two processes that collided once should not collide again in lockstep.
  const retrySchedule = Schedule.exponential("1 millis", 1.5).pipe(
    Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, MAX_RETRY_PAUSE))),
    Schedule.jittered,
    Schedule.upTo({ duration: modifyTimeout })
  )
  return (
    key: string,
    f: (current: string | null) => Result.Result<string | null, KvInputError>,
    expiry: Expiry
  ): Effect.Effect<string | null, KvStoreError> => {
    const attempt = Effect.flatMap(get(key), (current) => {
      const next = f(current)
      if (Result.isFailure(next)) return Effect.fail(next.failure)
      return Effect.flatMap(
        compareAndSet(key, current, next.success, expiry),
        (won): Effect.Effect<string | null, Lost> => won ? Effect.succeed(next.success) : Effect.fail(new Lost())
      )
    })
    // The first attempt runs bare: it usually wins, and the retry machinery is only built when it lost.
    return withKeyLock(
      key,
      Effect.catchTag(attempt, "Lost", () =>
        Effect.andThen(Metric.update(modifyRetries, 1), attempt).pipe(
          Effect.tapErrorTag("Lost", () => Metric.update(modifyRetries, 1)),
          Effect.retry({ while: (error) => error._tag === "Lost", schedule: retrySchedule }),
          Effect.catchTag("Lost", () =>
            Effect.fail(
              new KvBackendError({
                operation: "modify",
                reason: "Conflict",
                key,
                message: `modify${quote(key)}: other writers kept changing the key for ${
                  Duration.format(modifyTimeout)
                }; nothing was written. Retry later, or update this key less often from many places.`
              })
            ))
        ))
    )
  }
}
