/**
 * The server's log: every request (Effect's `HttpMiddleware.logger`, which `HttpRouter.serve` installs) and every
 * warning, through Effect's logger, as logfmt lines written to stdout in batches.
 *
 * Why batched logfmt rather than the default pretty console logger: a small PATCH costs the server little, and the
 * pretty logger's `util.inspect` plus one synchronous write per line showed as a large share of its CPU profile at
 * small chunks (`--cpu-prof` under `bench/uploads.ts`). One write per 50 ms keeps the log live to a human and off the
 * hot path. The batch is flushed when the server stops.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"

/**
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<never> = Logger.layer([
  Logger.batched(Logger.formatLogFmt, {
    window: "50 millis",
    flush: (lines) =>
      Effect.sync(() => {
        process.stdout.write(lines.join("\n") + "\n")
      })
  })
])
