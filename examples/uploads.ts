/**
 * The typical effect-kv program: an upload server's bookkeeping. Upload records live under `upload:<id>`; the
 * program creates some, updates one as its bytes arrive, lists them by prefix and deletes a finished one.
 *
 * The program only asks for `BaseKvStoreService`. `npm run example:records` provides the in-memory store; with `REDIS_URL` (or
 * `REDIS_CLUSTER_NODES`) set, the same program runs on Redis. Nothing in `program` changes.
 */
import { BaseKvStoreService, memoryKvStore } from "effect-kv"
import { layerRedisConfig } from "effect-kv/redis"
import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"

interface Upload {
  readonly id: string
  readonly filename: string
  readonly size: number
  readonly offset: number
}

const key = (id: string) => `upload:${id}`

const saveUpload = (upload: Upload) =>
  Effect.gen(function*() {
    const store = yield* BaseKvStoreService
    yield* store.set(key(upload.id), JSON.stringify(upload))
  })

const readUpload = (id: string) =>
  Effect.gen(function*() {
    const store = yield* BaseKvStoreService
    const json = yield* store.get(key(id))
    return json === null ? null : (JSON.parse(json) as Upload)
  })

const program = Effect.gen(function*() {
  const store = yield* BaseKvStoreService

  const uploads: ReadonlyArray<Upload> = [
    { id: "a1", filename: "holiday.mp4", size: 4_000_000, offset: 0 },
    { id: "b2", filename: "report.pdf", size: 120_000, offset: 0 },
    { id: "c3", filename: "avatar.png", size: 8_000, offset: 0 }
  ]
  for (const upload of uploads) {
    yield* saveUpload(upload)
    yield* Console.log(`created  ${key(upload.id)} ${upload.filename} (${upload.size} bytes)`)
  }

  const first = yield* readUpload("a1")
  if (first !== null) {
    yield* saveUpload({ ...first, offset: 1_048_576 })
    yield* Console.log(`updated  ${key("a1")} offset 0 -> 1048576`)
  }

  const ids = yield* store.list("upload:")
  yield* Console.log(`listed   upload: -> [${ids.join(", ")}]`)
  for (const id of ids) {
    const upload = yield* readUpload(id)
    yield* Console.log(`         ${id}: ${upload?.filename} ${upload?.offset}/${upload?.size}`)
  }

  yield* store.delete(key("c3"))
  yield* Console.log(`deleted  ${key("c3")}`)
  yield* Console.log(`listed   upload: -> [${(yield* store.list("upload:")).join(", ")}]`)

  const missing = yield* store.get(key("c3"))
  yield* Console.log(`get      ${key("c3")} -> ${missing}`)

  const refused = yield* store.set("", "x").pipe(Effect.flip)
  yield* Console.log(`refused  ${refused._tag}: ${refused.message}`)
})

/** Redis when the environment names a server, the embedded memory store otherwise. */
const KvStoreLive = Layer.unwrap(Effect.gen(function*() {
  const url = yield* Config.option(Config.String("REDIS_URL"))
  const nodes = yield* Config.option(Config.String("REDIS_CLUSTER_NODES"))
  if (Option.isNone(url) && Option.isNone(nodes)) {
    yield* Console.log("store    in-memory (set REDIS_URL to run on Redis)")
    return memoryKvStore
  }
  yield* Console.log(`store    Redis (${Option.isSome(nodes) ? "cluster" : "standalone"})`)
  return layerRedisConfig()
}))

Effect.runPromise(program.pipe(Effect.provide(KvStoreLive))).catch((error) => {
  console.error(`failed   ${error._tag ?? error.name}: ${error.message}`)
  process.exitCode = 1
})
