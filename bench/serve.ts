/**
 * `node bench/serve.ts fake '<FakeTargetOptions as JSON>'`, `node bench/serve.ts bare` or
 * `node bench/serve.ts proxy '{"target": "<url>"}'`: one server in its own process (see processes.ts). Prints `{"url": ...}` once listening
 * and exits when its parent closes stdin or sends SIGTERM, so it never outlives a run.
 */
import { startFakeTarget } from "../test/support/FakeTarget.ts"
import { startBareServer } from "./bare.ts"
import { startMinimalProxy } from "./proxy.ts"

const [kind, options = "{}"] = process.argv.slice(2)
const server = kind === "fake"
  ? await startFakeTarget(JSON.parse(options))
  : kind === "bare"
  ? await startBareServer()
  : kind === "proxy"
  ? await startMinimalProxy((JSON.parse(options) as { target: string }).target)
  : undefined
if (server === undefined) {
  process.stderr.write(`usage: serve.ts fake|bare|proxy [options-json]\n`)
  process.exit(2)
}
process.stdout.write(JSON.stringify({ url: server.url }) + "\n")

const stop = async () => {
  await server.close()
  process.exit(0)
}
process.stdin.on("end", stop).resume()
process.on("SIGTERM", stop)
