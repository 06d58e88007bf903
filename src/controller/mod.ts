//! Public surface of the controller: the REST server over the desired-state store. The
//! satellites, placement and the CLI build on these.

export { startController, controllerPortDefault } from "./server.js";
export type { ControllerOptions, RunningController } from "./server.js";
export { restApiVersion } from "./api_misc.js";
export { openSqliteStore, StoreError, databaseFileName } from "./store/sqlite_store.js";
export type * from "./store/store.js";
export { defaultDisklessPool, defaultResourceGroup, defaultStoragePool } from "./store/store.js";
export { ApiCallError, retCode, httpStatusOf } from "./api_call_rc.js";
export type { ApiCallRc } from "./api_call_rc.js";
export { toJson } from "./json.js";
export type { JsonValue } from "./json.js";
export { EventBus } from "./events.js";
export type { ControllerEvent } from "./events.js";
export { nothingObserved, nodeConnectionStatuses } from "./observed_state.js";
export type { ObservedState, NodeConnectionStatus, PoolCapacity } from "./observed_state.js";
