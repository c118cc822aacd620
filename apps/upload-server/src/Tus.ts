/**
 * The tus 1.0.0 protocol at `/files/`: core (`OPTIONS`, `HEAD`, `PATCH`), creation, creation-with-upload,
 * creation-defer-length, termination, expiration, checksum (sha1, sha256, md5) and concatenation, plus `GET` of a
 * finished upload. See https://tus.io/protocols/resumable-upload.
 *
 * Every request is checked in full before anything is touched, so a malformed one gets the status the protocol names
 * and changes nothing. A PATCH runs under the upload's lease (`Lock.ts`), streams its body to disk (`Files.ts`) and
 * only then advances the record (`Uploads.ts`), whether the body ended, failed or the client went away: what reached
 * the disk counts, so the client resumes from there. A checksum or size failure undoes its bytes instead.
 *
 * The store being down answers 503 with `Retry-After`, once the outage is older than the server's store window
 * (`StoreOutages.ts`): a shorter one is waited out.
 *
 * @since 0.1.0
 */
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import { isKvBackendError, isKvInputError, isKvSchemaError } from "effect-kv"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServerError from "effect/http/HttpServerError"
import * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as Option from "effect/Option"
import { PlatformError } from "effect/PlatformError"
import type * as Stream from "effect/Stream"
import { createHash, randomUUID } from "node:crypto"
import { IncomingMessage } from "node:http"
import type { Readable } from "node:stream"
import { Authorization, Unauthorized } from "./Authorization.ts"
import { UploadServerConfig } from "./Config.ts"
import { BodyTooLarge, BodyUnreadable, Files, type Progress } from "./Files.ts"
import { Hooks, UploadRejected } from "./Hooks.ts"
import { Locks, UploadLocked, UploadNotFound } from "./Lock.ts"
import { Quotas } from "./Quota.ts"
import { isComplete, type Upload, Uploads } from "./Uploads.ts"

/**
 * The path `npm start` serves the protocol under.
 *
 * @since 0.1.0
 */
export const ENDPOINT = "/files/"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Where the routes are mounted, such as `"/uploads"`; `"/files"` by default. Upload URLs are `<basePath>/<id>`. */
  readonly basePath?: `/${string}`
}

/** The methods each route answers, for `Allow` on a 405. */
const ALLOW_COLLECTION = "POST, OPTIONS"
const ALLOW_UPLOAD = "HEAD, PATCH, GET, DELETE, OPTIONS"

const TUS_VERSION = "1.0.0"
const EXTENSIONS = [
  "creation",
  "creation-with-upload",
  "creation-defer-length",
  "termination",
  "expiration",
  "checksum",
  "concatenation"
].join(",")
const CHECKSUM_ALGORITHMS = ["sha1", "sha256", "md5"]
const OFFSET_STREAM = "application/offset+octet-stream"

const CORS_ALLOWED_HEADERS = [
  "Authorization",
  "Content-Type",
  "Location",
  "Tus-Extension",
  "Tus-Max-Size",
  "Tus-Resumable",
  "Tus-Version",
  "Upload-Checksum",
  "Upload-Concat",
  "Upload-Defer-Length",
  "Upload-Length",
  "Upload-Metadata",
  "Upload-Offset",
  "X-HTTP-Method-Override",
  "X-Requested-With"
].join(", ")
const CORS_EXPOSED_HEADERS = [
  "Location",
  "Tus-Checksum-Algorithm",
  "Tus-Extension",
  "Tus-Max-Size",
  "Tus-Resumable",
  "Tus-Version",
  "Upload-Concat",
  "Upload-Defer-Length",
  "Upload-Expires",
  "Upload-Length",
  "Upload-Metadata",
  "Upload-Offset",
  "Content-Disposition"
].join(", ")

/** A request the protocol refuses, with the status it names. */
class Refused {
  constructor(readonly status: number, readonly reason: string, readonly headers: Record<string, string> = {}) {}
}

const refuse = (status: number, reason: string, headers?: Record<string, string>) =>
  Effect.fail(new Refused(status, reason, headers))

/** Ids are ours (UUIDs without dashes); anything else cannot name an upload, nor escape `DATA_DIR`. */
const ID = /^[0-9a-f]{32}$/

const newId = () => randomUUID().replaceAll("-", "")

const DIGITS = /^\d+$/

/** A non-negative integer header: `undefined` when absent, `null` when malformed. */
const integerHeader = (value: string | undefined): number | null | undefined => {
  if (value === undefined) return undefined
  const trimmed = value.trim()
  if (!DIGITS.test(trimmed)) return null
  const n = Number(trimmed)
  return Number.isSafeInteger(n) ? n : null
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/** The pairs of an `Upload-Metadata` header, or `null` when it is malformed (bad base64, empty or repeated keys). */
export const parseMetadata = (header: string): Map<string, string> | null => {
  const pairs = new Map<string, string>()
  if (header.trim() === "") return pairs
  for (const item of header.split(",")) {
    const parts = item.trim().split(" ")
    const [name, value = ""] = parts
    if (parts.length > 2 || name === "" || pairs.has(name) || !BASE64.test(value)) return null
    pairs.set(name, Buffer.from(value, "base64").toString("utf8"))
  }
  return pairs
}

/** The id at the end of a part's URL in `Upload-Concat: final;...`, absolute or relative. */
const partId = (url: string): string | null => {
  try {
    const id = new URL(url, "http://base.invalid").pathname.split("/").filter((segment) => segment !== "").pop()
    return id !== undefined && ID.test(id) ? id : null
  } catch {
    return null
  }
}

type Concat = { readonly kind: "partial" } | { readonly kind: "final"; readonly parts: ReadonlyArray<string> }

const parseConcat = (header: string | undefined): Concat | null | undefined => {
  if (header === undefined) return undefined
  const value = header.trim()
  if (value === "partial") return { kind: "partial" }
  if (!value.startsWith("final;")) return null
  const urls = value.slice("final;".length).trim().split(/\s+/).filter((url) => url !== "")
  const parts = urls.map(partId)
  return urls.length === 0 || parts.some((id) => id === null) ? null : { kind: "final", parts: parts as Array<string> }
}

/** The algorithm and expected digest of an `Upload-Checksum` header. */
const parseChecksum = (header: string | undefined) => {
  if (header === undefined) return Effect.succeed(null)
  const [algorithm, digest, ...rest] = header.trim().split(" ")
  if (rest.length > 0 || digest === undefined || !BASE64.test(digest) || digest === "") {
    return refuse(400, "Upload-Checksum must be \"<algorithm> <base64 digest>\"")
  }
  if (!CHECKSUM_ALGORITHMS.includes(algorithm)) {
    return refuse(400, `unsupported checksum algorithm ${JSON.stringify(algorithm)}`, {
      "Tus-Checksum-Algorithm": CHECKSUM_ALGORITHMS.join(",")
    })
  }
  return Effect.succeed({ algorithm, digest })
}

/** A metadata map as an `Upload-Metadata` header. */
const encodeMetadata = (pairs: ReadonlyMap<string, string>): string | null =>
  pairs.size === 0
    ? null
    : [...pairs].map(([name, value]) => `${name} ${Buffer.from(value).toString("base64")}`).join(",")

/**
 * An HTTP date, which has whole seconds: the last one is kept, since every PATCH sends one (`Upload-Expires`) and
 * formatting a `Date` showed in its CPU profile.
 */
const httpDate = (() => {
  let second = NaN
  let formatted = ""
  return (ms: number) => {
    const at = Math.floor(ms / 1000)
    if (at !== second) {
      second = at
      formatted = new Date(at * 1000).toUTCString()
    }
    return formatted
  }
})()

/** The headers that describe an upload's state, for HEAD and after writes. */
const stateHeaders = (upload: Upload): Record<string, string> => {
  const headers: Record<string, string> = { "Upload-Offset": String(upload.offset) }
  if (upload.length === null) headers["Upload-Defer-Length"] = "1"
  else headers["Upload-Length"] = String(upload.length)
  if (upload.expiresAt !== null) headers["Upload-Expires"] = httpDate(upload.expiresAt)
  return headers
}

/** A body is coming when the client says how long it is (and it is not 0) or streams it chunked. */
const hasBody = (request: HttpServerRequest.HttpServerRequest): boolean => {
  const length = request.headers["content-length"]
  return length !== undefined ? length.trim() !== "0" : request.headers["transfer-encoding"] !== undefined
}

/**
 * The request body as `Files.write` reads it fastest: Node's own `IncomingMessage` when the request came through Node's
 * HTTP/1 server (`Files.ts` says why), the platform's stream otherwise. A request that expects `100 Continue` takes the
 * stream too, since reading `request.stream` is what sends the `100 Continue`.
 */
const bodyOf = (request: HttpServerRequest.HttpServerRequest): Stream.Stream<Uint8Array, unknown> | Readable => {
  // Another platform's request has no Node source: `toIncomingMessage` gives `undefined` for it.
  const source: unknown = NodeHttpServerRequest.toIncomingMessage(request)
  return source instanceof IncomingMessage && request.headers["expect"] === undefined ? source : request.stream
}

/** A type from `Upload-Metadata` that is safe to send back as `Content-Type`. */
const MIME = /^[\w.+-]+\/[\w.+-]+$/

const contentDisposition = (filename: string): string => {
  const ascii = filename.replace(/[^\x20-\x7e]|["\\]/g, "_")
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(filename)}`
}

/**
 * The routes of the protocol.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function*(options: Options = {}) {
  const basePath = (options.basePath ?? "/files").replace(/\/+$/, "") as `/${string}`
  const location = (id: string) => `${basePath}/${id}`
  const config = yield* UploadServerConfig
  const authorization = yield* Authorization
  const hooks = yield* Hooks
  const uploads = yield* Uploads
  const files = yield* Files
  const locks = yield* Locks
  const quotas = yield* Quotas

  const maxSizeHeaders: Record<string, string> = config.maxSize === null ? {} : {
    "Tus-Max-Size": String(config.maxSize)
  }

  /** The upload, if it exists and belongs to `owner`: another owner's upload is not revealed to exist. */
  const requireRecord = (id: string, owner: string) =>
    Effect.flatMap(
      ID.test(id) ? uploads.get(id) : Effect.succeed(null),
      (upload) =>
        upload === null || upload.owner !== owner
          ? refuse(404, "no such upload (it may have expired)")
          : Effect.succeed(upload)
    )

  /** Runs the program's `onFinish`; its failure is logged, as the upload's bytes are already committed. */
  const finished = (upload: Upload) =>
    isComplete(upload)
      ? hooks.onFinish(upload).pipe(
        Effect.catchCause((cause) =>
          Effect.logError("onFinish hook failed", cause).pipe(Effect.annotateLogs("upload", upload.id))
        )
      )
      : Effect.void

  const checkLength = (length: number) =>
    config.maxSize !== null && length > config.maxSize
      ? refuse(413, `the upload is larger than Tus-Max-Size (${config.maxSize} bytes)`, maxSizeHeaders)
      : Effect.void

  const overQuota = (owner: string) =>
    Effect.flatMap(
      quotas.used(owner),
      (used) =>
        refuse(
          413,
          `the upload would pass the owner's quota of ${quotas.limit} bytes (${used} in use); ` +
            "terminate finished uploads to make room"
        )
    )

  /** Reserves `bytes` for the owner's upload `id` in full, or refuses it (413) past the owner's quota. */
  const reserveAll = (owner: string, id: string, bytes: number) =>
    Effect.flatMap(quotas.reserve(owner, id, bytes), (granted) => granted ? Effect.void : overQuota(owner))

  /**
   * Writes a new record, then its empty file, as one step a client going away cannot cut in two; a file that cannot
   * be made takes its record with it, so a record is never left without its file (the cleanup removes one a failed
   * removal leaves). The record comes first: the cleanup never sees a live upload's file without a record.
   */
  const createUpload = (upload: Omit<Upload, "expiresAt">) =>
    Effect.uninterruptible(Effect.gen(function*() {
      const created = yield* uploads.create(upload)
      if (created === null) return yield* refuse(500, "id collision; retry")
      yield* files.create(upload.id).pipe(Effect.onError(() => Effect.ignore(uploads.remove(upload.id))))
      return created
    }))

  /**
   * Writes the request body at the upload's offset, under its lease, and advances the record by what reached the
   * disk. The caller has checked the headers; `lengthOf` checks the record against them and gives the upload's
   * length after this request (a deferred length may arrive with it).
   *
   * The record is read by taking the lease and written by the commit that drops it (`Lock.ts`): two store calls per
   * PATCH when this instance wrote the upload last.
   */
  const receive = (
    request: HttpServerRequest.HttpServerRequest,
    owner: string,
    id: string,
    offset: number,
    lengthOf: (current: Upload) => Effect.Effect<number | null, Refused>,
    checksum: { readonly algorithm: string; readonly digest: string } | null
  ) =>
    locks.withLease(id, owner, (held) =>
      Effect.gen(function*() {
        const current = held.upload
        if (current.concat === "final") return yield* refuse(403, "a final upload cannot be patched")
        if (current.offset !== offset) {
          return yield* refuse(409, `Upload-Offset ${offset} does not match the upload's offset ${current.offset}`, {
            "Upload-Offset": String(current.offset)
          })
        }
        const length = yield* lengthOf(current)
        // The quota counts a deferred-length upload as it grows: this request may take what the owner has left, and
        // gives back what it did not use. A length declared now is reserved in full.
        let room = Number.MAX_SAFE_INTEGER
        if (quotas.limit !== null && current.length === null) {
          if (length !== null) yield* reserveAll(owner, id, length)
          else {
            const contentLength = integerHeader(request.headers["content-length"])
            const wanted = contentLength == null ? Number.MAX_SAFE_INTEGER : offset + contentLength
            room = yield* quotas.reserveUpTo(owner, id, wanted)
            if (room <= offset && wanted > offset) return yield* overQuota(owner)
          }
        }
        const limit = Math.min(length ?? config.maxSize ?? Number.MAX_SAFE_INTEGER, room) - offset
        const progress: Progress = { written: 0 }
        const hash = checksum === null ? null : createHash(checksum.algorithm)
        let committed: Upload | null = current
        let commitFailure: unknown = undefined
        let mismatch = false

        /**
         * Runs however the write ends, interruption included (a finalizer is uninterruptible): bytes that must not
         * count are cut off, the rest are committed. A commit failure is kept for the response, since the client
         * may still be there to hear it.
         */
        const settle = (exit: Exit.Exit<void, unknown>) => {
          // A body past the upload's length keeps the bytes that fit (tus 1.0's SHOULD) and is answered 413; bytes of
          // a body that did not arrive whole cannot be checked against its checksum: they do not count.
          mismatch = hash !== null && Exit.isSuccess(exit) && hash.digest("base64") !== checksum!.digest
          if (mismatch || (hash !== null && Exit.isFailure(exit))) {
            return Effect.ignore(files.truncate(id, offset))
          }
          if (progress.written === 0 && length === current.length) return Effect.void
          const reached = offset + progress.written
          // Bytes past the offset left by an earlier failed commit cannot outlive completion: cut them off first.
          const complete = length === reached ? Effect.ignore(files.truncate(id, reached)) : Effect.void
          return Effect.andThen(complete, held.commit({ offset: reached, length })).pipe(
            Effect.match({
              onFailure: (error) => {
                commitFailure = error
              },
              onSuccess: (upload) => {
                committed = upload
              }
            })
          )
        }

        const exit = yield* files.write({ id, offset, body: bodyOf(request), limit, hash, progress }).pipe(
          Effect.onExit(settle),
          Effect.exit
        )
        const reached = (committed ?? current).offset
        if (room !== Number.MAX_SAFE_INTEGER && committed !== null && room > reached) {
          // What the request reserved and did not write goes back; should this fail, the next PATCH sets it again.
          yield* Effect.ignore(quotas.settle(owner, id, reached))
        }
        if (commitFailure !== undefined) return yield* Effect.fail(commitFailure)
        if (Exit.isFailure(exit)) {
          const error = Option.getOrUndefined(Exit.findErrorOption(exit))
          if (error instanceof BodyTooLarge && room - offset === error.limit) {
            return yield* refuse(
              413,
              `the body goes past the owner's quota of ${quotas.limit} bytes; the first ${error.limit} bytes were kept`,
              { "Upload-Offset": String(reached) }
            )
          }
          if (error instanceof BodyTooLarge) {
            return yield* refuse(
              413,
              `the body goes past the upload's length; the first ${error.limit} bytes were kept`,
              {
                "Upload-Offset": String((committed ?? current).offset)
              }
            )
          }
          return yield* Effect.failCause(exit.cause)
        }
        if (mismatch) {
          return yield* refuse(460, "Checksum Mismatch: the body does not match Upload-Checksum; nothing was kept")
        }
        if (committed === null) return yield* refuse(404, "the upload was terminated or expired during the request")
        if (committed !== current) yield* finished(committed)
        return committed
      }))

  /** creation, creation-defer-length, creation-with-upload, concatenation. */
  const create = (owner: string) =>
    Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const headers = request.headers
      const concat = parseConcat(headers["upload-concat"])
      if (concat === null) return yield* refuse(400, "Upload-Concat must be \"partial\" or \"final;<url> <url> ...\"")
      const metadataHeader = headers["upload-metadata"]
      if (metadataHeader !== undefined && parseMetadata(metadataHeader) === null) {
        return yield* refuse(400, "Upload-Metadata must be comma-separated \"<key> <base64 value>\" pairs")
      }
      const id = newId()
      const length = integerHeader(headers["upload-length"])
      /**
       * The program's say, once the request is known to be valid and before anything is written: it may refuse the
       * upload (a request refused for its headers never counts against a limit) or replace its metadata.
       */
      const decideMetadata = (length: number | null) =>
        Effect.map(
          hooks.onCreate({
            id,
            owner,
            length,
            metadata: metadataHeader === undefined ? new Map() : parseMetadata(metadataHeader)!,
            concat: concat?.kind ?? null
          }),
          (decided) =>
            decided?.metadata !== undefined
              ? encodeMetadata(decided.metadata)
              : metadataHeader === undefined || metadataHeader.trim() === ""
              ? null
              : metadataHeader.trim()
        )

      if (concat?.kind === "final") {
        if (headers["upload-length"] !== undefined) {
          return yield* refuse(400, "a final upload must not have Upload-Length: it is the sum of its parts")
        }
        // Only the caller's own partial uploads: another owner's part is reported as missing.
        const parts = yield* Effect.forEach(
          concat.parts,
          (part) => Effect.orElseSucceed(requireRecord(part, owner), () => null)
        )
        for (const [i, part] of parts.entries()) {
          if (part === null) return yield* refuse(400, `part ${concat.parts[i]} does not exist`)
          if (part.concat !== "partial") return yield* refuse(400, `part ${part.id} is not a partial upload`)
          if (!isComplete(part)) return yield* refuse(400, `part ${part.id} is not finished`)
        }
        const total = parts.reduce((sum, part) => sum + part!.length!, 0)
        yield* checkLength(total)
        const metadata = yield* decideMetadata(total)
        yield* reserveAll(owner, id, total)
        const created = yield* createUpload({
          id,
          owner,
          length: total,
          offset: 0,
          metadata,
          createdAt: yield* Clock.currentTimeMillis,
          concat: "final",
          parts: concat.parts,
          concatHeader: headers["upload-concat"]!.trim()
        })
        yield* files.concatenate(id, concat.parts)
        const done = yield* uploads.advance(created, { offset: total, length: total })
        if (done === null) return yield* refuse(404, "the upload was terminated during concatenation")
        yield* finished(done)
        return HttpServerResponse.empty({ status: 201, headers: { Location: location(id), ...stateHeaders(done) } })
      }

      const defer = headers["upload-defer-length"]
      if (length === null) return yield* refuse(400, "Upload-Length must be a non-negative integer")
      if (defer !== undefined && defer.trim() !== "1") return yield* refuse(400, "Upload-Defer-Length must be 1")
      if ((length === undefined) === (defer === undefined)) {
        return yield* refuse(400, "exactly one of Upload-Length and Upload-Defer-Length is required")
      }
      if (length !== undefined) yield* checkLength(length)
      const withBody = hasBody(request)
      if (withBody && headers["content-type"] !== OFFSET_STREAM) {
        return yield* refuse(415, `a body sent with the creation request must be ${OFFSET_STREAM}`)
      }
      const checksum = withBody ? yield* parseChecksum(headers["upload-checksum"]) : null
      const contentLength = integerHeader(headers["content-length"])
      if (withBody && length !== undefined && contentLength != null && contentLength > length) {
        return yield* refuse(413, "the body is longer than Upload-Length")
      }

      const metadata = yield* decideMetadata(length ?? null)
      // Reserved before the record is written: a reservation left by a failed creation is dropped when room runs
      // short (`Quota.ts`), a record without its reservation could pass the quota.
      if (length !== undefined) yield* reserveAll(owner, id, length)
      const created = yield* createUpload({
        id,
        owner,
        length: length ?? null,
        offset: 0,
        metadata,
        createdAt: yield* Clock.currentTimeMillis,
        concat: concat?.kind === "partial" ? "partial" : null,
        parts: null,
        concatHeader: null
      })
      const upload = withBody
        ? yield* receive(request, owner, id, 0, (current) => Effect.succeed(current.length), checksum)
        : created
      return HttpServerResponse.empty({ status: 201, headers: { Location: location(id), ...stateHeaders(upload) } })
    })

  const head = (owner: string, id: string) =>
    Effect.map(requireRecord(id, owner), (upload) => {
      const headers: Record<string, string> = { ...stateHeaders(upload), "Cache-Control": "no-store" }
      if (upload.metadata !== null) headers["Upload-Metadata"] = upload.metadata
      if (upload.concat === "partial") headers["Upload-Concat"] = "partial"
      if (upload.concat === "final") {
        headers["Upload-Concat"] = upload.concatHeader ?? `final;${(upload.parts ?? []).map(location).join(" ")}`
      }
      return HttpServerResponse.empty({ status: 200, headers })
    })

  const patch = (owner: string, id: string) =>
    Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const headers = request.headers
      if (headers["content-type"] !== OFFSET_STREAM) {
        return yield* refuse(415, `Content-Type must be ${OFFSET_STREAM}`)
      }
      const offset = integerHeader(headers["upload-offset"])
      if (offset == null) return yield* refuse(400, "Upload-Offset must be a non-negative integer")
      const checksum = yield* parseChecksum(headers["upload-checksum"])
      const newLength = integerHeader(headers["upload-length"])
      if (newLength === null) return yield* refuse(400, "Upload-Length must be a non-negative integer")
      const contentLength = integerHeader(headers["content-length"])
      if (contentLength === null) return yield* refuse(400, "Content-Length must be a non-negative integer")
      if (!ID.test(id)) return yield* refuse(404, "no such upload (it may have expired)")
      const lengthOf = (upload: Upload): Effect.Effect<number | null, Refused> => {
        if (newLength === undefined) return Effect.succeed(upload.length)
        if (upload.length !== null && newLength !== upload.length) return refuse(400, "Upload-Length cannot change")
        if (newLength < offset) return refuse(400, "Upload-Length is smaller than the upload's offset")
        return Effect.as(checkLength(newLength), newLength)
      }
      // A body declared longer than what is left is still read up to the upload's length: the bytes that fit are
      // kept, then 413 (tus 1.0: the server SHOULD keep them). `receive` enforces the limit as the bytes arrive.
      const done = yield* receive(request, owner, id, offset, lengthOf, checksum)
      return HttpServerResponse.empty({ status: 204, headers: stateHeaders(done) })
    })

  const terminate = (owner: string, id: string) =>
    Effect.gen(function*() {
      if (!ID.test(id)) return yield* refuse(404, "no such upload (it may have expired)")
      yield* locks.withLease(
        id,
        owner,
        // The record goes first: once it is gone no request can reach the file, and a file left by a failed removal
        // is the cleanup fiber's.
        () => Effect.andThen(uploads.remove(id), Effect.ignore(files.remove(id)))
      )
      // A failure leaves the upload in the ledger until room runs short, when the ledger drops it (`Quota.ts`).
      yield* Effect.ignore(quotas.release(owner, id))
      return HttpServerResponse.empty({ status: 204 })
    })

  const download = (owner: string, id: string) =>
    Effect.gen(function*() {
      const upload = yield* requireRecord(id, owner)
      if (!isComplete(upload)) return yield* refuse(404, "the upload is not finished")
      const metadata = upload.metadata === null ? new Map<string, string>() : parseMetadata(upload.metadata)
      const type = metadata?.get("filetype") ?? metadata?.get("type") ?? ""
      const name = metadata?.get("filename") ?? metadata?.get("name") ?? id
      return yield* HttpServerResponse.file(files.path(id), {
        contentType: MIME.test(type) ? type : "application/octet-stream",
        // nosniff: a browser must not render an upload as HTML or script, whatever its bytes look like.
        headers: {
          "Content-Disposition": contentDisposition(name),
          "Cache-Control": "no-store",
          "X-Content-Type-Options": "nosniff"
        }
      })
    })

  const optionsResponse = HttpServerResponse.empty({
    status: 204,
    headers: {
      "Tus-Version": TUS_VERSION,
      "Tus-Extension": EXTENSIONS,
      "Tus-Checksum-Algorithm": CHECKSUM_ALGORITHMS.join(","),
      ...maxSizeHeaders,
      // Preflight answers for browsers on other origins.
      "Access-Control-Allow-Methods": "POST, GET, HEAD, PATCH, DELETE, OPTIONS",
      "Access-Control-Allow-Headers": CORS_ALLOWED_HEADERS,
      "Access-Control-Max-Age": "86400"
    }
  })

  const route = (id: string | null) =>
    Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      // Clients behind proxies that only pass GET and POST send the real method in this header.
      const method = (request.headers["x-http-method-override"] ?? request.method).toUpperCase()
      // Preflights carry no credentials: they are answered before authorization.
      if (method === "OPTIONS") return optionsResponse
      const owner = yield* authorization.authorize(request)
      if (method === "GET" && id !== null) return yield* download(owner, id)
      if (request.headers["tus-resumable"] !== TUS_VERSION) {
        return yield* refuse(412, `Tus-Resumable must be ${TUS_VERSION}`, { "Tus-Version": TUS_VERSION })
      }
      if (id === null) {
        return method === "POST"
          ? yield* create(owner)
          : yield* refuse(405, `${method} is not allowed on ${basePath}/`, { Allow: ALLOW_COLLECTION })
      }
      switch (method) {
        case "HEAD":
          return yield* head(owner, id)
        case "PATCH":
          return yield* patch(owner, id)
        case "DELETE":
          return yield* terminate(owner, id)
        default:
          return yield* refuse(405, `${method} is not allowed on an upload`, { Allow: ALLOW_UPLOAD })
      }
    }).pipe(
      Effect.catch((error): Effect.Effect<HttpServerResponse.HttpServerResponse> => {
        if (error instanceof Refused) {
          return Effect.succeed(HttpServerResponse.text(error.reason + "\n", {
            status: error.status,
            headers: error.headers
          }))
        }
        if (error instanceof Unauthorized) {
          return Effect.succeed(HttpServerResponse.text(error.reason + "\n", {
            status: error.status,
            headers: error.status === 401 ? { "WWW-Authenticate": "Bearer" } : {}
          }))
        }
        if (error instanceof UploadRejected) {
          return Effect.succeed(HttpServerResponse.text(error.reason + "\n", {
            status: error.status,
            headers: error.headers ?? {}
          }))
        }
        if (error instanceof UploadNotFound) {
          return Effect.succeed(HttpServerResponse.text("no such upload (it may have expired)\n", { status: 404 }))
        }
        if (error instanceof UploadLocked) {
          return Effect.succeed(HttpServerResponse.text("another request is writing this upload; retry\n", {
            status: 423
          }))
        }
        if (isKvBackendError(error)) {
          return Effect.as(
            Effect.logWarning("store unavailable", error.message),
            HttpServerResponse.text(`the upload store is unavailable: ${error.reason}; retry\n`, {
              status: 503,
              headers: { "Retry-After": "1" }
            })
          )
        }
        if (HttpServerError.isHttpServerError(error) || error instanceof BodyUnreadable) {
          return Effect.succeed(HttpServerResponse.text("the request body could not be read\n", { status: 400 }))
        }
        const known = isKvSchemaError(error) || isKvInputError(error) || error instanceof PlatformError
        return Effect.as(
          Effect.logError("request failed", known ? error.message : error),
          HttpServerResponse.text("internal error\n", { status: 500 })
        )
      }),
      Effect.map((response) =>
        HttpServerResponse.setHeaders(response, {
          "Tus-Resumable": TUS_VERSION,
          "Access-Control-Allow-Origin": "*",
          "Access-Control-Expose-Headers": CORS_EXPOSED_HEADERS
        })
      )
    )

  return [
    HttpRouter.route("*", basePath, route(null)),
    HttpRouter.route("*", `${basePath}/:id`, Effect.flatMap(HttpRouter.params, (params) => route(params.id ?? "")))
  ]
})

/**
 * The protocol's routes on the app's router, under `options.basePath` (`/files` by default). The mounting program
 * provides `Authorization`, `Hooks`, `Uploads`, `Locks`, `Files` and `UploadServerConfig` (`Server.layerServices`
 * builds the last four on a store).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}) => HttpRouter.addAll(make(options))
