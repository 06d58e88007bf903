//! Peer wire protocol: frames, the message catalogue, the push parser and the handshake
//! rules (docs/protocol.md). Pure: bytes in, messages out.

export * from "./codec.js";
export * from "./handshake.js";
export { FrameParser } from "./parser.js";
export { messageSpecs, type MessageSpec, type FieldSpec } from "./schema.js";
export { validatePeerMessage, type ValidationLimits } from "./validate.js";
