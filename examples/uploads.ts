/**
 * The typical effect-kv program: an upload server's bookkeeping. Upload records live under `upload:<id>`, typed with a
 * Schema; the program creates some in one batch, advances one's offset atomically as its bytes arrive (as concurrent
 * requests would), takes a lock with a lease, pages through the records and deletes a finished one.
 *
 * The program only asks for `BaseKvStoreService`. `npm run example:records` provides the in-memory store; with
 * `REDIS_URL` (or `REDIS_CLUSTER_NODES`) set, the same program runs on Redis, under `REDIS_KEY_PREFIX` (default
 * `example:`), and removes what it wrote when it ends. Nothing in `program` changes.
 */
import { BaseKvStoreService, memoryKvStore, toSchemaStore } from "effect-kv"
import { layerRedisConfig } from "effect-kv/redis"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"

const Upload = Schema.Struct({
  id: Schema.String,
  filename: Schema.String,
  size: Schema.Int,
  offset: Schema.Int
})
type Upload = typeof Upload.Type

const key = (id: string) => `upload:${id}`

const program = Effect.gen(function*() {
  const store = yield* BaseKvStoreService
  const uploads = toSchemaStore(store, Upload)

  const created: ReadonlyArray<Upload> = [
    { id: "a1", filename: "holiday.mp4", size: 4_000_000, offset: 0 },
    { id: "b2", filename: "report.pdf", size: 120_000, offset: 0 },
    { id: "c3", filename: "avatar.png", size: 8_000, offset: 0 }
  ]
  // One batch: one round trip on Redis, and nothing written if any record is invalid.
  yield* uploads.setMany(created.map((upload) => [key(upload.id), upload]), { ttl: "1 hour" })
  yield* Console.log(`created  ${created.map((upload) => key(upload.id)).join(", ")} (expire in 1 hour)`)

  // Ten chunks of the same upload arriving at once: modify is atomic, so no offset advance is lost.
  yield* Effect.forEach(
    Array.from({ length: 10 }),
    () =>
      uploads.modify(key("a1"), (upload) => upload && { ...upload, offset: upload.offset + 65_536 }, { keepTtl: true }),
    { concurrency: "unbounded", discard: true }
  )
  yield* Console.log(
    `advanced ${key("a1")} by 10 concurrent chunks -> offset ${(yield* uploads.get(key("a1")))?.offset}`
  )

  // A lock with a lease: whoever holds it may write the upload's bytes; it frees itself if its holder dies.
  const owner = "instance-1"
  const locked = yield* store.setIfAbsent("lock:a1", owner, { ttl: "30 seconds" })
  const again = yield* store.setIfAbsent("lock:a1", "instance-2", { ttl: "30 seconds" })
  yield* Console.log(`lock     lock:a1 taken by ${owner}: ${locked}; by instance-2 meanwhile: ${again}`)
  yield* Console.log(`unlock   lock:a1 released by its owner: ${yield* store.compareAndSet("lock:a1", owner, null)}`)

  const page = yield* uploads.listPage("upload:", { limit: 2 })
  yield* Console.log(`page     upload: -> [${page.keys.join(", ")}]${page.cursor === null ? "" : " and more"}`)
  const records = yield* uploads.getMany((yield* uploads.list("upload:")).map(key))
  for (const upload of records) {
    yield* Console.log(`         ${upload?.id}: ${upload?.filename} ${upload?.offset}/${upload?.size}`)
  }

  yield* uploads.delete(key("c3"))
  yield* Console.log(`deleted  ${key("c3")}; count upload: -> ${yield* uploads.count("upload:")}`)

  const refused = yield* uploads.set(key("d4"), { id: "d4", filename: "x", size: -0.5, offset: 0 }).pipe(Effect.flip)
  yield* Console.log(`refused  ${refused._tag}: ${refused.message.split("\n")[0]}`)

  yield* Console.log(`cleared  ${yield* store.clear("")} keys`)
})

/** Redis when the environment names a server, the embedded memory store otherwise. */
const KvStoreLive = Layer.unwrap(Effect.gen(function*() {
  const url = yield* Config.option(Config.String("REDIS_URL"))
  const nodes = yield* Config.option(Config.String("REDIS_CLUSTER_NODES"))
  if (Option.isNone(url) && Option.isNone(nodes)) {
    yield* Console.log("store    in-memory (set REDIS_URL to run on Redis)")
    return memoryKvStore
  }
  const prefix = yield* Config.withDefault(Config.String("REDIS_KEY_PREFIX"), "example:")
  yield* Console.log(`store    Redis (${Option.isSome(nodes) ? "cluster" : "standalone"}), keys under ${prefix}`)
  // The example's keys stay in a namespace of their own (REDIS_KEY_PREFIX, by default "example:"), which its final
  // clear("") empties again: nothing outside it is read or written.
  return layerRedisConfig().pipe(
    Layer.provide(ConfigProvider.layerAdd(ConfigProvider.fromUnknown({ REDIS_KEY_PREFIX: prefix })))
  )
}))

Effect.runPromise(program.pipe(Effect.provide(KvStoreLive))).catch((error) => {
  console.error(`failed   ${error._tag ?? error.name}: ${error.message}`)
  process.exitCode = 1
})
