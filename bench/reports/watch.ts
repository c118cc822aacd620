/**
 * The change-stream suite's tables (`bench/watch.ts`): write-to-event latency, events per second and the cost one
 * watcher adds to sequential writes on each backend, and the server's cost per `SET` of each way a Redis watch could
 * learn of writes. Ratios are shown as the median over rounds with the range of the rounds.
 */
import { table } from "../support/stats.ts"
import type { MechanismResult } from "../watch.ts"
import type { Results, Section } from "./results.ts"

/** The middle of the sorted values (the upper one of an even count), as the rounds' summary. */
const middle = (xs: ReadonlyArray<number>): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

/** `ys` against `xs` round by round: 1.23× (1.10-1.40). */
const ratios = (xs: ReadonlyArray<number>, ys: ReadonlyArray<number>): string => {
  const each = xs.map((x, i) => x / ys[i])
  return `${middle(each).toFixed(2)}× (${Math.min(...each).toFixed(2)}-${Math.max(...each).toFixed(2)})`
}

const mechanismTable = (result: MechanismResult): string =>
  table(["how the watch learns of a SET", "server ns per SET", "× plain SET", "× notifications"], [
    ["plain SET, no notifications", middle(result.plain).toFixed(0), "", ""],
    [
      "SET with keyspace notifications (what watch uses)",
      middle(result.notifications).toFixed(0),
      ratios(result.notifications, result.plain),
      ""
    ],
    [
      "script: SET + PUBLISH (publish on write)",
      middle(result.publishing).toFixed(0),
      ratios(result.publishing, result.plain),
      ratios(result.publishing, result.notifications)
    ]
  ], ["l", "r", "r", "r"])

export const watchSections = (results: Results): Array<Section> => {
  const out: Array<Section> = []
  const rows = results.watch ?? []
  if (rows.length > 0) {
    out.push({
      title: "Watch: write-to-event latency, events per second, cost of one watcher on sequential sets",
      body: table(
        ["backend", "latency p50", "latency p99", "events/s", "set with watcher / without", "ns per set"],
        rows.map((row) => [
          row.backend,
          `${row.latencyP50Us.toFixed(0)} µs`,
          `${row.latencyP99Us.toFixed(0)} µs`,
          Math.round(row.eventsPerSecond).toLocaleString("en-US"),
          ratios(row.watchedNs, row.plainNs),
          `${middle(row.plainNs).toFixed(0)} → ${middle(row.watchedNs).toFixed(0)}`
        ]),
        ["l", "r", "r", "r", "r", "r"]
      )
    })
  }
  if (results.watchMechanism !== undefined) {
    out.push({
      title: "Watch on Redis: the server's cost per SET (64 in flight, one subscriber)",
      body: mechanismTable(results.watchMechanism)
    })
  }
  return out
}
