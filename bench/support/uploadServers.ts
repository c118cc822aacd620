/**
 * One upload server for `bench/uploads.ts`, in a process of its own so the client never shares its event loop:
 * effect-kv's server (`apps/upload-server`) on memory or Redis, or @tus/server with @tus/file-store on
 * @tus/utils' in-memory `MemoryKvStore` or its `RedisKvStore`. Prints `listening <url>` once it accepts requests and
 * runs until killed.
 *
 * `node --import tsx bench/support/uploadServers.ts --contender <name> --dir <DATA_DIR> [--url <redis url>]`
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { FileStore } from "@tus/file-store"
import { Server as TusServer } from "@tus/server"
import { MemoryKvStore, RedisKvStore } from "@tus/utils"
import { memoryKvStore } from "effect-kv"
import { layerRedis } from "effect-kv/redis"
import * as Effect from "effect/Effect"
import * as HttpServer from "effect/http/HttpServer"
import * as Layer from "effect/Layer"
import * as http from "node:http"
import { parseArgs } from "node:util"
import { createClient } from "redis"
import * as Authorization from "../../apps/upload-server/src/Authorization.ts"
import * as Config from "../../apps/upload-server/src/Config.ts"
import * as Hooks from "../../apps/upload-server/src/Hooks.ts"
import * as Logging from "../../apps/upload-server/src/Logging.ts"
import * as Server from "../../apps/upload-server/src/Server.ts"
import * as Tracing from "../../apps/upload-server/src/Tracing.ts"
import { UPLOAD_CONTENDERS, type UploadContender } from "./uploadContenders.ts"

const effectKv = (store: Layer.Layer<any, any>, dir: string) =>
  NodeRuntime.runMain(
    Effect.gen(function*() {
      const address = HttpServer.formatAddress((yield* HttpServer.HttpServer).address)
      process.stdout.write(`listening ${address}\n`)
      yield* Effect.never
    }).pipe(
      Effect.provide(
        Server.layer({ storeDescription: "bench" }).pipe(
          Layer.provide(store),
          // Anonymous, as `npm start` on loopback: one owner, the hooks doing nothing.
          Layer.provide(Authorization.layerAnonymous),
          Layer.provide(Hooks.layer()),
          Layer.provide(Config.layer({ port: 0, dataDir: dir }))
        )
      ),
      // The request log and the tracing of `npm start` (off, as no OpenTelemetry variable is set), so the figures are
      // those of the program users run.
      Effect.provide([Logging.layer, Tracing.layerFromEnv()])
    )
  )

const tusServer = async (configstore: MemoryKvStore<any> | RedisKvStore<any>, dir: string) => {
  const tus = new TusServer({ path: "/files", datastore: new FileStore({ directory: dir, configstore }) })
  const server = http.createServer((request, response) => tus.handle(request, response))
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const address = server.address() as { port: number }
  process.stdout.write(`listening http://127.0.0.1:${address.port}\n`)
}

/**
 * The fastest answer tus-js-client can get: a server that counts the body's bytes and stores nothing. Its rate is the
 * client's own ceiling on this machine, which bounds what any server can show with one client.
 */
const noopServer = async () => {
  const offsets = new Map<string, number>()
  let ids = 0
  const server = http.createServer((request, response) => {
    let bytes = 0
    request.on("data", (chunk: Buffer) => bytes += chunk.length)
    request.on("end", () => {
      if (request.method === "POST") {
        const id = String(ids++)
        offsets.set(id, 0)
        response.writeHead(201, { Location: `/files/${id}`, "Tus-Resumable": "1.0.0" })
        return response.end()
      }
      const id = request.url!.split("/").pop()!
      const offset = (offsets.get(id) ?? 0) + bytes
      offsets.set(id, offset)
      response.writeHead(204, { "Upload-Offset": String(offset), "Tus-Resumable": "1.0.0" })
      response.end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  process.stdout.write(`listening http://127.0.0.1:${(server.address() as { port: number }).port}\n`)
}

const main = async () => {
  const { values } = parseArgs({
    options: { contender: { type: "string" }, dir: { type: "string" }, url: { type: "string" } }
  })
  const contender = values.contender as UploadContender
  const dir = values.dir!
  switch (contender) {
    case "no-op server (client ceiling)":
      return noopServer()
    case "effect-kv (memory)":
      return effectKv(memoryKvStore, dir)
    case "effect-kv (Redis)":
      return effectKv(layerRedis({ url: values.url!, keyPrefix: "bench-effect-kv:" }), dir)
    case "@tus/server (MemoryKvStore)":
      return tusServer(new MemoryKvStore(), dir)
    case "@tus/server (RedisKvStore)": {
      const client = createClient({ url: values.url! })
      await client.connect()
      return tusServer(new RedisKvStore(client as any, "bench-tus:"), dir)
    }
    default:
      throw new Error(`unknown contender ${String(contender)}; expected one of ${UPLOAD_CONTENDERS.join(", ")}`)
  }
}

main().catch((error) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
  process.exit(1)
})
