/**
 * `watch` on PostgreSQL: the SQL store's `subscribe` primitive, on a trigger that `NOTIFY`s and a `LISTEN`ing session.
 *
 * A row trigger on the table sends every change as a notification: `s`, `d` or `x` (a set, a delete, an expired row
 * deleted or overwritten) and the key's bytes in hex. It sees every writer of the table, other pools and processes
 * included, and PostgreSQL delivers notifications in commit order, so one writer's events keep its order. The value
 * of a set is read when its notification arrives (one read at a time, in order): it is the value written or a later
 * one, and a key deleted meanwhile is skipped, its delete following.
 *
 * The trigger is installed by the first watch of a table, not with the table: `NOTIFY` takes a database-wide lock at
 * commit, a cost writes should pay only once someone watches. While a watch runs, expired rows are deleted every
 * second, which is how their `Expire` arrives without reads. A lost listening session is listened again, then
 * `Resync`.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { KvStoreError, WatchSink } from "../BaseKvStore.ts"
import { backendError } from "./backendError.ts"
import { describeCause } from "./options.ts"
import { decodeKey, type TableWatchOptions } from "./sqlStore.ts"

// `PgClient` from @effect/sql-pg, an optional peer: typed by the little used here.
interface Listener {
  readonly listen: (
    channel: string
  ) => Effect.Effect<Queue.Dequeue<{ readonly payload: string }, unknown>, unknown, Scope.Scope>
  readonly unsafe: (text: string, params?: ReadonlyArray<unknown>) => Effect.Effect<unknown, unknown>
  readonly withTransaction: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | unknown, R>
}

/** Whether `client` can `LISTEN` (a `PgClient`). */
export const canListen = (client: unknown): client is Listener =>
  typeof (client as { listen?: unknown } | null)?.listen === "function"

/** The notification channel of a table: an identifier PostgreSQL does not truncate (63 bytes at most). */
const channelOf = (table: string) => `${table.slice(0, 57)}_watch`

/** How often a watch deletes expired rows, so that their `Expire` arrives without reads. */
const EXPIRE_INTERVAL = Duration.seconds(1)

const triggerStatements = (table: string): ReadonlyArray<string> => {
  const channel = channelOf(table)
  const now = "CAST(EXTRACT(EPOCH FROM statement_timestamp()) * 1000 AS BIGINT)"
  const expired = (row: string) => `(${row}.expires_at IS NOT NULL AND ${row}.expires_at <= ${now})`
  return [
    // Serialises two processes installing it at once ("tuple concurrently updated" otherwise).
    `SELECT pg_advisory_xact_lock(hashtext('${channel}'))`,
    `CREATE OR REPLACE FUNCTION "${channel}"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    PERFORM pg_notify('${channel}', CASE WHEN ${expired("OLD")} THEN 'x' ELSE 'd' END || encode(OLD.key, 'hex'));
    RETURN OLD;
  END IF;
  IF TG_OP = 'UPDATE' AND ${expired("OLD")} THEN
    PERFORM pg_notify('${channel}', 'x' || encode(OLD.key, 'hex'));
  END IF;
  PERFORM pg_notify('${channel}', 's' || encode(NEW.key, 'hex'));
  RETURN NEW;
END $$`,
    `CREATE OR REPLACE TRIGGER "${channel}" AFTER INSERT OR UPDATE OR DELETE ON "${table}" ` +
    `FOR EACH ROW EXECUTE FUNCTION "${channel}"()`
  ]
}

export interface PgWatchOptions extends TableWatchOptions {
  readonly client: Listener
}

/** The `subscribe` primitive of a PostgreSQL store. */
export const pgSubscribe = (options: PgWatchOptions) => {
  const { client, keyPrefix, purge, read, table } = options
  const channel = channelOf(table)
  const failure = (what: string) => (cause: unknown) =>
    backendError("watch", undefined, "Unavailable", `${what}: ${describeCause(cause)}`, cause)

  const install = Effect.forEach(triggerStatements(table), (text) => client.unsafe(text), { discard: true }).pipe(
    client.withTransaction,
    Effect.mapError((cause) =>
      backendError(
        "watch",
        undefined,
        "Failure",
        `cannot install the change trigger on "${table}" (the role needs TRIGGER on it and CREATE on its schema): ${
          describeCause(cause)
        }`,
        cause
      )
    )
  )

  return (_prefix: string, sink: WatchSink): Effect.Effect<void, KvStoreError, Scope.Scope> =>
    Effect.gen(function*() {
      yield* install
      const handle = (payload: string): Effect.Effect<void> => {
        const op = payload[0]
        const full = decodeKey(Buffer.from(payload.slice(1), "hex"))
        if (!full.startsWith(keyPrefix) || full.length === keyPrefix.length) return Effect.void
        const key = full.slice(keyPrefix.length)
        if (op === "d" || op === "x") {
          return Effect.sync(() => sink.emit({ _tag: op === "d" ? "Delete" : "Expire", key }))
        }
        return read(key).pipe(
          Effect.match({
            // The value cannot be read: the change is known, its value not.
            onFailure: () => sink.emit({ _tag: "Resync" }),
            onSuccess: (value) => {
              if (value !== null) sink.emit({ _tag: "Set", key, value })
            }
          })
        )
      }
      const drain = (queue: Queue.Dequeue<{ readonly payload: string }, unknown>) =>
        Stream.runForEach(Stream.fromQueue(queue), (notification) => handle(notification.payload))
      // Listening before returning: the subscription is live once LISTEN is confirmed.
      const first = yield* Effect.mapError(client.listen(channel), failure("cannot LISTEN"))
      const again = Effect.scoped(
        Effect.gen(function*() {
          const queue = yield* client.listen(channel)
          sink.emit({ _tag: "Resync" })
          yield* drain(queue)
        })
      )
      yield* drain(first).pipe(
        Effect.ignore,
        Effect.andThen(Effect.retry(Effect.andThen(again, Effect.fail("ended")), Schedule.spaced("500 millis"))),
        Effect.ignore,
        Effect.forkScoped
      )
      yield* purge.pipe(Effect.ignore, Effect.repeat(Schedule.spaced(EXPIRE_INTERVAL)), Effect.forkScoped)
    })
}
