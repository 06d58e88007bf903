//! Public surface of the replication engine: the pure core that the simulator and the I/O
//! shell drive. Everything re-exported here is stable; internals may move.

export * from "./types.js";
export { createReplica, Replica } from "./replica.js";
export { resolveConfig, optionsDefault } from "./config.js";
export type { ResolvedConfig } from "./config.js";
export {
  applyMetadataRecord,
  createPersistedMeta,
  clonePersistedMeta,
  uuidInitial,
} from "./meta.js";
export { Bitmap } from "./bitmap.js";
