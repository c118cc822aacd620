/**
 * The whole report: every suite's sections in the terminal, and BENCHMARKS.md as bench/reports/template.md with its
 * `{{slots}}` filled by the suites' report modules. The prose lives in the template; this module and the suites'
 * modules make only tables and figures.
 */
import * as fs from "node:fs"
import type { Environment } from "../support/machine.ts"
import { table } from "../support/stats.ts"
import { contractSections, contractTargets } from "./contract.ts"
import { instructionSections } from "./instructions.ts"
import { memoryNotes, memorySections, memoryTargets } from "./memory.ts"
import { redisNotes, redisSections, redisTargets } from "./redis.ts"
import type { Results, Section } from "./results.ts"
import { sqlSections } from "./sql.ts"
import { targetsTable } from "./targets.ts"
import { uploadSections } from "./uploads.ts"
import { watchSections } from "./watch.ts"

const TEMPLATE = new URL("template.md", import.meta.url)

const targets = (results: Results): string =>
  targetsTable([...redisTargets(results), ...memoryTargets(results), ...contractTargets(results)])

const notes = (results: Results): Array<string> => [...redisNotes(results), ...memoryNotes(results)]

const render = (sections: ReadonlyArray<Section>, level: string): string =>
  sections.map((section) => `${level} ${section.title}\n\n${section.body}\n`).join("\n")

export const renderTerminal = (results: Results): string => {
  const observations = notes(results)
  const sections: Array<Section> = [
    ...memorySections(results),
    ...instructionSections(results),
    ...redisSections(results),
    ...contractSections(results),
    ...sqlSections(results),
    ...uploadSections(results.uploads ?? []),
    ...watchSections(results),
    { title: "Targets", body: targets(results) },
    ...(observations.length === 0 ? [] : [{ title: "Notes", body: observations.map((note) => `- ${note}`).join("\n") }])
  ]
  return `\n${render(sections, "##")}${
    results.quick
      ? "\n--quick: short samples on small keyspaces, one round; a smoke test, so read the verdicts as indicative only.\n"
      : ""
  }`
}

const environmentTable = (environment: Environment): string =>
  table(["", ""], [
    ["CPU", environment.cpu],
    ["cores (available parallelism)", String(environment.cores)],
    ["RAM", `${environment.memoryGiB.toFixed(1)} GiB`],
    ["OS", environment.os],
    ["Node.js", environment.node],
    ["npm", environment.npm],
    ["redis-server", environment.redisServer],
    ...environment.packages.map(([name, version]) => [name, version])
  ])

/** The template with every `{{slot}}` replaced; a slot without a value, or a value without a slot, is a bug. */
const fill = (template: string, slots: Record<string, string>): string => {
  const unused = new Set(Object.keys(slots))
  const filled = template.replace(/\{\{(\w+)\}\}/g, (_, name: string) => {
    const value = slots[name]
    if (value === undefined) throw new Error(`bench/reports/template.md: no value for {{${name}}}`)
    unused.delete(name)
    return value
  })
  if (unused.size > 0) throw new Error(`bench/reports/template.md has no {{${[...unused].join("}}, {{")}}}`)
  return filled
}

export const renderDocument = (results: Results): string => {
  const env = results.environment
  return fill(fs.readFileSync(TEMPLATE, "utf8"), {
    command: results.command,
    date: results.startedAt.slice(0, 10),
    wallMinutes: (results.wallMs / 60_000).toFixed(1),
    machine: `${env.cpu}, ${env.cores} cores, ${env.memoryGiB.toFixed(0)} GiB RAM, ${env.os}`,
    targets: targets(results),
    notes: notes(results).map((note) => `- ${note}`).join("\n"),
    memory: render(memorySections(results), "###"),
    instructions: render(instructionSections(results), "###"),
    redis: render(redisSections(results), "###"),
    contract: render(contractSections(results), "###"),
    sql: render(sqlSections(results), "###"),
    uploads: render(uploadSections(results.uploads ?? []), "###"),
    watch: render(watchSections(results), "###"),
    environment: environmentTable(env)
  }).replace(/\n{3,}/g, "\n\n")
}
