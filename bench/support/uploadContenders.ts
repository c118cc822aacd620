/**
 * The upload servers `npm run bench` compares, by name; kept apart from `uploadServers.ts` so the orchestrator does
 * not load the servers themselves.
 */
export const UPLOAD_CONTENDERS = [
  "no-op server (client ceiling)",
  "effect-kv (memory)",
  "@tus/server (MemoryKvStore)",
  "effect-kv (Redis)",
  "@tus/server (RedisKvStore)"
] as const

export type UploadContender = typeof UPLOAD_CONTENDERS[number]
