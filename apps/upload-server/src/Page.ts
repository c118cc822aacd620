/**
 * The web page at `/`: pick files, upload them with tus-js-client's browser build (served from this server, so the
 * page works without the internet), watch each file's progress, pause and resume, and see the uploads the store
 * holds, page by page, with a download link for each finished one.
 *
 * `GET /api/uploads?limit=&cursor=` is the listing the page polls: one `listPage` of the store plus a `getMany`.
 *
 * @since 0.2.0
 */
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import { createRequire } from "node:module"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { parseMetadata } from "./Tus.ts"
import { Uploads } from "./Uploads.ts"

const PAGE = Path.join(Path.dirname(fileURLToPath(import.meta.url)), "page.html")
const TUS_CLIENT = createRequire(import.meta.url).resolve("tus-js-client/dist/tus.min.js")

/**
 * The page's routes, told which store the server runs on.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (storeDescription: string) =>
  HttpRouter.addAll(Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const uploads = yield* Uploads
    const page = yield* fs.readFileString(PAGE)
    const client = yield* fs.readFileString(TUS_CLIENT)

    const list = Effect.gen(function*() {
      const params = yield* HttpServerRequest.ParsedSearchParams
      const limit = Math.min(100, Math.max(1, Number(params.limit ?? 20) || 20))
      const cursor = typeof params.cursor === "string" && params.cursor !== "" ? params.cursor : null
      const { cursor: next, uploads: records } = yield* uploads.page(cursor, limit)
      return HttpServerResponse.jsonUnsafe({
        store: storeDescription,
        cursor: next,
        uploads: records.map((upload) => {
          const metadata = upload.metadata === null ? null : parseMetadata(upload.metadata)
          return {
            id: upload.id,
            length: upload.length,
            offset: upload.offset,
            expiresAt: upload.expiresAt,
            filename: metadata?.get("filename") ?? null,
            concat: upload.concat
          }
        })
      }, { headers: { "Cache-Control": "no-store" } })
    }).pipe(
      Effect.catch((error) =>
        Effect.succeed(HttpServerResponse.jsonUnsafe({ error: error.message }, {
          status: error._tag === "KvBackendError" ? 503 : 500
        }))
      )
    )

    const routes: ReadonlyArray<HttpRouter.Route> = [
      HttpRouter.route("GET", "/", HttpServerResponse.text(page, { contentType: "text/html; charset=utf-8" })),
      HttpRouter.route(
        "GET",
        "/tus.min.js",
        HttpServerResponse.text(client, { contentType: "text/javascript; charset=utf-8" })
      ),
      HttpRouter.route("GET", "/api/uploads", list)
    ]
    return routes
  }))
