/**
 * `npm run soak`: the fault soak of `scenario.ts` on each store (`--store`, default `redis,postgres,sqlite`), run
 * `--runs` times per store (default 3; `--short` for the small version the test suite runs), printed as a table and
 * written to RELIABILITY.md.
 *
 * `npm run soak -- --runs 5 --store redis`
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { FULL, runSoak, SHORT, type SoakResult, type SoakStore } from "./scenario.ts"

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    short: { type: "boolean", default: false },
    store: { type: "string", default: "redis,postgres,sqlite" }
  }
})
const base = values.short ? SHORT : FULL
const runs = Number(values.runs)
const stores = values.store.split(",") as Array<SoakStore>
for (const store of stores) {
  if (!["redis", "postgres", "sqlite"].includes(store)) throw new Error(`--store: unknown store ${store}`)
}
// Every instance started adds exit hooks (temp dirs, children): many runs in one process add many.
process.setMaxListeners(0)

const HEADER =
  "| store | run | completed & byte-identical | restarts from zero | retries | 5xx seen | orphans | time to finish |"
const RULE = "| --- | --- | --- | --- | --- | --- | --- | --- |"
const row = (store: string, run: string, r: ReadonlyArray<SoakResult>) => {
  const sum = (f: (r: SoakResult) => number) => r.reduce((total, result) => total + f(result), 0)
  const times = r.map((result) => result.seconds)
  const time = r.length === 1
    ? `${times[0].toFixed(1)} s`
    : `${Math.min(...times).toFixed(1)}–${Math.max(...times).toFixed(1)} s`
  return `| ${store} | ${run} | ${sum((x) => x.intact)} / ${sum((x) => x.uploads)} | ${
    sum((x) => x.restartsFromZero)
  } | ${sum((x) => x.retries)} | ${sum((x) => x.serverErrors)} | ${sum((x) => x.orphans)} | ${time} |`
}

const results: Array<{ store: SoakStore; result: SoakResult }> = []
console.log(HEADER)
console.log(RULE)
for (const store of stores) {
  for (let run = 1; run <= runs; run++) {
    const result = await runSoak({ ...base, store })
    results.push({ store, result })
    console.log(row(store, String(run), [result]))
    for (const line of [...result.faults, ...result.errors, ...result.notes]) console.log(`    ${line}`)
  }
}
const summaries = stores.map((store) =>
  row(store, `all ${runs}`, results.filter((r) => r.store === store).map((r) => r.result))
)
for (const line of summaries) console.log(line)

const mb = (bytes: number) => `${bytes / 1024 / 1024} MB`
const report = `# Reliability

Written by \`npm run soak${process.argv.slice(2).length > 0 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}\` (${
  new Date().toISOString().slice(0, 10)
}, Node ${process.version}, ${os.cpus().length} cores). The scenario ([bench/soak/scenario.ts](bench/soak/scenario.ts)):

- two \`npm start\` instances (A and B) on one store and one \`DATA_DIR\`, with the default settings (store window
  \`UPLOAD_STORE_WAIT\` 6 s, lease 3 s renewed every second while a request runs). The store: redis-server with \`--appendonly yes --appendfsync always\`;
  PostgreSQL (\`DATABASE_URL\`); or one SQLite file (\`SQLITE_FILE\`) shared by both;
- ${base.uploads} tus-js-client 4.3.1 uploads of ${mb(base.size)} in ${mb(base.chunkSize)} chunks, half created on
  A and half on B, started together, each client retrying with delays of up to 3 s;
- three faults, one after another, each fired from a client's progress callback, so a PATCH body is in flight:
  - at 15 % of the bytes instance A is killed (SIGKILL) and started again on its port;
  - at 40 % the store fails: Redis is killed and started again ${base.redisDownMs} ms later; PostgreSQL is
    restarted (fast shutdown, then started again); on SQLite, which has no server, instance B is killed (SIGKILL)
    and started again instead;
  - at 65 % instance B is paused (SIGSTOP) for ${base.pauseMs} ms, longer than the idle timeout of its open files;
- a run is bounded by ${base.deadlineMs / 1000} s. Afterwards every upload is downloaded and compared with what was
  sent, and the store and \`DATA_DIR\` are searched for orphans (records or files of any other upload).

"Restarts from zero" counts creations beyond each upload's first (tus-js-client drops an upload whose HEAD fails
with anything but 423 and starts it again from byte 0). "Retries" counts requests the client retried: refused
connections while an instance restarts, 423 while a dead instance's lease runs out, and the like. "Time to finish"
runs from the start of the uploads to the last one's end.

${HEADER}
${RULE}
${results.map(({ result, store }, i) => row(store, String(i % runs + 1), [result])).join("\n")}
${summaries.join("\n")}

The faults as they fired, and anything that went wrong:

${
  results.map(({ result, store }, i) =>
    [
      `- ${store} run ${i % runs + 1}:`,
      ...[...result.faults, ...result.errors, ...result.notes].map((line) => `  - ${line}`)
    ].join(
      "\n"
    )
  ).join("\n")
}
`
fs.writeFileSync(path.join(ROOT, "RELIABILITY.md"), report)
console.log("written to RELIABILITY.md")
process.exit(0)
