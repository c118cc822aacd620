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

const versionOf = (root: string, name: string): string => {
  try {
    return JSON.parse(fs.readFileSync(path.join(root, "node_modules", name, "package.json"), "utf8")).version
  } catch {
    return "not installed"
  }
}

export const environment = (root: string): Environment => {
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
      ["effect", versionOf(root, "effect")],
      ["sorted-btree", versionOf(root, "sorted-btree")],
      ["redis (node-redis)", versionOf(root, "redis")],
      ["@redis/client", versionOf(root, "@redis/client")],
      ["ioredis", versionOf(root, "ioredis")],
      ["keyv", versionOf(root, "keyv")],
      ["@keyv/redis", versionOf(root, "@keyv/redis")],
      [
        "@redis/client under @keyv/redis",
        versionOf(path.join(root, "node_modules", "@keyv", "redis"), "@redis/client")
      ],
      ["unstorage", versionOf(root, "unstorage")],
      ["mitata", versionOf(root, "mitata")],
      ["tsx", versionOf(root, "tsx")]
    ]
  }
}
