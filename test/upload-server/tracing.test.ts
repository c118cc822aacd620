/**
 * `npm start` traced: with the OpenTelemetry variables set, a request's server span and the store operations it makes
 * reach a real OTLP/HTTP receiver (a JSON endpoint this test serves) in one trace; without them nothing is exported.
 */
import { describe, expect, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as References from "effect/References"
import * as Tracer from "effect/Tracer"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as Tracing from "../../apps/upload-server/src/Tracing.ts"
import { randomData, sha256, spawnServer, tempDir, upload, waitFor } from "./support.ts"

interface Span {
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId?: string
  readonly name: string
  readonly attributes: ReadonlyArray<{ readonly key: string; readonly value: Record<string, unknown> }>
}

/** An OTLP/HTTP receiver: collects the spans of every POST to /v1/traces (JSON encoding). */
const receiver = async () => {
  const spans: Array<Span> = []
  const requests: Array<string> = []
  const server = http.createServer((req, res) => {
    let body = ""
    req.on("data", (chunk) => body += chunk)
    req.on("end", () => {
      requests.push(`${req.method} ${req.url}`)
      if (req.url === "/v1/traces") {
        for (const resource of JSON.parse(body).resourceSpans ?? []) {
          for (const scope of resource.scopeSpans ?? []) spans.push(...scope.spans)
        }
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}")
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve()))
  }
}

const attribute = (span: Span, key: string): unknown => {
  const value = span.attributes.find((a) => a.key === key)?.value
  return value === undefined ? undefined : Object.values(value)[0]
}

describe("npm start with OpenTelemetry", () => {
  it("exports each request's span with the store operations it made as its descendants, with no keys", async () => {
    const otlp = await receiver()
    const server = await spawnServer({
      DATA_DIR: tempDir(),
      OTEL_TRACES_EXPORTER: "otlp",
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
      OTEL_BSP_SCHEDULE_DELAY: "100"
    })
    try {
      const data = randomData(64 * 1024)
      const url = await upload(data, { endpoint: server.endpoint, chunkSize: 32 * 1024 })
      expect(sha256(Buffer.from(await (await fetch(url)).arrayBuffer()))).toBe(sha256(data))
      const id = url.slice(url.lastIndexOf("/") + 1)

      const isStoreSpan = (span: Span) => attribute(span, "db.system.name") === "memory"
      const byId = () => new Map(otlp.spans.map((span) => [span.spanId, span]))
      /** The request span a span descends from (the first ancestor that is not a store or internal span). */
      const requestOf = (span: Span): Span | undefined => {
        const spans = byId()
        let current: Span | undefined = span
        while (current?.parentSpanId) {
          current = spans.get(current.parentSpanId)
          if (current && attribute(current, "http.request.method") !== undefined) return current
        }
        return undefined
      }
      const patchWithStoreCalls = () =>
        otlp.spans.filter(isStoreSpan).some((span) => {
          const request = requestOf(span)
          return request !== undefined && attribute(request, "http.request.method") === "PATCH" &&
            request.traceId === span.traceId
        })
      await waitFor("a PATCH span with store spans under it", patchWithStoreCalls, 20_000)

      const storeSpans = otlp.spans.filter(isStoreSpan)
      // The creation, the PATCHes' reads and the lock's compare-and-set release each ran in a span of their own...
      expect(storeSpans.map((span) => attribute(span, "db.operation.name"))).toEqual(
        expect.arrayContaining(["setIfAbsent", "get", "compareAndSet"])
      )
      // ...and none of them carries the upload's key or id in a name or an attribute.
      for (const span of storeSpans) {
        expect(JSON.stringify(span)).not.toContain(id)
        expect(JSON.stringify(span)).not.toContain("upload:")
      }
    } finally {
      server.process.kill("SIGTERM")
      await server.exited
      await otlp.close()
    }
  })

  it("exports nothing without the variables", async () => {
    const otlp = await receiver()
    const server = await spawnServer({ DATA_DIR: tempDir(), OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url })
    try {
      const data = randomData(16 * 1024)
      await upload(data, { endpoint: server.endpoint, chunkSize: 8 * 1024 })
    } finally {
      server.process.kill("SIGTERM")
      await server.exited
    }
    // The server has stopped (an exporter flushes on shutdown), so anything it would export has been sent.
    expect(otlp.requests).toEqual([])
    await otlp.close()
  })
})

describe("Tracing.layerFromEnv", () => {
  const tracing = (env: Record<string, string>) =>
    Effect.all({ enabled: References.TracerEnabled, tracer: Effect.tracer }).pipe(
      Effect.provide(Tracing.layerFromEnv()),
      Effect.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env })))
    )

  it.effect("turns tracing off without an exporter: the default tracer's spans would be made and never read", () =>
    Effect.gen(function*() {
      const untraced = yield* tracing({})
      expect(untraced.enabled).toBe(false)
      expect(untraced.tracer).toBe(Tracer.nativeTracer)
      const traced = yield* tracing({ OTEL_TRACES_EXPORTER: "otlp", OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:1" })
      expect(traced.enabled).toBe(true)
      expect(traced.tracer).not.toBe(Tracer.nativeTracer)
    }))
})
