/**
 * `npm run example:mount`: the tus routes mounted in another Effect HTTP program, beside its own `GET /health`, under
 * `/uploads/`, behind its own authorization rule. For the example the rule is `Authorization: Bearer user:<name>`
 * means owner `<name>`; a real program checks its session or token there. Memory store, `PORT` from the environment
 * (3000 by default), bytes under `./data/mount-uploads`.
 *
 *     PORT=3000 npm run example:mount
 *     curl -i -X POST localhost:3000/uploads/ -H 'Tus-Resumable: 1.0.0' -H 'Upload-Length: 5' \
 *       -H 'Authorization: Bearer user:alice'
 *
 * @since 0.1.0
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { memoryKvStore } from "effect-kv"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import { createServer } from "node:http"
import { Authorization, Config as UploadConfig, Hooks, Server, Tus } from "../src/index.ts"

/** The program's own rule: `Bearer user:<name>` is owner `<name>`. */
const authorization = Authorization.layerBearer((token) =>
  token.startsWith("user:") && token.length > "user:".length
    ? Effect.succeed(token.slice("user:".length))
    : Effect.fail(new Authorization.Unauthorized({ status: 401, reason: "expected Bearer user:<name>" }))
)

const hooks = Hooks.layer({
  onFinish: (upload) =>
    Effect.logInfo("upload finished").pipe(Effect.annotateLogs({ upload: upload.id, owner: upload.owner }))
})

const health = HttpRouter.add("GET", "/health", HttpServerResponse.jsonUnsafe({ status: "ok" }))

const uploads = Tus.layer({ basePath: "/uploads" }).pipe(
  Layer.provide(Server.layerServices),
  Layer.provide(memoryKvStore),
  Layer.provide(UploadConfig.layer({ dataDir: "data/mount-uploads" })),
  Layer.provide(authorization),
  Layer.provide(hooks)
)

const http = Layer.unwrap(Effect.gen(function*() {
  // 0 is any free port; the log line says which.
  const port = yield* Config.schema(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 65535 })), "PORT").pipe(
    Config.withDefault(3000)
  )
  return NodeHttpServer.layer(createServer, { port, host: "127.0.0.1" })
}))

HttpRouter.serve(Layer.mergeAll(health, uploads)).pipe(
  Layer.provide(http),
  Layer.launch,
  NodeRuntime.runMain
)
