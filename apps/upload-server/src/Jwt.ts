/**
 * Bearer JWTs as the upload server's authorization, verified with `jose`: HS256 with a shared secret
 * (`UPLOAD_JWT_SECRET`) or the asymmetric keys of a JWKS endpoint (`UPLOAD_JWKS_URL`). The token's `sub` is the owner;
 * `exp` (and `nbf`) are honoured. A missing, malformed, forged or expired token is 401, and the answer never repeats
 * the token or the secret.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Jose from "jose"
import { Authorization, bearer, Unauthorized } from "./Authorization.ts"

const ASYMMETRIC = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]

/** Why a token was refused, in words that are safe to send back: jose's error codes, never the token. */
const reasonOf = (error: unknown): string => {
  if (error instanceof Jose.errors.JWTExpired) return "the token has expired"
  if (error instanceof Jose.errors.JWTClaimValidationFailed) return `the token's ${error.claim} claim is not valid`
  if (error instanceof Jose.errors.JWSSignatureVerificationFailed) return "the token's signature does not verify"
  if (error instanceof Jose.errors.JOSEAlgNotAllowed) return "the token's algorithm is not accepted"
  return "the token is not a valid JWT"
}

const verifyWith = (
  key: Parameters<typeof Jose.jwtVerify>[1],
  algorithms: ReadonlyArray<string>
) =>
(token: string): Effect.Effect<string, Unauthorized> =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    Effect.tryPromise({
      // `exp` and `nbf` are judged by the Clock, as every other time in the server is, so a TestClock drives them.
      try: () => Jose.jwtVerify(token, key as Uint8Array, { algorithms: [...algorithms], currentDate: new Date(now) }),
      catch: (error) => new Unauthorized({ status: 401, reason: reasonOf(error) })
    })).pipe(
      Effect.flatMap(({ payload }) =>
        typeof payload.sub === "string" && payload.sub !== ""
          ? Effect.succeed(payload.sub)
          : Effect.fail(new Unauthorized({ status: 401, reason: "the token has no sub claim (the owner)" }))
      )
    )

/**
 * HS256 tokens signed with `secret`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerHs256 = (secret: Redacted.Redacted<string>): Layer.Layer<Authorization> =>
  Layer.sync(
    Authorization,
    () => Authorization.of(bearer(verifyWith(new TextEncoder().encode(Redacted.value(secret)), ["HS256"])))
  )

/**
 * Tokens signed by one of the keys published at `url` (fetched on first use and cached by jose).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerJwks = (url: URL): Layer.Layer<Authorization> =>
  Layer.sync(Authorization, () => Authorization.of(bearer(verifyWith(Jose.createRemoteJWKSet(url), ASYMMETRIC))))
