/**
 * The router every part of foreman (and every plugin) adds its routes to. Routes register
 * through `ForemanRouter.use(...)` layers, so a plugin is just another layer.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"

export class ForemanRouter extends HttpRouter.Tag("foreman/Router")<ForemanRouter>() {}
