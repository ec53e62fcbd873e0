/**
 * Spans on the hot path. `Effect.withSpan` makes its span and puts it in the context even
 * when the tracer is off (about 10 µs a call), so here no span is made unless the tracer is
 * on. The command line turns it off (it has nowhere to export spans); an application that
 * embeds foreman with a tracer gets the spans as with `Effect.withSpan`.
 */
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import type * as Tracer from "effect/Tracer"

/** `Effect.withSpan` when the tracer is on; `self` unchanged when it is off. Every span in `src/` goes through this. */
export const withSpan = (name: string, options?: Tracer.SpanOptions) => <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.flatMap(
    FiberRef.get(FiberRef.currentTracerEnabled),
    (enabled): Effect.Effect<A, E, R> => (enabled ? Effect.withSpan(self, name, options) : self)
  )
