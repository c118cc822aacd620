/**
 * Who is asking: the step the tus routes run before anything else, from the request to an owner id. The program that
 * mounts the routes supplies it (a session cookie, a bearer token, an API key: its own rule), and every upload records
 * the owner that created it. Another owner's upload is answered as if it did not exist (404), listings show the
 * caller's own uploads, and a final upload may only concatenate the caller's own partial uploads.
 *
 * `layerAnonymous` gives every request one owner, as a single-user server on loopback wants; `Jwt.ts` verifies bearer
 * JWTs for `npm start`.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import type * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as Layer from "effect/Layer"

/**
 * The request is not allowed: 401 when it did not say who it is (or could not prove it), 403 when the owner it proved
 * may not upload here. `reason` is sent to the client: it must not carry a token or a secret.
 *
 * @since 0.1.0
 * @category errors
 */
export class Unauthorized extends Data.TaggedError("Unauthorized")<{
  readonly status: 401 | 403
  readonly reason: string
}> {}

/**
 * @since 0.1.0
 * @category models
 */
export interface Authorize {
  /** The owner the request acts for, or `Unauthorized`. */
  readonly authorize: (request: HttpServerRequest.HttpServerRequest) => Effect.Effect<string, Unauthorized>
}

/**
 * @since 0.1.0
 * @category services
 */
export class Authorization extends Context.Service<Authorization, Authorize>()(
  "@effect-kv/upload-server/Authorization"
) {}

/**
 * The owner of every upload when no one authenticates.
 *
 * @since 0.1.0
 * @category models
 */
export const ANONYMOUS = "anonymous"

/**
 * Every request acts for `ANONYMOUS`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerAnonymous: Layer.Layer<Authorization> = Layer.succeed(
  Authorization,
  Authorization.of({ authorize: () => Effect.succeed(ANONYMOUS) })
)

const BEARER = /^Bearer\s+(\S+)\s*$/i

/**
 * Authorization from the `Authorization: Bearer <token>` header: `verify` turns the token into an owner. A request
 * without a bearer token is 401.
 *
 * @since 0.1.0
 * @category constructors
 */
export const bearer = (verify: (token: string) => Effect.Effect<string, Unauthorized>): Authorize => ({
  authorize: (request) => {
    const match = BEARER.exec(request.headers["authorization"] ?? "")
    return match === null
      ? Effect.fail(new Unauthorized({ status: 401, reason: "an Authorization: Bearer <token> header is required" }))
      : verify(match[1])
  }
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layerBearer = (
  verify: (token: string) => Effect.Effect<string, Unauthorized>
): Layer.Layer<Authorization> => Layer.succeed(Authorization, Authorization.of(bearer(verify)))
