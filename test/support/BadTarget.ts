/**
 * A target that misbehaves on purpose, for the robustness tests: it lists its models and
 * answers polls like Ollama, but its job routes do what `mode` says, the way a half-asleep
 * laptop, a hung runner or a broken proxy in front of Ollama does.
 */
import { createServer, type ServerResponse } from "node:http"
import type { AddressInfo, Socket } from "node:net"

export type BadMode =
  /** Answer like Ollama: NDJSON when `stream` is not false, else one JSON object. */
  | "ok"
  /** Take the request and send nothing, ever (a hung runner; a socket to a suspended host). */
  | "stall-before-headers"
  /** Send the response headers and one line, then nothing. */
  | "stall-after-headers"
  /** Close the connection without answering. */
  | "close-before-headers"
  /** Answer 200 with a body that is not JSON. */
  | "garbage"
  /** Answer 200 with JSON nested 100 000 levels deep. */
  | "deep"
  /**
   * A generation that takes `slowMs`: streamed, a line every tenth of it; not streamed, the
   * whole answer once it is done (as Ollama sends `stream: false`).
   */
  | "slow"

export interface BadTarget {
  readonly url: string
  /** What the job routes do from now on. */
  mode: BadMode
  /** `/api/tags` answers a listing this many bytes long (padding in an extra field); 0: a normal one. */
  tagsBytes: number
  /** How long a `slow` generation takes. */
  slowMs: number
  /** Job requests received, by path. */
  readonly jobs: Array<string>
  readonly close: () => Promise<void>
}

const model = { name: "llama3.2:latest", model: "llama3.2:latest", size: 1, digest: "0".repeat(64), details: {} }

export const startBadTarget = async (mode: BadMode = "ok"): Promise<BadTarget> => {
  const sockets = new Set<Socket>()
  const state: BadTarget = {
    url: "",
    mode,
    tagsBytes: 0,
    slowMs: 2_000,
    jobs: [],
    close: () => {
      for (const socket of sockets) socket.destroy()
      return new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }

  const json = (response: ServerResponse, status: number, body: unknown) =>
    response.writeHead(status, { "content-type": "application/json; charset=utf-8" }).end(JSON.stringify(body))

  const tags = (response: ServerResponse) => {
    if (state.tagsBytes === 0) return json(response, 200, { models: [model] })
    response.writeHead(200, { "content-type": "application/json; charset=utf-8" })
    const head = `{"models":[${JSON.stringify(model)}],"padding":"`
    const chunk = "x".repeat(64 * 1024)
    let left = state.tagsBytes - head.length - 2
    response.write(head)
    const more = () => {
      while (left > 0) {
        const piece = left >= chunk.length ? chunk : chunk.slice(0, left)
        left -= piece.length
        if (!response.write(piece)) return void response.once("drain", more)
      }
      response.end(`"}`)
    }
    response.once("error", () => {})
    more()
  }

  const server = createServer((request, response) => {
    const path = (request.url ?? "/").split("?")[0]!
    let text = ""
    request.setEncoding("utf8")
    request.on("data", (chunk) => (text += chunk))
    request.on("end", () => {
      if (path === "/api/tags") return tags(response)
      if (path === "/api/ps") return json(response, 200, { models: [] })
      if (path === "/api/version") return json(response, 200, { version: "0.33.0" })
      if (!path.startsWith("/api/") && !path.startsWith("/v1/")) return json(response, 404, { error: "404 page not found" })
      state.jobs.push(path)
      const body = (() => {
        try {
          const parsed: unknown = JSON.parse(text)
          return typeof parsed === "object" && parsed !== null ? parsed as { stream?: boolean; prompt?: string } : {}
        } catch {
          return {}
        }
      })()
      switch (state.mode) {
        case "stall-before-headers":
          return
        case "close-before-headers":
          return void request.socket.destroy()
        case "garbage":
          return void response.writeHead(200, { "content-type": "application/json; charset=utf-8" }).end("<html>502 Bad Gateway</html>")
        case "deep":
          return void response.writeHead(200, { "content-type": "application/json; charset=utf-8" })
            .end(`{"a":${"[".repeat(100_000)}${"]".repeat(100_000)}}`)
        case "stall-after-headers":
          response.writeHead(200, { "content-type": "application/x-ndjson" })
          return void response.write(`${JSON.stringify({ model: "llama3.2", response: "echo", done: false })}\n`)
        case "slow": {
          const answer = { model: "llama3.2", response: "slow", done: false }
          if (body.stream === false) {
            return void setTimeout(() => json(response, 200, { ...answer, response: "slow ".repeat(10).trim(), done: true }), state.slowMs)
          }
          response.writeHead(200, { "content-type": "application/x-ndjson" })
          let sent = 0
          const tick = setInterval(() => {
            if (++sent < 10) return void response.write(`${JSON.stringify({ ...answer, response: sent === 1 ? "slow" : " slow" })}\n`)
            clearInterval(tick)
            response.end(`${JSON.stringify({ ...answer, response: " slow", done: true, done_reason: "stop" })}\n`)
          }, state.slowMs / 10)
          return void response.once("close", () => clearInterval(tick))
        }
        case "ok": {
          const answer = { model: "llama3.2", created_at: new Date().toISOString(), response: `echo: ${body.prompt ?? ""}` }
          if (body.stream === false) return json(response, 200, { ...answer, done: true, done_reason: "stop" })
          response.writeHead(200, { "content-type": "application/x-ndjson" })
          response.write(`${JSON.stringify({ ...answer, done: false })}\n`)
          return void response.end(`${JSON.stringify({ ...answer, response: "", done: true, done_reason: "stop" })}\n`)
        }
      }
    })
  })
  server.on("connection", (socket) => {
    sockets.add(socket)
    socket.once("close", () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  Object.assign(state, { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })
  return state
}
