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
 * `*` that stands for any text (`chrome-extension://*`); `*` alone allows every origin.
 * Case-insensitive, as origins are. In an http(s) pattern the `*` stays within one part of
 * the host name (`http://192.168.1.*` takes `http://192.168.1.20:3000`, not
 * `http://192.168.1.evil.example`, which anyone can register); Ollama's own matcher lets it
 * run on.
 */
export const originMatcher = (patterns: ReadonlyArray<string>): (origin: string | undefined) => boolean => {
  const exact = new Set<string>()
  const wildcards: Array<RegExp> = []
  for (const pattern of patterns.map((p) => p.trim().toLowerCase()).filter((p) => p !== "")) {
    const star = pattern.indexOf("*")
    if (star === -1) {
      exact.add(pattern)
      continue
    }
    const quote = (text: string) => text.replace(/[.+?^${}()|[\]\\]/g, "\\$&")
    const any = pattern === "*" ? ".*" : /^https?:\/\//.test(pattern) ? "[^./]*" : ".*"
    wildcards.push(new RegExp(`^${quote(pattern.slice(0, star))}${any}${quote(pattern.slice(star + 1))}$`))
  }
  // The CORS middleware asks about a preflight's Origin, which may be missing.
  return (origin) => {
    if (typeof origin !== "string") return false
    const o = origin.toLowerCase()
    return exact.has(o) || wildcards.some((pattern) => pattern.test(o))
  }
}

/** A request from a page of foreman's own origin is not a cross-origin request. */
export const isSameOrigin = (origin: string, host: string | undefined): boolean =>
  host !== undefined && (origin === `http://${host}` || origin === `https://${host}`)

/** The host part of a `Host` header value (`[::1]:11435` → `::1`, `name:80` → `name`). */
export const hostOf = (header: string): string => {
  const value = header.trim().toLowerCase()
  if (value.startsWith("[")) {
    // `[address]` or `[address]:port`, nothing else.
    const match = /^\[([^\]]*)\](?::\d*)?$/.exec(value)
    return match === null ? value : match[1]!
  }
  const colon = value.indexOf(":")
  // Two or more colons: a bare IPv6 address, not host:port.
  return colon !== -1 && value.indexOf(":", colon + 1) === -1 ? value.slice(0, colon) : value
}

/** An IPv6 address in its one canonical form (`0:0:0:0:0:0:0:1` → `::1`), by the URL parser's rules. */
const canonicalV6 = (ip: string): string => {
  try {
    return new URL(`http://[${ip}]/`).hostname.slice(1, -1)
  } catch {
    return ip
  }
}

/** The IPv4 address in `ip`, itself or mapped into IPv6 (`::ffff:7f00:1`), as octets. */
const ipv4Octets = (ip: string): ReadonlyArray<number> | undefined => {
  if (isIP(ip) === 4) return ip.split(".").map(Number)
  if (isIP(ip) !== 6) return undefined
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(canonicalV6(ip))
  if (mapped === null) return undefined
  const [high, low] = [parseInt(mapped[1]!, 16), parseInt(mapped[2]!, 16)]
  return [high >> 8, high & 0xff, low >> 8, low & 0xff]
}

/** Loopback, private or unspecified, as Go's `netip.Addr` methods define them (IPv4-mapped included). */
const isLocalIp = (ip: string): boolean => {
  const v4 = ipv4Octets(ip)
  if (v4 !== undefined) {
    const [a, b] = v4 as [number, number]
    return a === 127 || a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) ||
      v4.every((octet) => octet === 0)
  }
  const v6 = canonicalV6(ip)
  return v6 === "::1" || v6 === "::" || /^f[cd][0-9a-f]{2}:/.test(v6)
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
  if (isIP(host) !== 0) {
    return isLocalIp(host) || machine.addresses().some((own) => own === host || (isIP(own) === 6 && canonicalV6(own) === canonicalV6(host)))
  }
  return [".localhost", ".local", ".internal"].some((tld) => host.endsWith(tld))
}

/**
 * Whether an address foreman listens on, or a connection arrived on, is loopback: where the
 * `Host` rule applies.
 */
export const isLoopback = (address: string): boolean => {
  const host = hostOf(address)
  if (host === "localhost") return true
  const v4 = ipv4Octets(host)
  return v4 !== undefined ? v4[0] === 127 : isIP(host) === 6 && canonicalV6(host) === "::1"
}
