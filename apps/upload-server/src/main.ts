/**
 * `npm start`: the upload server, on the in-memory store, or on Redis (`REDIS_URL` / `REDIS_CLUSTER_NODES`),
 * PostgreSQL (`DATABASE_URL`) or SQLite (`SQLITE_FILE`) when set (see `Store.ts`), with the settings of `Config.ts`. SIGTERM or Ctrl-C stops it gracefully: no new requests,
 * in-flight ones get `shutdownTimeout` to finish, every lock is released.
 *
 * @since 0.2.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as HttpServer from "effect/http/HttpServer"
import * as Layer from "effect/Layer"
import * as Config from "./Config.ts"
import * as Logging from "./Logging.ts"
import * as Server from "./Server.ts"
import * as Store from "./Store.ts"
import { ENDPOINT } from "./Tus.ts"

const main = Effect.gen(function*() {
  const settings = yield* Config.fromEnv
  const store = yield* Store.choose
  const server = Server.layer({ storeDescription: store.description }).pipe(
    Layer.provide(store.layer),
    Layer.provide(Layer.succeed(Config.UploadServerConfig, settings))
  )
  yield* Effect.gen(function*() {
    const address = HttpServer.formatAddress((yield* HttpServer.HttpServer).address)
    yield* Effect.logInfo(`upload server listening on ${address}${ENDPOINT} (page: ${address}/)`).pipe(
      Effect.annotateLogs({ store: store.description, dataDir: settings.dataDir })
    )
    yield* Effect.never
  }).pipe(Effect.provide(server))
}).pipe(Effect.provide(Logging.layer))

// SIGTERM and Ctrl-C interrupt `main`: that is the server's normal way to stop, so it exits 0 (runMain's default
// teardown answers 130 to any interruption). A failure to start (a bad setting, Redis unreachable) exits 1.
NodeRuntime.runMain(main, {
  teardown: (exit, onExit) =>
    onExit(Exit.isSuccess(exit) || (Exit.hasInterrupts(exit) && !Exit.hasFails(exit) && !Exit.hasDies(exit)) ? 0 : 1)
})
