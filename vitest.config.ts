import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

export default defineConfig({
  // Tests written as a user's code import "foreman-effect": in the checkout that is the
  // sources (the package's exports point at its build; test/integration/package.test.ts
  // tests those).
  resolve: {
    alias: [
      { find: /^foreman-effect$/, replacement: fileURLToPath(new URL("./src/index.ts", import.meta.url)) },
      { find: /^foreman-effect\/plugins\/(\w+)$/, replacement: fileURLToPath(new URL("./plugins/$1/index.ts", import.meta.url)) }
    ]
  },
  test: {
    include: ["test/**/*.test.ts"],
    // Integration tests start real servers on 127.0.0.1; keep the shared 2-core machines calm.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 30_000
  }
})
