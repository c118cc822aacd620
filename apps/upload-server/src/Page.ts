/**
 * The web page at `/`: pick files, upload them with tus-js-client's browser build (served from this server, so the
 * page works without the internet), watch each file's progress, pause and resume, and see the uploads the store
 * holds, page by page, with a download link for each finished one.
 *
 * The page follows `GET /api/uploads/events` (`Events.ts`) live. `GET /api/uploads?limit=&cursor=` is the listing it
 * polls instead where the store cannot watch: one `listPage` of the store plus a `getMany`.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import { createRequire } from "node:module"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { Authorization, Unauthorized } from "./Authorization.ts"
import { view } from "./Events.ts"
import { Uploads } from "./Uploads.ts"

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

const PAGE = Path.join(Path.dirname(fileURLToPath(import.meta.url)), "page.html")
const TUS_CLIENT = createRequire(import.meta.url).resolve("tus-js-client/dist/tus.min.js")

/**
 * The page's routes, told which store the server runs on and whether it asks for a token. The listing shows the
 * caller's own uploads (`Authorization`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: { readonly storeDescription: string; readonly authRequired: boolean }) =>
  HttpRouter.addAll(Effect.gen(function*() {
    const { storeDescription } = options
    const fs = yield* FileSystem.FileSystem
    const uploads = yield* Uploads
    const authorization = yield* Authorization
    const page = (yield* fs.readFileString(PAGE)).replace("__AUTH_REQUIRED__", String(options.authRequired))
      .replace("__STORE__", escapeHtml(storeDescription))
    const client = yield* fs.readFileString(TUS_CLIENT)

    const list = Effect.gen(function*() {
      const params = yield* HttpServerRequest.ParsedSearchParams
      const limit = Math.min(100, Math.max(1, Number(params.limit ?? 20) || 20))
      const cursor = typeof params.cursor === "string" && params.cursor !== "" ? params.cursor : null
      const owner = yield* authorization.authorize(yield* HttpServerRequest.HttpServerRequest)
      const { cursor: next, uploads: records } = yield* uploads.page(owner, cursor, limit)
      return HttpServerResponse.jsonUnsafe({
        store: storeDescription,
        cursor: next,
        uploads: records.map(view)
      }, { headers: { "Cache-Control": "no-store" } })
    }).pipe(
      Effect.catch((error) =>
        Effect.succeed(
          HttpServerResponse.jsonUnsafe({ error: error instanceof Unauthorized ? error.reason : error.message }, {
            status: error instanceof Unauthorized ? error.status : error._tag === "KvBackendError" ? 503 : 500
          })
        )
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
