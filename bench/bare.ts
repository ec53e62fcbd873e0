/**
 * The throughput baseline: a bare `node:http` server that answers `/api/tags` and
 * `/api/generate` with fixed bytes (taken once from the fake Ollama, so both sides send the
 * same bytes). No routing library, no JSON work, no upstream: the most this machine's Node
 * can serve, which foreman's throughput is a fraction of.
 */
import * as http from "node:http"
import { startFakeTarget } from "../test/support/FakeTarget.ts"

interface Canned {
  readonly contentType: string
  readonly body: Buffer
}

/** One `/api/tags` and one non-streamed `/api/generate` reply of the zero-delay fake. */
const capture = async (): Promise<Record<string, Canned>> => {
  const fake = await startFakeTarget({})
  try {
    const take = async (path: string, init?: RequestInit): Promise<Canned> => {
      const response = await fetch(fake.url + path, init)
      if (response.status !== 200) throw new Error(`fake ${path}: HTTP ${response.status}`)
      return { contentType: response.headers.get("content-type") ?? "application/json", body: Buffer.from(await response.arrayBuffer()) }
    }
    return {
      "/api/tags": await take("/api/tags"),
      "/api/generate": await take("/api/generate", { method: "POST", body: GENERATE_BODY })
    }
  } finally {
    await fake.close()
  }
}

/** The request every generate benchmark sends: one model, a short prompt, one JSON reply. */
export const GENERATE_BODY = JSON.stringify({ model: "llama3.2", prompt: "hi", stream: false })

export const startBareServer = async (): Promise<{ readonly url: string; readonly close: () => Promise<void> }> => {
  const canned = await capture()
  const server = http.createServer((req, res) => {
    // Read the whole request body first, as any real server (and foreman) must.
    req.on("data", () => {})
    req.on("end", () => {
      const reply = canned[req.url ?? ""]
      if (reply === undefined) {
        res.writeHead(404, { "content-type": "text/plain" }).end("404 page not found")
        return
      }
      res.writeHead(200, { "content-type": reply.contentType, "content-length": reply.body.length }).end(reply.body)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as { port: number }
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve()))
  }
}
