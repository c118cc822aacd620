/**
 * TypeScript programs the tests run as child processes (`npm start`, the SQL writers, the README's snippets), bundled
 * by esbuild with every package left to Node, as a build would ship them.
 *
 * `node --import tsx` transforms each module with esbuild too, but through loader hooks that every one of the
 * hundreds of modules a program imports passes; the bundle needs none, and starts on a third of the CPU. A run starts
 * dozens of these children on two cores, so it is the difference between a CPU-bound test run and one that is not.
 * `npm start` itself is still run through tsx by the tests that are about `npm start` (main.test.ts).
 */
import * as esbuild from "esbuild"
import * as fs from "node:fs"
import * as path from "node:path"
import { pathToFileURL } from "node:url"

const ROOT = path.dirname(path.dirname(import.meta.dirname))

/** Where bundles go: inside the repository, so that Node resolves their packages from its node_modules. */
export const BUNDLE_DIR = path.join(ROOT, "node_modules", ".cache", "effect-kv-tests")

/**
 * A module's own location, kept in the bundle: code that finds files beside it (the upload page) or resolves packages
 * from it (`createRequire(import.meta.url)`) must not see the bundle's location instead.
 */
const keepLocation: esbuild.Plugin = {
  name: "keep-import-meta",
  setup(build) {
    build.onLoad({ filter: /\.ts$/ }, (args) => {
      const source = fs.readFileSync(args.path, "utf8")
      if (!source.includes("import.meta")) return undefined
      return {
        loader: "ts",
        contents: source
          .replaceAll("import.meta.url", JSON.stringify(pathToFileURL(args.path).href))
          .replaceAll("import.meta.dirname", JSON.stringify(path.dirname(args.path)))
          .replaceAll("import.meta.filename", JSON.stringify(args.path))
      }
    })
  }
}

/**
 * Bundles `entry` (a TypeScript program) into `outfile` (ESM), with the project's tsconfig paths for effect-kv. Packages
 * are left to Node unless `options.packages` is `"bundle"` (the bench's instruction counts want one file: loading
 * hundreds of modules from disk moves the count).
 */
export const bundle = async (
  entry: string,
  outfile: string,
  options: Pick<esbuild.BuildOptions, "tsconfig" | "packages" | "external"> = {}
): Promise<string> => {
  await esbuild.build({
    entryPoints: [entry],
    outfile,
    tsconfig: path.join(ROOT, "tsconfig.json"),
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    packages: "external",
    plugins: [keepLocation],
    logLevel: "silent",
    ...options
  })
  return outfile
}
