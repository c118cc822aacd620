/**
 * Formats (or, with `--check`, checks) the project's TypeScript and JavaScript with dprint's TypeScript plugin,
 * configured by `dprint.json`.
 *
 * It runs the plugin's Wasm through `@dprint/formatter` instead of the `dprint` CLI: the CLI installs a native binary
 * per platform from optional dependencies, and a registry mirror that lacks one of them makes `npm ci` refuse the
 * lockfile. The Wasm runs everywhere Node does.
 */
import { createFromBuffer } from "@dprint/formatter"
import { getPath } from "@dprint/typescript"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"

const check = process.argv.includes("--check")
const { typescript, excludes: _excludes, includes: _includes, plugins: _plugins, ...global } = JSON.parse(
  fs.readFileSync("dprint.json", "utf8")
)

const formatter = createFromBuffer(fs.readFileSync(getPath()))
formatter.setConfig(global, typescript)

// Tracked files and new ones git does not ignore: node_modules, dist and the like never qualify.
const files = execFileSync(
  "git",
  ["ls-files", "--cached", "--others", "--exclude-standard", "--", "*.ts", "*.mts", "*.cts", "*.js", "*.mjs"],
  { encoding: "utf8" }
).split("\n").filter((file) => file !== "" && fs.existsSync(file))

const unformatted: Array<string> = []
for (const file of files) {
  const text = fs.readFileSync(file, "utf8")
  const formatted = formatter.formatText({ filePath: file, fileText: text })
  if (formatted === text) continue
  unformatted.push(file)
  if (!check) fs.writeFileSync(file, formatted)
}

if (check && unformatted.length > 0) {
  console.error(`Not formatted (run npm run format):\n${unformatted.map((file) => `  ${file}`).join("\n")}`)
  process.exitCode = 1
} else {
  console.log(
    `${check ? "Checked" : "Formatted"} ${files.length} files${check ? "" : `, ${unformatted.length} changed`}`
  )
}
