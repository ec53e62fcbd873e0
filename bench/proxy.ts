/**
 * The least a proxy can do, as a reference for the throughput benchmark: a `node:http`
 * server that reads the request body, parses it to find the model (as any broker in front
 * of Ollama must), sends it to the target over undici's keep-alive pool, reads the reply
 * whole and answers it. No queue, no validation beyond the parse, no logging, no error
 * dialect. What it sustains is the ceiling for any proxy in Node on this machine: it pays
 * the second hop and the upstream server, as foreman does, and nothing else.
 */
import * as http from "node:http"
import { Pool } from "undici"

export const startMinimalProxy = async (
  target: string
): Promise<{ readonly url: string; readonly close: () => Promise<void> }> => {
  const pool = new Pool(target, { connections: 512 })
  const server = http.createServer((req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (chunk: Buffer) => chunks.push(chunk))
    req.on("end", () => {
      const body = Buffer.concat(chunks)
      let model: unknown
      try {
        model = body.length === 0 ? undefined : (JSON.parse(body.toString("utf8")) as { model?: unknown }).model
      } catch {
        model = undefined
      }
      if (req.method === "POST" && typeof model !== "string") {
        res.writeHead(400, { "content-type": "application/json" }).end(`{"error":"model is required"}`)
        return
      }
      pool.request({
        method: req.method as "GET" | "POST",
        path: req.url ?? "/",
        ...(req.method === "POST" ? { body, headers: { "content-type": "application/json" } } : {})
      }).then(async (upstream) => {
        const reply = Buffer.from(await upstream.body.arrayBuffer())
        const contentType = upstream.headers["content-type"]
        res.writeHead(upstream.statusCode, {
          "content-type": typeof contentType === "string" ? contentType : "application/json",
          "content-length": reply.length
        }).end(reply)
      }, (error: unknown) => {
        res.writeHead(502, { "content-type": "application/json" }).end(JSON.stringify({ error: String(error) }))
      })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as { port: number }
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await pool.close()
    }
  }
}
