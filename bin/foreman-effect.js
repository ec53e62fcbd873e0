#!/usr/bin/env -S node --max-semi-space-size=8 --expose-gc --no-allocation-site-pretenuring
// The CLI entry. Node (>= 22.13 with type stripping, as pinned for this repository) runs the
// TypeScript sources directly; the same sources run under `deno run`.
// The flag: V8 sizes the young generation from the machine's memory (up to 64 MiB per
// semi-space on a box with 16 GiB or more) and keeps it committed; a broker's garbage is
// short-lived and small, so 8 MiB serves it as well at a fraction of the resident memory.
// `--expose-gc` lets foreman give memory back after start-up and after bursts
// (src/compaction.ts). `--no-allocation-site-pretenuring`: V8 learns during the first
// thousands of jobs that some of a job's objects outlive a young collection and then
// allocates them in the old generation, where (dead or not) they keep the young objects
// they point to alive through every young collection until the next full one; without it
// each young collection copies a seventh as much and pauses half as long (docs/decisions.md).
import "../src/bin.ts"
