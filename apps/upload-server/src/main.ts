/**
 * `npm start`: the upload server, on the in-memory store, or on Redis (`REDIS_URL` / `REDIS_CLUSTER_NODES`),
 * PostgreSQL (`DATABASE_URL`) or SQLite (`SQLITE_FILE`) when set (see `Store.ts`), with the settings of `Config.ts`. SIGTERM or Ctrl-C stops it gracefully: no new requests,
 * in-flight ones get `shutdownTimeout` to finish, every lock is released. Authentication: bearer JWTs with
 * `UPLOAD_JWT_SECRET` or `UPLOAD_JWKS_URL`; without either, anonymous, and only on a loopback host unless
 * `UPLOAD_ALLOW_ANONYMOUS=true`. Tracing: OTLP when `OTEL_TRACES_EXPORTER=otlp` and an `OTEL_EXPORTER_OTLP_ENDPOINT` are
 * set (see `Tracing.ts`).
 *
 * @since 0.1.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { layerRateLimiter } from "effect-kv"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as HttpServer from "effect/http/HttpServer"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Authorization from "./Authorization.ts"
import * as Config from "./Config.ts"
import * as Hooks from "./Hooks.ts"
import * as Jwt from "./Jwt.ts"
import * as Limits from "./Limits.ts"
import * as Logging from "./Logging.ts"
import * as Server from "./Server.ts"
import * as Store from "./Store.ts"
import * as Tracing from "./Tracing.ts"
import { ENDPOINT } from "./Tus.ts"

/**
 * The authorization for the settings. Anonymous means one owner for every request: fine on loopback, an open door on
 * a public interface, so that takes an explicit `UPLOAD_ALLOW_ANONYMOUS=true`.
 */
const authorizationFor = (auth: Config.AuthSettings, host: string) => {
  switch (auth._tag) {
    case "Hs256":
      return Effect.succeed({ layer: Jwt.layerHs256(auth.secret), description: "bearer JWT (HS256)" })
    case "Jwks":
      return Effect.succeed({ layer: Jwt.layerJwks(auth.url), description: `bearer JWT (JWKS ${auth.url.origin})` })
    case "Anonymous":
      return !auth.allowedOnAnyHost && !Config.isLoopback(host)
        ? Effect.fail(
          new Error(
            `refusing to listen on ${host} without authentication: set UPLOAD_JWT_SECRET (or UPLOAD_JWKS_URL), ` +
              `or UPLOAD_ALLOW_ANONYMOUS=true to let anyone who reaches the port upload, list and delete`
          )
        )
        : Effect.succeed({ layer: Authorization.layerAnonymous, description: "anonymous" })
  }
}

const main = Effect.gen(function*() {
  const settings = yield* Config.fromEnv
  const auth = yield* Config.authFromEnv
  const authorization = yield* authorizationFor(auth, settings.host)
  const createsPerMinute = yield* Config.createsPerMinuteFromEnv
  const store = yield* Store.choose
  // The limiter counts in the upload store (the same layer, so the same connection): shared by every instance on it.
  const hooks = Option.match(createsPerMinute, {
    onNone: () => Hooks.layer(),
    onSome: (limit) =>
      Limits.layerHooks({ limit, window: Duration.minutes(1) }).pipe(
        Layer.provide(layerRateLimiter),
        Layer.provide(store.layer)
      )
  })
  const server = Server.layer({ storeDescription: store.description, authRequired: auth._tag !== "Anonymous" }).pipe(
    Layer.provide(store.layer),
    Layer.provide(authorization.layer),
    Layer.provide(hooks),
    Layer.provide(Layer.succeed(Config.UploadServerConfig, settings))
  )
  yield* Effect.gen(function*() {
    const address = HttpServer.formatAddress((yield* HttpServer.HttpServer).address)
    yield* Effect.logInfo(`upload server listening on ${address}${ENDPOINT} (page: ${address}/)`).pipe(
      Effect.annotateLogs({
        store: store.description,
        dataDir: settings.dataDir,
        auth: authorization.description,
        createsPerMinute: Option.getOrElse(createsPerMinute, () => "unlimited")
      })
    )
    yield* Effect.never
  }).pipe(Effect.provide(server))
}).pipe(Effect.provide([Logging.layer, Tracing.layerFromEnv()]))

// SIGTERM and Ctrl-C interrupt `main`: that is the server's normal way to stop, so it exits 0 (runMain's default
// teardown answers 130 to any interruption). A failure to start (a bad setting, Redis unreachable) exits 1.
NodeRuntime.runMain(main, {
  teardown: (exit, onExit) =>
    onExit(Exit.isSuccess(exit) || (Exit.hasInterrupts(exit) && !Exit.hasFails(exit) && !Exit.hasDies(exit)) ? 0 : 1)
})
