/**
 * foreman-effect as a library: the Layers, services, config and errors, to compose into
 * your own Effect application. See the README's "Embedding" section.
 */
export * from "./Errors.ts"
export { ForemanConfig, type ForemanSettings, foremanConfig, settings } from "./Config.ts"
export { FetchPlatformLive, ForemanLive, HttpLive, NodePlatformLive, ServicesLive } from "./Foreman.ts"
export { ForemanRouter } from "./http/Router.ts"
export * as HttpErrors from "./http/errors.ts"
export { Inventory, type InventoryState, isDegraded } from "./inventory/Inventory.ts"
export { Jobs, type JobSpec, type Started } from "./jobs/Jobs.ts"
export { type Policy, type PolicyInput, type Priority, type Waiting } from "./scheduler/policy.ts"
export { Scheduler } from "./scheduler/Scheduler.ts"
export * as ModelName from "./target/ModelName.ts"
export { type JobEndpoint, TargetClient, type Upstream } from "./target/TargetClient.ts"
