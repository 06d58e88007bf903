//! On-disk metadata format: layout, superblock, activity-log ring, whole-area codec and the
//! incremental record encoder. Pure: byte arrays in, byte arrays out (docs/metadata.md).

export { crc32c } from "./crc32c.js";
export * from "./layout.js";
export {
  decodeSuperblock,
  encodeSuperblock,
  formatVersion,
  slotFree,
  type DecodedSuperblock,
  type MetadataHeader,
} from "./superblock.js";
export { encodeAlTransaction, recoverAlRing, type AlRecovery } from "./al_ring.js";
export * from "./area.js";
export * from "./relocate.js";
