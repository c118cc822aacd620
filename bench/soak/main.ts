/**
 * `npm run soak`: the fault soak of `scenario.ts`, run `--runs` times (default 3; `--short` for the small version the
 * test suite runs), printed as a table and written to RELIABILITY.md.
 *
 * `npm run soak -- --runs 5`
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { FULL, runSoak, SHORT, type SoakOptions, type SoakResult } from "./scenario.ts"

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")

const { values } = parseArgs({
  options: { runs: { type: "string", default: "3" }, short: { type: "boolean", default: false } }
})
const options: SoakOptions = values.short ? SHORT : FULL
const runs = Number(values.runs)

const HEADER =
  "| run | completed & byte-identical | restarts from zero | retries | 5xx seen | orphans | time to finish |"
const row = (run: string, r: SoakResult) =>
  `| ${run} | ${r.intact} / ${r.uploads} | ${r.restartsFromZero} | ${r.retries} | ${r.serverErrors} | ${r.orphans} | ${
    r.seconds.toFixed(1)
  } s |`

const results: Array<SoakResult> = []
console.log(HEADER)
console.log("| --- | --- | --- | --- | --- | --- | --- |")
for (let run = 1; run <= runs; run++) {
  const result = await runSoak(options)
  results.push(result)
  console.log(row(String(run), result))
  for (const line of [...result.faults, ...result.errors]) console.log(`    ${line}`)
}
const sum = (f: (r: SoakResult) => number) => results.reduce((total, r) => total + f(r), 0)
const summary = `| all ${runs} | ${sum((r) => r.intact)} / ${sum((r) => r.uploads)} | ${
  sum((r) => r.restartsFromZero)
} | ${sum((r) => r.retries)} | ${sum((r) => r.serverErrors)} | ${sum((r) => r.orphans)} | ${
  Math.min(...results.map((r) => r.seconds)).toFixed(1)
}–${Math.max(...results.map((r) => r.seconds)).toFixed(1)} s |`
console.log(summary)

const mb = (bytes: number) => `${bytes / 1024 / 1024} MB`
const report = `# Reliability

Written by \`npm run soak${values.short ? " -- --short" : ""}\` (${
  new Date().toISOString().slice(0, 10)
}, Node ${process.version}, ${os.cpus().length} cores, ${runs} runs). The scenario ([bench/soak/scenario.ts](bench/soak/scenario.ts)):

- two \`npm start\` instances (A and B) on one redis-server (\`--appendonly yes --appendfsync always\`) and one
  \`DATA_DIR\`, with the default settings (store window \`UPLOAD_STORE_WAIT\` 6 s, lock lease 10 s);
- ${options.uploads} tus-js-client 4.3.1 uploads of ${mb(options.size)} in ${mb(options.chunkSize)} chunks, half
  created on A and half on B, started together, each client retrying with delays of up to 3 s;
- three faults, one after another, each fired from a client's progress callback (so a PATCH body is in flight):
  at 15 % of the bytes instance A is killed (SIGKILL) and started again on its port; at 40 % Redis is killed and
  started again ${options.redisDownMs} ms later; at 65 % instance B is paused (SIGSTOP) for ${options.pauseMs} ms;
- a run is bounded by ${options.deadlineMs / 1000} s. Afterwards every upload is downloaded and compared with what
  was sent, and the store and \`DATA_DIR\` are searched for orphans (records or files of any other upload).

"Restarts from zero" counts creations beyond each upload's first (tus-js-client drops an upload whose HEAD fails
with anything but 423 and starts again from byte 0). "Retries" counts requests the client retried (connection
refused while A restarts, 423 while a dead instance's lease runs out, and the like).

${HEADER}
| --- | --- | --- | --- | --- | --- | --- |
${results.map((r, i) => row(String(i + 1), r)).join("\n")}
${summary}

Faults as they fired, and anything that went wrong:

${
  results.map((r, i) => [`- run ${i + 1}:`, ...[...r.faults, ...r.errors].map((line) => `  - ${line}`)].join("\n"))
    .join("\n")
}
`
fs.writeFileSync(path.join(ROOT, "RELIABILITY.md"), report)
console.log("written to RELIABILITY.md")
process.exit(0)
