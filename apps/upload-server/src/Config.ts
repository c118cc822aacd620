/**
 * The upload server's settings, read once at start through Effect `Config` so that a bad value stops the program
 * with the variable's name and what was wrong, instead of surfacing later as a strange response.
 *
 * | variable               | default            | meaning                                                     |
 * | ---------------------- | ------------------ | ----------------------------------------------------------- |
 * | `PORT`                 | `1080`             | TCP port (`0`: any free port; the log line says which)      |
 * | `HOST`                 | `127.0.0.1`        | interface to listen on                                      |
 * | `DATA_DIR`             | `./data/uploads`   | where the bytes of the uploads are written                  |
 * | `MAX_SIZE`             | none               | largest upload in bytes (`Tus-Max-Size`), e.g. `1073741824` |
 * | `UPLOAD_EXPIRES_AFTER` | `24 hours`         | an unfinished upload not touched for this long expires      |
 * | `UPLOAD_JWT_SECRET`    | none               | bearer JWTs (HS256) required; `sub` is the upload's owner   |
 * | `UPLOAD_JWKS_URL`      | none               | bearer JWTs signed by a key of this JWKS (RS256, ES256, …)  |
 * | `UPLOAD_ALLOW_ANONYMOUS` | `false`          | without a JWT setting, listen anonymously on a public host  |
 * | `UPLOAD_CREATES_PER_MINUTE` | none          | upload creations per owner per minute, across instances     |
 * | `UPLOAD_BYTES_PER_OWNER` | none            | bytes of uploads (finished or not) one owner may hold       |
 * | `UPLOAD_STORE_WAIT`    | `6 seconds`        | how long requests wait out a store outage before 503        |
 * | `UPLOAD_STORE_MAX_WAITING` | `1000`         | store calls that may wait at once; past it, 503 at once     |
 * | `UPLOAD_ABANDONED_AFTER` | `1 hour`         | an unfinished upload superseded by a new one of the same file, without bytes for this long, is removed |
 * | `UPLOAD_SYNC_WRITE_BYTES` | `65536`         | chunks up to this size are written from the event loop (`Files.ts`); `0`: all in the thread pool |
 *
 * Tests build the same service with `layer({...})`, without the environment.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"
import * as Path from "node:path"

/**
 * The settings of one server instance.
 *
 * @since 0.1.0
 * @category models
 */
export interface ServerSettings {
  readonly port: number
  readonly host: string
  /** Absolute directory holding one file per upload, named by its id. */
  readonly dataDir: string
  /** The largest upload accepted, in bytes; `null`: no limit but the disk. */
  readonly maxSize: number | null
  /** How long an unfinished upload lives after its last write. */
  readonly expiresAfter: Duration.Duration
  /** How often the cleanup fiber looks for files without a record. */
  readonly cleanupInterval: Duration.Duration
  /** Bytes of uploads, finished or not, one owner may hold across instances (`Quota.ts`); `null`: no quota. */
  readonly bytesPerOwner: number | null
  /** How long a PATCH's lease on its upload lasts without renewal (a crashed instance blocks it this long). */
  readonly lockTtl: Duration.Duration
  /** How long in-flight requests may run after SIGTERM before they are cut. */
  readonly shutdownTimeout: Duration.Duration
  /** How long after a store outage began a request may still wait for the store (`StoreOutages.ts`). */
  readonly storeWait: Duration.Duration
  /** How many store calls may wait out an outage at once; the others fail at once. */
  readonly storeMaxWaiting: number
  /**
   * How long an unfinished upload may go without bytes, once a newer upload of the same file (same owner, length and
   * metadata) exists, before the cleanup removes it: the upload a client dropped when it started over.
   */
  readonly abandonedAfter: Duration.Duration
  /**
   * Chunks of a request body up to this many bytes are written from the event loop rather than in Node's thread pool
   * (`Files.ts`); `0` writes every chunk in the thread pool, as a data directory on a slow or network file system may
   * want.
   */
  readonly syncWriteBytes: number
}

/**
 * @since 0.1.0
 * @category services
 */
export class UploadServerConfig extends Context.Service<UploadServerConfig, ServerSettings>()(
  "@effect-kv/upload-server/UploadServerConfig"
) {}

const defaults = {
  port: 1080,
  host: "127.0.0.1",
  dataDir: "data/uploads",
  expiresAfter: Duration.hours(24),
  lockTtl: Duration.seconds(3),
  shutdownTimeout: Duration.seconds(10),
  // A Redis restart takes a second or two and the client up to two more to reconnect; still well inside the 10 s
  // after which a request must have been answered.
  storeWait: Duration.seconds(6),
  storeMaxWaiting: 1000,
  abandonedAfter: Duration.hours(1),
  // A body arrives in socket reads of at most 64 KiB: every chunk of a healthy disk's PATCH is written on the loop.
  syncWriteBytes: 64 * 1024
} as const

/**
 * Cleanup runs a few times per expiry period, and at least every 5 seconds, so that an expired upload's bytes are
 * gone within a few seconds of its record.
 */
const cleanupIntervalFor = (expiresAfter: Duration.Duration): Duration.Duration =>
  Duration.min(Duration.seconds(5), Duration.max(Duration.millis(200), Duration.divideUnsafe(expiresAfter, 4)))

/**
 * Settings from explicit values, with the defaults for the rest.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Partial<ServerSettings> = {}): ServerSettings => {
  const expiresAfter = options.expiresAfter ?? defaults.expiresAfter
  return {
    port: options.port ?? defaults.port,
    host: options.host ?? defaults.host,
    dataDir: Path.resolve(options.dataDir ?? defaults.dataDir),
    maxSize: options.maxSize ?? null,
    bytesPerOwner: options.bytesPerOwner ?? null,
    expiresAfter,
    cleanupInterval: options.cleanupInterval ?? cleanupIntervalFor(expiresAfter),
    lockTtl: options.lockTtl ?? defaults.lockTtl,
    shutdownTimeout: options.shutdownTimeout ?? defaults.shutdownTimeout,
    storeWait: options.storeWait ?? defaults.storeWait,
    storeMaxWaiting: options.storeMaxWaiting ?? defaults.storeMaxWaiting,
    abandonedAfter: options.abandonedAfter ?? defaults.abandonedAfter,
    syncWriteBytes: options.syncWriteBytes ?? defaults.syncWriteBytes
  }
}

/** A port, or 0 for any free one: `Config.Port` refuses 0, which tests and a second local instance want. */
const port = Config.schema(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 65535 })), "PORT")

const maxSize = Config.schema(Schema.Int.check(Schema.isGreaterThan(0)), "MAX_SIZE")

/** Zero or an infinite age would remove everything at once or nothing ever: both are typos, refused. */
const positiveDuration = (name: string, example: string) =>
  Config.schema(
    Schema.DurationFromString.check(
      Schema.makeFilter((value: Duration.Duration) =>
        (Duration.isFinite(value) && Duration.isGreaterThanOrEqualTo(value, Duration.millis(1))) ||
        `Expected a finite duration of at least 1 millisecond, such as "${example}"`
      )
    ),
    name
  )

const expiresAfter = positiveDuration("UPLOAD_EXPIRES_AFTER", "24 hours")

const abandonedAfter = positiveDuration("UPLOAD_ABANDONED_AFTER", "1 hour")

/** An infinite window would let requests queue behind a dead store for ever; 0 answers 503 at once. */
const storeWait = Config.schema(
  Schema.DurationFromString.check(
    Schema.makeFilter((value: Duration.Duration) =>
      Duration.isFinite(value) || "Expected a finite duration, such as \"6 seconds\" (0: no waiting)"
    )
  ),
  "UPLOAD_STORE_WAIT"
)

const storeMaxWaiting = Config.schema(Schema.Int.check(Schema.isGreaterThan(0)), "UPLOAD_STORE_MAX_WAITING")

const syncWriteBytes = Config.schema(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)), "UPLOAD_SYNC_WRITE_BYTES")

/**
 * The settings as read from the environment.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromEnv: Config.Config<ServerSettings> = Config.all({
  port: Config.withDefault(port, defaults.port),
  host: Config.withDefault(Config.NonEmptyString("HOST"), defaults.host),
  dataDir: Config.withDefault(Config.NonEmptyString("DATA_DIR"), defaults.dataDir),
  maxSize: Config.option(maxSize),
  bytesPerOwner: Config.option(Config.schema(Schema.Int.check(Schema.isGreaterThan(0)), "UPLOAD_BYTES_PER_OWNER")),
  expiresAfter: Config.withDefault(expiresAfter, defaults.expiresAfter),
  storeWait: Config.withDefault(storeWait, defaults.storeWait),
  storeMaxWaiting: Config.withDefault(storeMaxWaiting, defaults.storeMaxWaiting),
  abandonedAfter: Config.withDefault(abandonedAfter, defaults.abandonedAfter),
  syncWriteBytes: Config.withDefault(syncWriteBytes, defaults.syncWriteBytes)
}).pipe(
  Config.map(({ bytesPerOwner, maxSize, ...rest }) =>
    make({ ...rest, maxSize: Option.getOrNull(maxSize), bytesPerOwner: Option.getOrNull(bytesPerOwner) })
  )
)

/**
 * How `npm start` authenticates requests.
 *
 * @since 0.1.0
 * @category models
 */
export type AuthSettings =
  | { readonly _tag: "Hs256"; readonly secret: Redacted.Redacted<string> }
  | { readonly _tag: "Jwks"; readonly url: URL }
  | { readonly _tag: "Anonymous"; readonly allowedOnAnyHost: boolean }

const jwksUrl = Config.schema(Schema.URLFromString, "UPLOAD_JWKS_URL")

/**
 * The authentication settings as read from the environment. Both JWT settings at once is refused: which one wins
 * would be a guess.
 *
 * @since 0.1.0
 * @category constructors
 */
export const authFromEnv: Config.Config<AuthSettings> = Config.all({
  secret: Config.option(Config.Redacted("UPLOAD_JWT_SECRET")),
  jwks: Config.option(jwksUrl),
  allowAnonymous: Config.withDefault(Config.Boolean("UPLOAD_ALLOW_ANONYMOUS"), false)
}).pipe(Config.mapEffect(({ allowAnonymous, jwks, secret }): Effect.Effect<AuthSettings, Config.ConfigError> => {
  const refused = (message: string) =>
    Effect.fail(new Config.ConfigError(new Schema.SchemaError(new SchemaIssue.Forbidden({ message }))))
  if (Option.isSome(secret) && Option.isSome(jwks)) return refused("set UPLOAD_JWT_SECRET or UPLOAD_JWKS_URL, not both")
  if (Option.isSome(secret)) {
    // A short shared secret can be guessed offline from any one token: HS256 wants at least 256 bits.
    return Redacted.value(secret.value).length < 32
      ? refused("UPLOAD_JWT_SECRET must be at least 32 characters (256 bits for HS256)")
      : Effect.succeed({ _tag: "Hs256", secret: secret.value })
  }
  if (Option.isSome(jwks)) return Effect.succeed({ _tag: "Jwks", url: jwks.value })
  return Effect.succeed({ _tag: "Anonymous", allowedOnAnyHost: allowAnonymous })
}))

/**
 * `UPLOAD_CREATES_PER_MINUTE`: how many uploads one owner may create per minute, shared by every instance on the
 * store; none when unset.
 *
 * @since 0.1.0
 * @category constructors
 */
export const createsPerMinuteFromEnv: Config.Config<Option.Option<number>> = Config.option(
  Config.schema(Schema.Int.check(Schema.isGreaterThan(0)), "UPLOAD_CREATES_PER_MINUTE")
)

/**
 * Whether `host` only accepts connections from this machine.
 *
 * @since 0.1.0
 * @category models
 */
export const isLoopback = (host: string): boolean =>
  host === "localhost" || host === "::1" || host === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(host)

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Partial<ServerSettings> = {}): Layer.Layer<UploadServerConfig> =>
  Layer.sync(UploadServerConfig, () => make(options))

/**
 * @since 0.1.0
 * @category layers
 */
export const layerFromEnv: Layer.Layer<UploadServerConfig, Config.ConfigError> = Layer.effect(
  UploadServerConfig,
  fromEnv
)
