/**
 * What the numbers were measured on: machine, OS, runtimes and the exact package versions, read from the installed
 * packages rather than package.json ranges.
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

export interface Environment {
  readonly cpu: string
  readonly cores: number
  readonly memoryGiB: number
  readonly os: string
  readonly node: string
  readonly npm: string
  readonly redisServer: string
  readonly packages: ReadonlyArray<readonly [string, string]>
}

const firstLine = (run: () => string): string => {
  try {
    return run().trim().split("\n")[0] ?? "unknown"
  } catch {
    return "unknown"
  }
}

const osName = (): string => {
  const release = firstLine(() =>
    fs.readFileSync("/etc/os-release", "utf8").split("\n").find((line) => line.startsWith("PRETTY_NAME=")) ?? ""
  )
  const name = release.replace(/^PRETTY_NAME=/, "").replace(/^"|"$/g, "")
  return `${name === "" ? os.type() : name} (${os.type()} ${os.release()}, ${os.arch()})`
}

/** The CPU as /proc/cpuinfo describes it (os.cpus() only says "AMD EPYC" on this VM, with no clock). */
const cpuModel = (): string => {
  const model = os.cpus()[0]?.model.trim() ?? "unknown"
  try {
    const first = fs.readFileSync("/proc/cpuinfo", "utf8").split("\n\n")[0]
    const field = (name: string) => first.match(new RegExp(`^${name}\\s*: (.*)$`, "m"))?.[1]?.trim()
    const details = [
      field("cpu family") !== undefined ? `family ${field("cpu family")}, model ${field("model")}` : undefined,
      field("cpu MHz") !== undefined ? `${(Number(field("cpu MHz")) / 1000).toFixed(2)} GHz` : undefined,
      field("cache size") !== undefined ? `${field("cache size")} cache` : undefined,
      / hypervisor( |$)/.test(field("flags") ?? "") ? "virtual machine" : undefined
    ].filter((detail) => detail !== undefined)
    return `${field("model name") ?? model} (${details.join(", ")})`
  } catch {
    return model
  }
}

/**
 * The version of `name` as Node resolves it from the directory `from`: the nearest node_modules upwards holds it, so
 * a package the bench workspace keeps for itself and one hoisted to the root are both found.
 */
const versionOf = (from: string, name: string): string => {
  for (let dir = from;; dir = path.dirname(dir)) {
    try {
      return JSON.parse(fs.readFileSync(path.join(dir, "node_modules", name, "package.json"), "utf8")).version
    } catch {
      if (path.dirname(dir) === dir) return "not installed"
    }
  }
}

/** Where `name` is installed as seen from `from` (see `versionOf`), or `from` itself when it is not. */
const dirOf = (from: string, name: string): string => {
  for (let dir = from;; dir = path.dirname(dir)) {
    const candidate = path.join(dir, "node_modules", name)
    if (fs.existsSync(candidate)) return candidate
    if (path.dirname(dir) === dir) return from
  }
}

/** The machine, and the packages as the bench in `bench` (its workspace folder) resolves them. */
export const environment = (bench: string): Environment => {
  // `npm run` says which npm started us; otherwise ask npm (its warnings go to stderr and are dropped).
  const agent = process.env.npm_config_user_agent?.match(/npm\/(\S+)/)?.[1]
  return {
    cpu: cpuModel(),
    cores: os.availableParallelism(),
    memoryGiB: os.totalmem() / 2 ** 30,
    os: osName(),
    node: process.version,
    npm: agent ?? firstLine(() => execFileSync("npm", ["--version"], { encoding: "utf8", stdio: "pipe" })),
    redisServer: firstLine(() => execFileSync("redis-server", ["--version"], { encoding: "utf8" })),
    packages: [
      ["effect", versionOf(bench, "effect")],
      ["sorted-btree", versionOf(bench, "sorted-btree")],
      ["redis (node-redis)", versionOf(bench, "redis")],
      ["@redis/client under redis", versionOf(dirOf(bench, "redis"), "@redis/client")],
      ["ioredis", versionOf(bench, "ioredis")],
      ["keyv", versionOf(bench, "keyv")],
      ["@keyv/redis", versionOf(bench, "@keyv/redis")],
      ["@redis/client under @keyv/redis", versionOf(dirOf(bench, "@keyv/redis"), "@redis/client")],
      ["unstorage", versionOf(bench, "unstorage")],
      ["mitata", versionOf(bench, "mitata")],
      ["tsx", versionOf(bench, "tsx")]
    ]
  }
}
