#!/usr/bin/env node
// The command line's entry: `npx foreman-effect`, `node bin/foreman-effect.js`,
// `deno run -A npm:foreman-effect`. Plain JavaScript that any Node from 14 on parses, so
// that a Node too old for foreman hears it in one line instead of a stack trace. It passes
// no process flags: Deno and `node bin/foreman-effect.js` ignore a `#!` line, so foreman
// runs the same however it is started.
import { existsSync } from "node:fs"

const minimum = [22, 16]

if (!("Deno" in globalThis)) {
  const version = process.versions.node
  const [major, minor] = version.split(".").map(Number)
  if (major < minimum[0] || (major === minimum[0] && minor < minimum[1])) {
    process.stderr.write(`foreman-effect needs Node >= ${minimum.join(".")} (this is Node ${version})\n`)
    process.exit(1)
  }
}

// Node 22 calls node:sqlite experimental and says so on stderr at every start; foreman relies
// on it knowingly, and a start-up refusal should stay one line.
const emitWarning = process.emitWarning
process.emitWarning = function (warning, ...rest) {
  const type = typeof rest[0] === "string" ? rest[0] : rest[0]?.type ?? warning?.name
  if (type === "ExperimentalWarning" && /SQLite/.test(String(warning?.message ?? warning))) return
  return emitWarning.call(process, warning, ...rest)
}

// A checkout runs its TypeScript sources (Node >= 22.18 and Deno strip the types); an
// installed package holds no sources, only their build in dist/ (neither runtime strips
// types under node_modules).
const sources = new URL("../src/bin.ts", import.meta.url)
const build = new URL("../dist/src/bin.js", import.meta.url)
if (!existsSync(sources)) {
  if (!existsSync(build)) {
    process.stderr.write("foreman-effect is not built: dist/ is missing (its `prepare` script builds it; was it installed with --ignore-scripts?)\n")
    process.exit(1)
  }
  await import(build.href)
} else if ("Deno" in globalThis || process.features.typescript) {
  await import(sources.href)
} else {
  process.stderr.write(
    `foreman-effect's sources need a Node that strips types, >= 22.18 (this is Node ${process.versions.node}); \`npm start\` runs the one this repository pins\n`
  )
  process.exit(1)
}
