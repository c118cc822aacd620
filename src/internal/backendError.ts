/**
 * The `KvBackendError` every backend builds, with one message format: the operation, the key when there is one, and
 * what went wrong. Shared by the Redis and SQL stores so their errors read alike.
 *
 * @internal
 */
import { type BackendReason, KvBackendError, type Operation } from "../BaseKvStore.ts"

export const backendError = (
  operation: Operation | "connect",
  key: string | undefined,
  reason: BackendReason,
  detail: string,
  cause?: unknown
) =>
  new KvBackendError({
    operation,
    key,
    reason,
    message: `${operation}${key === undefined ? "" : `(${JSON.stringify(key)})`}: ${detail}`,
    ...(cause === undefined ? {} : { cause })
  })
