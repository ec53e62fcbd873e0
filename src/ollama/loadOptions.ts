/**
 * The request options that make Ollama load a model again: a job's *load*, which with its
 * model is what the scheduler groups jobs by and counts swaps of (`scheduler/policy.ts`,
 * `unitOf`). Ollama reloads a loaded model for a request whose options differ from those it
 * was loaded with (ollama#8903, #10948), which costs as much as loading another model.
 *
 * From Ollama at fb30760996871fa9460115c753afd2c60d4ab0f7: `server/sched.go`,
 * `(*runnerRef).needsReload`, reuses a runner only if `reflect.DeepEqual` holds between its
 * `api.Runner` options and the request's (`api/types.go`, `type Runner`: `num_ctx`,
 * `num_batch`, `num_gpu`, `main_gpu`, `use_mmap`, `num_thread`, `draft_num_predict`) and
 * the context shift is the same (the request's top-level `shift`, generate and chat only).
 * Its own exceptions, kept here:
 * - a negative `num_gpu` never reloads ("Don't reload runner if num_gpu=-1 was provided"),
 *   and -1 is the default: it is the same as unset;
 * - `num_ctx` below 4 is 4 (`getRunner`);
 * - numbers are truncated to integers, as `api.Options.FromMap` does with JSON's float64;
 * - `null` is unset (`FromMap` skips nil); a value of the wrong type fails the request before
 *   anything loads (`FromMap`'s error), so it is left out too.
 *
 * Unset means the server's default (`OLLAMA_CONTEXT_LENGTH`, the model's Modelfile, or
 * Ollama's own choice by VRAM, `numCtxAuto`), which foreman cannot know: unset is its own
 * value, "default", never equal to an explicit one, even one that happens to be the default.
 * Ollama compares two unset `num_ctx` or `num_batch` as equal (`numCtxAuto`,
 * `numBatchAuto`), and so does this.
 *
 * Not load options: `keep_alive` (it only sets when the runner expires), the sampling options
 * (`temperature`, `num_predict`, ...), and `use_mlock`, `numa`, `low_vram`, `f16_kv`,
 * `vocab_only`, `logits_all`, which Ollama 0.7.0 removed from `api.Options` (#10574) and
 * ignores since. Ollama's `/v1` routes map no request field to a load option
 * (`openai/openai.go`, `FromChatRequest`, `FromCompleteRequest`): they always load the
 * defaults. An MLX model (`IsMLX`) skips the options' comparison altogether; foreman cannot
 * tell one from the name, so it groups them like any other.
 */

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

type Kind = "int" | "bool"

/** `api.Runner`'s fields, by JSON name, in the order of the key (sorted). */
const runnerOptions: ReadonlyArray<readonly [string, Kind]> = [
  ["draft_num_predict", "int"],
  ["main_gpu", "int"],
  ["num_batch", "int"],
  ["num_ctx", "int"],
  ["num_gpu", "int"],
  ["num_thread", "int"],
  ["use_mmap", "bool"]
]

/** An option's value as the loaded runner would hold it, or `undefined` for "as unset". */
const canonical = (name: string, kind: Kind, value: unknown): string | undefined => {
  if (kind === "bool") return typeof value === "boolean" ? String(value) : undefined
  if (typeof value !== "number" || !Number.isFinite(value)) return undefined
  const n = Math.trunc(value)
  if (name === "num_gpu" && n < 0) return undefined
  if (name === "num_ctx") return String(Math.max(4, n))
  // `-0` and `0` are one value.
  return String(n === 0 ? 0 : n)
}

/**
 * The load of a native request: its `options` (the object as Go decodes it into
 * `map[string]any`: keys exact, not folded) and its `shift` (the top-level field as Go fills
 * it), as sorted `name=value` pairs joined by `,` (`"num_ctx=8192,shift=false"`), or `""`
 * when none is set: the target's defaults.
 */
export const loadKey = (fields: { readonly options?: unknown; readonly shift?: unknown }): string => {
  let key = ""
  const { options, shift } = fields
  if (isRecord(options)) {
    for (const [name, kind] of runnerOptions) {
      if (!Object.hasOwn(options, name)) continue
      const value = canonical(name, kind, options[name])
      if (value !== undefined) key += `${key === "" ? "" : ","}${name}=${value}`
    }
  }
  if (typeof shift === "boolean") key += `${key === "" ? "" : ","}shift=${shift}`
  return key
}

/** The `num_ctx` a load (`loadKey`) asks for, if it sets one. */
export const numCtxOf = (load: string): number | undefined => {
  const match = /(?:^|,)num_ctx=(\d+)(?:,|$)/.exec(load)
  return match === null ? undefined : Number(match[1])
}
