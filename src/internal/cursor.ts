/**
 * The cursor of `listPage`: the last key of a page (prefix removed), base64url-encoded behind a version tag. It is
 * opaque to callers and the same on every backend, so a backend's `listAfter` only ever sees a decoded key.
 *
 * @internal
 */
import * as Base64Url from "effect/encoding/Base64Url"
import * as Result from "effect/Result"
import type { KvInputError } from "../BaseKvStore.ts"
import { describe, invalidOption, isValidPrefix } from "./validation.ts"

/** Tells this format from any later one, so a cursor from an older release is refused instead of misread. */
const CURSOR_TAG = "kv1."

export const encodeCursor = (after: string): string => CURSOR_TAG + Base64Url.encode(after)

/** The key a cursor resumes after (`null`: the first page), or the error for a cursor no `listPage` returned. */
export const decodeCursor = (cursor: unknown): string | null | KvInputError => {
  if (cursor === undefined || cursor === null) return null
  const bad = () =>
    invalidOption("listPage", "cursor", undefined, `the cursor ${describe(cursor)} was not returned by listPage.`)
  if (typeof cursor !== "string" || !cursor.startsWith(CURSOR_TAG)) return bad()
  const decoded = Base64Url.decodeString(cursor.slice(CURSOR_TAG.length))
  // The last key of a page may be "" (a prefix that is itself a key), so a cursor may hold the empty string.
  if (Result.isFailure(decoded) || !isValidPrefix(decoded.success) || encodeCursor(decoded.success) !== cursor) {
    return bad()
  }
  return decoded.success
}
