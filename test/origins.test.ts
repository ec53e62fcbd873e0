/**
 * Ollama's origin and host rules as pure functions: which browser origins may call foreman
 * and which `Host` names a loopback listener answers.
 */
import { describe, expect, it } from "@effect/vitest"
import { defaultOrigins, hostOf, isLocalHost, isLoopback, isSameOrigin, originMatcher, type Machine } from "../src/http/origins.ts"

const machine: Machine = { hostname: "gpu-box", addresses: () => ["127.0.0.1", "::1", "203.0.113.7", "fe80::1"] }

describe("origins", () => {
  const allowedByDefault = originMatcher(defaultOrigins)

  it("allows Ollama's default origins: local http(s) with any port or none, and the app schemes", () => {
    for (const origin of [
      "http://localhost",
      "http://localhost:3000",
      "https://localhost:8443",
      "http://127.0.0.1:8080",
      "http://0.0.0.0:5173",
      "http://[::1]:3000",
      "app://obsidian.md",
      "file://",
      "tauri://localhost",
      "vscode-webview://abc",
      "vscode-file://vscode-app",
      "HTTP://LOCALHOST:3000"
    ]) expect(allowedByDefault(origin), origin).toBe(true)
  })

  it("refuses every other origin by default", () => {
    for (const origin of [
      "https://evil.example",
      "http://localhost.evil.example",
      "http://127.0.0.1.evil.example",
      "http://localhostx:3000",
      "http://192.168.1.10:3000",
      "chrome-extension://abcdef",
      "null"
    ]) expect(allowedByDefault(origin), origin).toBe(false)
  })

  it("takes OLLAMA_ORIGINS patterns: exact, one wildcard, or * for all", () => {
    const extra = originMatcher(["https://chat.example.com", "http://192.168.1.*", "chrome-extension://*"])
    expect(extra("https://chat.example.com")).toBe(true)
    expect(extra("https://chat.example.com.evil.example")).toBe(false)
    expect(extra("http://192.168.1.20:3000")).toBe(true)
    expect(extra("http://192.168.2.20")).toBe(false)
    // Within one part of the host: anyone can register 192.168.1.evil.example.
    expect(extra("http://192.168.1.evil.example")).toBe(false)
    expect(originMatcher(["http://localhost:*"])("http://localhost:3000.evil.example")).toBe(false)
    expect(originMatcher(["https://*.example.com"])("https://chat.example.com")).toBe(true)
    expect(originMatcher(["https://*.example.com"])("https://a.b.example.com")).toBe(false)
    expect(extra("chrome-extension://abcdef")).toBe(true)
    expect(originMatcher(["*"])("https://anything.example")).toBe(true)
  })

  it("a page of foreman's own origin is not a cross-origin caller", () => {
    expect(isSameOrigin("http://192.168.1.5:11435", "192.168.1.5:11435")).toBe(true)
    expect(isSameOrigin("https://evil.example", "192.168.1.5:11435")).toBe(false)
    expect(isSameOrigin("http://x", undefined)).toBe(false)
  })
})

describe("hosts", () => {
  it("reads the host out of a Host header", () => {
    expect(hostOf("localhost:11435")).toBe("localhost")
    expect(hostOf("[::1]:11435")).toBe("::1")
    expect(hostOf("[::1]")).toBe("::1")
    expect(hostOf("::1")).toBe("::1")
    expect(hostOf("Example.COM")).toBe("example.com")
  })

  it("counts as local what Ollama's allowedHost does", () => {
    for (const host of [
      undefined,
      "",
      "localhost:11435",
      "gpu-box:11435",
      "GPU-BOX",
      "printer.local",
      "ollama.internal:80",
      "app.localhost",
      "127.0.0.1:11435",
      "127.8.9.10",
      "10.0.0.1",
      "172.16.0.1",
      "172.31.255.255",
      "192.168.1.5:11435",
      "0.0.0.0",
      "[::1]:11435",
      "[::]",
      "[fd12:3456::1]",
      "[::ffff:127.0.0.1]",
      "[::ffff:7f00:1]",
      "[0:0:0:0:0:0:0:1]",
      "203.0.113.7:11435",
      "[fe80::1]"
    ]) expect(isLocalHost(host, machine), String(host)).toBe(true)
  })

  it("refuses names and addresses that are not this machine's", () => {
    for (const host of [
      "evil.example:11435",
      "localhost.evil.example",
      "local",
      "8.8.8.8",
      "172.32.0.1",
      "198.51.100.1:11435",
      "[2001:db8::1]",
      "gpu-box.evil.example",
      "[::1].evil.example",
      "[fc::1]",
      "[fd1::1]"
    ]) expect(isLocalHost(host, machine), host).toBe(false)
  })

  it("knows loopback addresses in every spelling (where the Host rule applies)", () => {
    for (const address of ["127.0.0.1", "127.0.0.2", "localhost", "::1", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1", "[::1]"]) {
      expect(isLoopback(address), address).toBe(true)
    }
    for (const address of ["0.0.0.0", "::", "192.168.1.5", "::ffff:192.168.1.5", "fe80::1"]) {
      expect(isLoopback(address), address).toBe(false)
    }
  })
})
