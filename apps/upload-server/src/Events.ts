/**
 * `GET /api/uploads/events`: the caller's uploads as a `text/event-stream` that moves as they do, from
 * `watch("upload:")` on the store, so the page shows uploads from other browsers and other instances live.
 *
 * The stream opens with `reset` (forget what you show), then one `upload` event per upload the caller owns (the
 * store's initial replay), then live events:
 * - `upload` — `{ id, length, offset, expiresAt, filename, concat }`: created, moved forward, finished;
 * - `delete` — `{ id, reason: "deleted" | "expired" }`: terminated, or expired by the store;
 * - `resync` — the store may have missed changes (a reconnect, a consumer behind its buffer): reconnect to read the
 *   uploads again;
 * - `unavailable` — `{ error }`: the store cannot watch or the watch failed; the stream ends
 *   and the page falls back to polling `GET /api/uploads`.
 *
 * A comment line (`: heartbeat`) every `heartbeat` keeps proxies from closing an idle stream. The stream ends when
 * the client goes away (Node interrupts the request's fiber, which releases the watch) or the server stops.
 *
 * The caller is authorized like the listing, from the request's headers: the page reads the stream with `fetch`
 * and its `Authorization` header, since `EventSource` can send no header and a token in the URL would land in logs.
 * A `Delete` or `Expire` event carries no record, so it is forwarded only for ids this connection has seen as the
 * caller's (every one of them, since the stream starts with the replay): another owner's uploads never appear.
 *
 * @since 0.1.0
 */
import { BaseKvStoreService, toSchemaStore } from "effect-kv"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { Authorization, Unauthorized } from "./Authorization.ts"
import { parseMetadata } from "./Tus.ts"
import { PREFIX, Upload } from "./Uploads.ts"

/**
 * An upload as the page shows it (the listing's shape).
 *
 * @since 0.1.0
 * @category models
 */
export const view = (upload: Upload) => {
  const metadata = upload.metadata === null ? null : parseMetadata(upload.metadata)
  return {
    id: upload.id,
    length: upload.length,
    offset: upload.offset,
    expiresAt: upload.expiresAt,
    filename: metadata?.get("filename") ?? null,
    concat: upload.concat
  }
}

const frame = (event: string, data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`

/**
 * The default interval of the heartbeat comments: below the 30 to 60 s after which proxies commonly drop an idle
 * connection.
 *
 * @since 0.1.0
 * @category models
 */
export const DEFAULT_HEARTBEAT = Duration.seconds(15)

/**
 * Done when the server stops: open event streams end on it. An event stream never ends by itself, so a server that
 * drained its requests before ending them would wait its whole drain deadline.
 *
 * @since 0.1.0
 * @category services
 */
export class Closing extends Context.Service<Closing, Deferred.Deferred<void>>()(
  "@effect-kv/upload-server/Events/Closing"
) {}

/**
 * @since 0.1.0
 * @category layers
 */
export const layerClosing: Layer.Layer<Closing> = Layer.effect(Closing, Deferred.make<void>())

/**
 * Completes `Closing` when released. Build it after the layer that serves HTTP (`Layer.provideMerge(serve)`), so it
 * is released first: the streams end, then the server drains the other requests.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerCloseStreamsFirst: Layer.Layer<never, never, Closing> = Layer.effectDiscard(
  Effect.flatMap(Effect.service(Closing), (closing) => Effect.addFinalizer(() => Deferred.succeed(closing, undefined)))
)

/**
 * The event stream's route; the streams end when `Closing` is done.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: { readonly heartbeat?: Duration.Input | undefined } = {}) =>
  HttpRouter.addAll(Effect.gen(function*() {
    const records = toSchemaStore(yield* BaseKvStoreService, Upload)
    const authorization = yield* Authorization
    const heartbeat = options.heartbeat ?? DEFAULT_HEARTBEAT
    const closing = yield* Closing

    /**
     * The caller's changes as SSE frames; `mine` holds the ids seen as the caller's on this connection, each with the
     * last frame sent for it: a write that changes nothing the page shows (a PATCH taking or dropping its lease,
     * `Lock.ts`) sends nothing.
     */
    const changes = (owner: string) =>
      Stream.suspend(() => {
        const mine = new Map<string, string>()
        return records.watch(PREFIX, { initial: true }).pipe(
          Stream.map((event): string | null => {
            switch (event._tag) {
              case "Set": {
                if (event.value.owner !== owner) return null
                const upload = frame("upload", view(event.value))
                if (mine.get(event.key) === upload) return null
                mine.set(event.key, upload)
                return upload
              }
              case "Delete":
              case "Expire": {
                if (!mine.delete(event.key)) return null
                return frame("delete", { id: event.key, reason: event._tag === "Delete" ? "deleted" : "expired" })
              }
              case "Resync":
                // What was sent before may be stale now: the next write of each upload is sent whatever it shows.
                for (const id of mine.keys()) mine.set(id, "")
                return frame("resync", {})
              // A record that does not decode has no owner to show it to; the listing skips it as well.
              case "Invalid":
                return null
            }
          }),
          Stream.filter((chunk): chunk is string => chunk !== null),
          Stream.catch((error) =>
            Stream.fromEffect(
              Effect.as(
                Effect.logWarning("the upload event stream failed", error),
                frame("unavailable", { error: error.message })
              )
            )
          )
        )
      })

    const events = Effect.gen(function*() {
      const owner = yield* authorization.authorize(yield* HttpServerRequest.HttpServerRequest)
      const body = Stream.concat(Stream.succeed(frame("reset", {})), changes(owner)).pipe(
        Stream.merge(Stream.map(Stream.tick(heartbeat), () => ": heartbeat\n\n"), { haltStrategy: "left" }),
        Stream.interruptWhen(Deferred.await(closing)),
        Stream.encodeText
      )
      return HttpServerResponse.stream(body, {
        contentType: "text/event-stream",
        // `X-Accel-Buffering: no` asks nginx-style proxies to pass each event on at once.
        headers: { "Cache-Control": "no-store", "X-Accel-Buffering": "no" }
      })
    }).pipe(
      Effect.catch((error: Unauthorized) =>
        Effect.succeed(HttpServerResponse.jsonUnsafe({ error: error.reason }, { status: error.status }))
      )
    )

    const routes: ReadonlyArray<HttpRouter.Route> = [HttpRouter.route("GET", "/api/uploads/events", events)]
    return routes
  }))
