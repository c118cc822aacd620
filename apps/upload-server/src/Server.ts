/**
 * The whole server as one layer: the protocol's and the page's routes on Effect's HTTP router, the upload records,
 * the lock, the files and the cleanup fiber, over a Node HTTP server, given the settings and a store.
 *
 * `main.ts` gives it the settings from the environment and the store `Store.choose` picks; tests give it
 * `Config.layer({...})` and `memoryKvStore` or a Redis layer, and read the bound port from `HttpServer`.
 *
 * @since 0.1.0
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import type { BaseKvStoreService } from "effect-kv"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as HttpRouter from "effect/http/HttpRouter"
import * as Layer from "effect/Layer"
import type { PlatformError } from "effect/PlatformError"
import * as Http from "node:http"
import type { Authorization } from "./Authorization.ts"
import * as Cleanup from "./Cleanup.ts"
import { UploadServerConfig } from "./Config.ts"
import * as Events from "./Events.ts"
import * as Files from "./Files.ts"
import type { Hooks } from "./Hooks.ts"
import * as Lock from "./Lock.ts"
import * as Page from "./Page.ts"
import * as Quota from "./Quota.ts"
import * as StoreOutages from "./StoreOutages.ts"
import * as Tus from "./Tus.ts"
import * as Uploads from "./Uploads.ts"

/**
 * Every request gets an answer, from the first connection to the last.
 *
 * The port opens when the HTTP server layer is built; the router attaches its handler later, once the routes are
 * built, and detaches it when it stops serving. A request in either gap would be held without an answer until its
 * client gives up: it is answered 503 with `Retry-After` instead, which tus clients retry. A HEAD gets 423 instead:
 * tus-js-client takes a HEAD that fails with anything else for a lost upload and starts it again from byte 0.
 *
 * Node's `server.close()` closes the connections idle at that moment and then waits for the others to end. A client
 * whose PATCH finishes during the drain keeps its connection alive, which would hold the process up to the deadline:
 * once the server has stopped listening, a finished response closes its connection and new ones say so.
 */
const answeringEveryRequest = (server: Http.Server): Http.Server => {
  const listener = (request: Http.IncomingMessage, response: Http.ServerResponse) => {
    if (!server.listening) response.setHeader("Connection", "close")
    response.once("finish", () => {
      if (!server.listening) setImmediate(() => server.closeIdleConnections())
    })
    // This listener alone: the routes are not attached (yet, or any more).
    if (server.listenerCount("request") === 1) {
      request.resume()
      const status = request.method === "HEAD" ? 423 : 503
      response.writeHead(status, { "Retry-After": "1", "Content-Type": "text/plain", Connection: "close" })
      response.end("the server is starting or stopping; retry\n")
    }
  }
  return server.on("request", listener)
}

/** A Node HTTP server on the configured address, draining in-flight requests for `shutdownTimeout` when stopped. */
const httpServer = Layer.unwrap(Effect.gen(function*() {
  const config = yield* UploadServerConfig
  return NodeHttpServer.layer(
    // A PATCH of a large chunk takes as long as the client needs to send it: Node's 300 s request timeout would cut
    // a slow client off mid-body, so the only limit on a request is the client going away.
    () => answeringEveryRequest(Http.createServer({ requestTimeout: 0 })),
    {
      port: config.port,
      host: config.host,
      gracefulShutdownTimeout: Duration.toMillis(config.shutdownTimeout)
    }
  )
}))

/**
 * What the tus routes need besides authorization and hooks: the records, the locks and the files of the uploads on
 * the given store and settings, and the cleanup fiber. A program mounting `Tus.layer` provides this (or its own
 * `Uploads`, `Locks` and `Files`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerServices: Layer.Layer<
  Uploads.Uploads | Lock.Locks | Quota.Quotas | Files.Files,
  PlatformError,
  BaseKvStoreService | UploadServerConfig
> = Cleanup.layer.pipe(
  Layer.provideMerge(
    Layer.mergeAll(
      Layer.mergeAll(Lock.layer, Quota.layer).pipe(
        Layer.provideMerge(Uploads.layer),
        Layer.provide(StoreOutages.layer)
      ),
      Files.layer.pipe(Layer.provide(NodeFileSystem.layer))
    )
  )
)

/**
 * The server `npm start` runs: the protocol at `/files/`, the page at `/` and its live events (`Events.ts`). It listens once the layer is built and
 * stops when its scope closes. `authRequired` tells the page to ask for a token.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: {
  readonly storeDescription: string
  readonly authRequired?: boolean
  /** How often an idle event stream sends a comment (default `Events.DEFAULT_HEARTBEAT`). */
  readonly heartbeat?: Duration.Input | undefined
}) => {
  const routes = Layer.mergeAll(
    Tus.layer(),
    Events.layer({ heartbeat: options.heartbeat }),
    Page.layer({ storeDescription: options.storeDescription, authRequired: options.authRequired ?? false })
  )
  return Events.layerCloseStreamsFirst.pipe(
    Layer.provideMerge(HttpRouter.serve(routes, { disableListenLog: true })),
    Layer.provide(layerServices),
    Layer.provide(NodeFileSystem.layer),
    Layer.provide(Events.layerClosing),
    Layer.provideMerge(httpServer)
  )
}

/**
 * @since 0.1.0
 * @category models
 */
export type Requirements = BaseKvStoreService | UploadServerConfig | Authorization | Hooks
