/**
 * Tracing for `npm start`: Effect's OTLP exporter, configured by the usual OpenTelemetry variables and off when they
 * are unset. With it on, each request's server span and the store operations it makes (effect-kv's client spans)
 * land in one trace.
 *
 * Turn it on with `OTEL_TRACES_EXPORTER=otlp` and `OTEL_EXPORTER_OTLP_ENDPOINT` (or
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`); `OTEL_SDK_DISABLED=true` turns it off again. Spans carry no keys or values
 * (effect-kv's default), so upload ids appear only in the request's own URL attribute.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as FetchHttpClient from "effect/http/FetchHttpClient"
import * as Layer from "effect/Layer"
import * as OtlpSerialization from "effect/observability/OtlpSerialization"
import * as OtlpTracer from "effect/observability/OtlpTracer"
import * as References from "effect/References"
import * as Tracer from "effect/Tracer"

/**
 * Without an exporter, tracing off: Effect's default tracer still makes a span per request (the HTTP server's) that
 * nobody reads, which showed in the server's CPU per 16 KB PATCH (BENCHMARKS.md, "The upload server's PATCH path").
 */
const offWithoutExporter = Layer.unwrap(
  Effect.map(
    Effect.tracer,
    (tracer) => tracer === Tracer.nativeTracer ? Layer.succeed(References.TracerEnabled, false) : Layer.empty
  )
)

/**
 * The OTLP tracer (JSON over HTTP) when the environment asks for it, otherwise tracing off: Effect's `layerFromConfig`
 * reads the variables and installs no tracer without them, and then no span is made at all, so an untraced server pays
 * nothing. The exporter posts with `fetch`, since the undici client of `@effect/platform-node` crashes on Node 20.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFromEnv = (serviceName = "effect-kv-upload-server") =>
  offWithoutExporter.pipe(
    Layer.provideMerge(OtlpTracer.layerFromConfig({ resource: { serviceName } })),
    Layer.provide([FetchHttpClient.layer, OtlpSerialization.layerJson])
  )
