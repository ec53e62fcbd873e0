#!/usr/bin/env node
// The CLI entry. Node (>= 22.13 with type stripping, as pinned for this repository) runs the
// TypeScript sources directly; the same sources run under `deno run`.
import "../src/bin.ts"
