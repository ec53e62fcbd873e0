/** For tests only (it uses vitest's `expect`; benchmarks import `foreman.ts`, not this). */
import { Duration } from "effect"
import { expect, vi } from "vitest"
import type { ForemanSettings } from "../../src/Config.ts"
import { type FakeTarget, type FakeTargetOptions, startFakeTarget } from "./FakeTarget.ts"
import { type ForemanOptions, type RunningForeman, startForeman } from "./foreman.ts"

/**
 * A fake target and foreman in front of it (polling every 100 ms), once foreman has reached
 * it: what a test of one surface through foreman against the target itself starts with.
 */
export const startInFront = async (
  targetOptions: FakeTargetOptions,
  options: ForemanOptions = {},
  settings: Partial<ForemanSettings> = {}
): Promise<{ readonly target: FakeTarget; readonly foreman: RunningForeman; readonly close: () => Promise<void> }> => {
  const target = await startFakeTarget(targetOptions)
  const foreman = await startForeman({ target: target.url, pollInterval: Duration.millis(100), ...settings }, options)
  await vi.waitFor(async () => expect((await foreman.health()).status).toBe("ok"))
  return {
    target,
    foreman,
    close: async () => {
      await foreman.close()
      await target.close()
    }
  }
}
