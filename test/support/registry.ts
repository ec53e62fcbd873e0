/**
 * A local npm registry on 127.0.0.1 that has published one package: the tarball `npm pack`
 * made. It serves that package's document and tarball itself and sends a redirect to the
 * real registry for every other package, so `npx foreman-effect` and
 * `deno run -A npm:foreman-effect` install the release under test exactly as users get it
 * from a registry, with its dependencies as they are published.
 */
import { spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import { readFileSync } from "node:fs"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { basename } from "node:path"

export interface LocalRegistry {
  /** With a trailing slash, as `npm_config_registry` and `NPM_CONFIG_REGISTRY` take it. */
  readonly url: string
  /** Requests served, by path (what the installers asked this registry for). */
  readonly served: ReadonlyArray<string>
  readonly close: () => Promise<void>
}

export const startRegistry = async (
  tarballPath: string,
  upstream = "https://registry.npmjs.org/"
): Promise<LocalRegistry> => {
  const tarball = readFileSync(tarballPath)
  const extracted = spawnSync("tar", ["-xzOf", tarballPath, "package/package.json"], { encoding: "utf8" })
  if (extracted.status !== 0) throw new Error(`cannot read package.json from ${tarballPath}: ${extracted.stderr}`)
  const manifest = JSON.parse(extracted.stdout) as { name: string; version: string }
  const tarballName = basename(tarballPath)
  const served: Array<string> = []
  const server = createServer((request, response) => {
    const path = decodeURIComponent(new URL(request.url ?? "/", "http://registry").pathname)
    served.push(path)
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
    if (path === `/${manifest.name}`) {
      const document = {
        name: manifest.name,
        "dist-tags": { latest: manifest.version },
        versions: {
          [manifest.version]: {
            ...manifest,
            dist: {
              tarball: `${base}${manifest.name}/-/${tarballName}`,
              shasum: createHash("sha1").update(tarball).digest("hex"),
              integrity: `sha512-${createHash("sha512").update(tarball).digest("base64")}`
            }
          }
        }
      }
      response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(document))
    } else if (path === `/${manifest.name}/-/${tarballName}`) {
      response.writeHead(200, { "content-type": "application/octet-stream" }).end(tarball)
    } else {
      response.writeHead(302, { location: new URL(request.url!.slice(1), upstream).href }).end()
    }
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    served,
    // Installers that are still running (a Deno that serves) keep their connections open.
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
  }
}
