#!/usr/bin/env -S node --max-semi-space-size=8 --expose-gc
// The CLI entry. Node (>= 22.13 with type stripping, as pinned for this repository) runs the
// TypeScript sources directly; the same sources run under `deno run`.
// The flag: V8 sizes the young generation from the machine's memory (up to 64 MiB per
// semi-space on a box with 16 GiB or more) and keeps it committed; a broker's garbage is
// short-lived and small, so 8 MiB serves it as well at a fraction of the resident memory.
// `--expose-gc` lets foreman give memory back after start-up and after bursts
// (src/compaction.ts).
import "../src/bin.ts"
