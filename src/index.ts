/**
 * foreman-effect as a library: the Layers, services, config and errors, to compose into
 * your own Effect application, and everything a plugin may use. See the README's
 * "Embedding" and "Plugins" sections.
 */
export * from "./Errors.ts"
export { type Access, currentAccess, isAdmin, presentedKey, requireAdmin } from "./auth/access.ts"
export { type Caller, Keys, type KeysService, type Role, roles } from "./auth/Keys.ts"
export * as KeysFile from "./auth/KeysFile.ts"
export { KeysFileError, KeysLive } from "./auth/KeysFile.ts"
export { defaultKeysPath } from "./Config.ts"
export { ForemanConfig, type ForemanSettings, foremanConfig, parseDuration, settings } from "./Config.ts"
export { FetchPlatformLive, ForemanLive, HttpLive, NodePlatformLive, ServicesLive, StoreLive } from "./Foreman.ts"
export * as Metrics from "./events/Metrics.ts"
export { readBody } from "./http/body.ts"
export { accepted, jobsPath, makeJobRoute, prefersAsync, priorityHeader, priorityOf, streamed, targetHeader } from "./http/jobRoute.ts"
export * as HttpErrors from "./http/errors.ts"
export {
  BadRequestError,
  ConflictError,
  ForemanApi,
  Health,
  HealthGroup,
  Job,
  JobPage,
  JobsGroup,
  NotFoundError,
  JobSubmission,
  PayloadTooLargeError
} from "./http/api/ForemanApi.ts"
export * as GoJson from "./ollama/GoJson.ts"
export { checkModel, decodeJobRequest, type JobRequest } from "./ollama/request.ts"
export { missingModelError } from "./ollama/errors.ts"
export { type Ending, guard, readAll } from "./streams/streams.ts"
export { ForemanRouter } from "./http/Router.ts"
export { hasModel, Inventory, type InventoryState, isDegraded } from "./inventory/Inventory.ts"
export { AsyncJobs, type JobView, type Submission } from "./jobs/AsyncJobs.ts"
export { Jobs, type JobSpec, type Started } from "./jobs/Jobs.ts"
export { JobStore, type JobRecord, type JobStatus } from "./jobs/JobStore.ts"
export { Events, type ForemanEvent, type JobInfo } from "./events/Events.ts"
export * as Plugin from "./plugin/Plugin.ts"
export {
  type Placement,
  type PlacementInput,
  type Policy,
  type PolicyInput,
  type Priority,
  priorities,
  type TargetState,
  type Waiting
} from "./scheduler/policy.ts"
export { Scheduler } from "./scheduler/Scheduler.ts"
export * as ModelName from "./ollama/ModelName.ts"
export type { PsModel, TagModel } from "./ollama/schema.ts"
export { type JobEndpoint, TargetClient, type Upstream } from "./target/TargetClient.ts"
export { type Residency as TargetResidency, type Slots, type Target, Targets, type TargetsService } from "./target/Target.ts"
export * as TargetInventories from "./target/inventories.ts"
