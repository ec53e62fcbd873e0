// The release build: src/ and plugins/ to JavaScript with declarations and source maps in
// dist/ (tsconfig.build.json), from a clean dist/. With --if-stale (npm's `prepare`, which npm
// also runs when `npx foreman-effect` is started inside a clone) it does nothing when dist/
// was built from exactly the sources and settings there are now: a hash of them is kept in
// dist/.sources-hash.
import { createHash } from "node:crypto"
import { spawnSync } from "node:child_process"
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("..", import.meta.url))
const stamp = join(root, "dist", ".sources-hash")

const sources = () =>
  [
    ...["src", "plugins"].flatMap((dir) =>
      readdirSync(join(root, dir), { recursive: true, encoding: "utf8" }).filter((f) => /\.(m|c)?tsx?$|\.json$/.test(f)).map((f) => join(dir, f))
    ),
    "tsconfig.json",
    "tsconfig.build.json",
    "package.json",
    "package-lock.json"
  ].filter((file) => existsSync(join(root, file))).sort()

const hash = () => {
  const digest = createHash("sha256")
  for (const file of sources()) digest.update(`${file}\0`).update(readFileSync(join(root, file))).update("\0")
  return digest.digest("hex")
}

const current = hash()
if (process.argv.includes("--if-stale") && existsSync(stamp) && readFileSync(stamp, "utf8") === current) {
  // On stderr: `npm pack --json` passes a script's stdout into its JSON.
  console.error("dist/ is up to date with the sources")
  process.exit(0)
}
// The stamp first: a build stopped half-way must not leave a dist/ that passes for built.
rmSync(stamp, { force: true })
rmSync(join(root, "dist"), { recursive: true, force: true })
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc")
const built = spawnSync(process.execPath, [tsc, "-p", join(root, "tsconfig.build.json")], { stdio: "inherit" })
if (built.status !== 0) process.exit(built.status ?? 1)
writeFileSync(stamp, current)
