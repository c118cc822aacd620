/** Metrics that `make` itself updates, on cold paths only. */
import * as Metric from "effect/Metric"

/** Attempts of the derived `modify` that lost the race for their key. */
export const modifyRetries: Metric.Counter<number> = Metric.counter("effect_kv.modify.retries", {
  description: "Attempts of modify that lost the race for their key",
  incremental: true
})
