/**
 * Who may drive foreman from a browser, and by which name: Ollama's two rules (shared
 * reference §0, `server/routes.go`), so that a web page cannot make foreman act (CSRF) and a
 * name that rebinds to 127.0.0.1 cannot reach it (DNS rebinding).
 *
 * - **Origin**: a request with an `Origin` header that is not the request's own origin and not
 *   an allowed one is refused (gin-contrib/cors does this for every method, not only for
 *   preflights: a form post or a `text/plain` fetch needs no preflight).
 * - **Host**: on a loopback listener, a request whose `Host` is not local is refused (a remote
 *   page's name resolved to 127.0.0.1 still carries its own name).
 */
import * as os from "node:os"
import { isIP } from "node:net"

/**
 * Ollama's default allowed origins (`envconfig.AllowedOrigins`): http and https on localhost,
 * 127.0.0.1 and 0.0.0.0 with any port or none, and the desktop and editor webview schemes;
 * plus IPv6 loopback, which Ollama leaves out.
 */
export const defaultOrigins: ReadonlyArray<string> = [
  ...["localhost", "127.0.0.1", "0.0.0.0", "[::1]"].flatMap((host) =>
    ["http", "https"].flatMap((scheme) => [`${scheme}://${host}`, `${scheme}://${host}:*`])
  ),
  "app://*",
  "file://*",
  "tauri://*",
  "vscode-webview://*",
  "vscode-file://*"
]

/**
 * A matcher for origin patterns as `OLLAMA_ORIGINS` takes them: an exact origin, or one with a
 * `*` that stands for any text (`http://192.168.1.*`, `chrome-extension://*`); `*` alone allows
 * every origin. Case-insensitive, as origins are.
 */
export const originMatcher = (patterns: ReadonlyArray<string>): (origin: string | undefined) => boolean => {
  const exact = new Set<string>()
  const wildcards: Array<readonly [string, string]> = []
  for (const pattern of patterns.map((p) => p.trim().toLowerCase()).filter((p) => p !== "")) {
    const star = pattern.indexOf("*")
    if (star === -1) exact.add(pattern)
    else wildcards.push([pattern.slice(0, star), pattern.slice(star + 1)])
  }
  // The CORS middleware asks about a preflight's Origin, which may be missing.
  return (origin: string | undefined) => {
    if (typeof origin !== "string") return false
    const o = origin.toLowerCase()
    return exact.has(o) ||
      wildcards.some(([prefix, suffix]) => o.length >= prefix.length + suffix.length && o.startsWith(prefix) && o.endsWith(suffix))
  }
}

/** A request from a page of foreman's own origin is not a cross-origin request. */
export const isSameOrigin = (origin: string, host: string | undefined): boolean =>
  host !== undefined && (origin === `http://${host}` || origin === `https://${host}`)

/** The host part of a `Host` header value (`[::1]:11435` → `::1`, `name:80` → `name`). */
export const hostOf = (header: string): string => {
  const value = header.trim().toLowerCase()
  if (value.startsWith("[")) {
    const end = value.indexOf("]")
    return end === -1 ? value : value.slice(1, end)
  }
  const colon = value.indexOf(":")
  // Two or more colons: a bare IPv6 address, not host:port.
  return colon !== -1 && value.indexOf(":", colon + 1) === -1 ? value.slice(0, colon) : value
}

const ipv4Octets = (ip: string): ReadonlyArray<number> | undefined => {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(ip)
  const v4 = mapped !== null ? mapped[1]! : ip
  return isIP(v4) === 4 ? v4.split(".").map(Number) : undefined
}

/** Loopback, private or unspecified, as Go's `netip.Addr` methods define them. */
const isLocalIp = (ip: string): boolean => {
  const v4 = ipv4Octets(ip)
  if (v4 !== undefined) {
    const [a, b] = v4 as [number, number]
    return a === 127 || a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) ||
      v4.every((octet) => octet === 0)
  }
  const v6 = ip.toLowerCase()
  return v6 === "::1" || v6 === "::" || /^f[cd][0-9a-f]{0,2}:/.test(v6)
}

/** What the machine calls itself: its host name and the addresses of its interfaces. */
export interface Machine {
  readonly hostname: string
  readonly addresses: () => ReadonlyArray<string>
}

export const thisMachine: Machine = {
  hostname: os.hostname().toLowerCase(),
  addresses: () => Object.values(os.networkInterfaces()).flatMap((list) => (list ?? []).map((entry) => entry.address.toLowerCase()))
}

/**
 * Ollama's `allowedHost`: no `Host` at all, `localhost`, the machine's host name, a name under
 * `.localhost`, `.local` or `.internal`, or an IP address that is loopback, private,
 * unspecified or one of the machine's own.
 */
export const isLocalHost = (header: string | undefined, machine: Machine = thisMachine): boolean => {
  if (header === undefined) return true
  const host = hostOf(header)
  if (host === "" || host === "localhost" || host === machine.hostname) return true
  if (isIP(host) !== 0) return isLocalIp(host) || machine.addresses().includes(host)
  return [".localhost", ".local", ".internal"].some((tld) => host.endsWith(tld))
}

/** Whether foreman listens on loopback only (`--host`), where the `Host` rule applies. */
export const isLoopbackListener = (listen: string): boolean => {
  const host = hostOf(listen)
  if (host === "localhost") return true
  const v4 = ipv4Octets(host)
  return v4 !== undefined ? v4[0] === 127 : host === "::1"
}
