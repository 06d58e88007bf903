//! The connection handshake's pure rules (docs/protocol.md, "Handshake"): version
//! negotiation, feature flags, reject reasons, and the exact bytes that HMAC-SHA256
//! authenticates. The shell generates the random challenges and computes the HMACs with
//! node:crypto; everything it compares or decides comes from here.
//!
//! Why the auth message binds more than the challenge: both sides challenge each other over
//! one connection, so an attacker could reflect A's challenge back to A and replay A's own
//! answer. Binding the responder's node id (and the resource) to the MAC makes A's answer
//! useless as B's, and a side also refuses a peer challenge equal to its own.

import { ProtocolError } from "../../stdx/errors.js";
import type { HandshakeMessage } from "./codec.js";

/** Replication protocol versions this build speaks. */
// 2: ping and pingAck carry a seq (quorum confirmation answers only its own ping).
export const protocolVersionMin = 2;
export const protocolVersionMax = 2;

/** Feature flag bits of `hello.featureFlags`. Unknown bits are ignored (not negotiated). */
export const featureChecksumResync = 1 << 0;
export const featureOnlineVerify = 1 << 1;
export const featureOnlineResize = 1 << 2;
export const featureFlagsSupported =
  featureChecksumResync | featureOnlineVerify | featureOnlineResize;

export const rejectReason = {
  /** No protocol version in common. */
  version: 1,
  /** The resource names differ. */
  resource: 2,
  /** The node ids do not match the configuration (or are equal). */
  nodeId: 3,
  /** The peer's authResponse is wrong: different shared secret. */
  auth: 4,
  /** The peer broke the protocol. */
  protocol: 5,
  /** The node is shutting down or the connection is not wanted. */
  shutdown: 6,
} as const;

export const challengeBytes = 32;

export interface HandshakeExpectation {
  readonly resourceName: string;
  /** This node's id. */
  readonly nodeId: number;
  /** The node id we expect at the other end. */
  readonly peerNodeId: number;
}

export type HelloVerdict =
  | {
      readonly ok: true;
      /** Highest version both sides speak. */
      readonly version: number;
      /** Features both sides support. */
      readonly features: number;
    }
  | { readonly ok: false; readonly reason: number; readonly message: string };

export function helloFor(e: HandshakeExpectation): Extract<HandshakeMessage, { type: "hello" }> {
  return {
    type: "hello",
    protocolMin: protocolVersionMin,
    protocolMax: protocolVersionMax,
    nodeId: e.nodeId,
    peerNodeId: e.peerNodeId,
    featureFlags: featureFlagsSupported,
    resourceName: e.resourceName,
  };
}

/** Checks the peer's hello against what we expect; says why it is refused otherwise. */
export function checkHello(
  e: HandshakeExpectation,
  hello: Extract<HandshakeMessage, { type: "hello" }>,
): HelloVerdict {
  const version = Math.min(protocolVersionMax, hello.protocolMax);
  if (
    hello.protocolMin > hello.protocolMax ||
    version < Math.max(protocolVersionMin, hello.protocolMin)
  )
    return {
      ok: false,
      reason: rejectReason.version,
      message: `no common protocol version: we speak ${protocolVersionMin}..${protocolVersionMax}, the peer ${hello.protocolMin}..${hello.protocolMax}`,
    };
  if (hello.resourceName !== e.resourceName)
    return {
      ok: false,
      reason: rejectReason.resource,
      message: `the peer serves resource "${hello.resourceName}", not "${e.resourceName}"`,
    };
  if (hello.nodeId !== e.peerNodeId || hello.peerNodeId !== e.nodeId)
    return {
      ok: false,
      reason: rejectReason.nodeId,
      message: `the peer is node ${hello.nodeId} expecting node ${hello.peerNodeId}; we are node ${e.nodeId} expecting node ${e.peerNodeId}`,
    };
  return { ok: true, version, features: hello.featureFlags & featureFlagsSupported };
}

const authLabel = new TextEncoder().encode("mirra-auth-v1\0");

/**
 * The bytes a responder authenticates: label, the challenge it received, its own node id,
 * and the resource name. HMAC-SHA256(secret, these bytes) is the authResponse MAC.
 */
export function authMessage(
  challenge: Uint8Array,
  responderNodeId: number,
  resourceName: string,
): Uint8Array {
  if (challenge.length !== challengeBytes)
    throw new ProtocolError(`auth challenge of ${challenge.length} bytes`);
  const name = new TextEncoder().encode(resourceName);
  const out = new Uint8Array(authLabel.length + challengeBytes + 1 + name.length);
  out.set(authLabel, 0);
  out.set(challenge, authLabel.length);
  out[authLabel.length + challengeBytes] = responderNodeId;
  out.set(name, authLabel.length + challengeBytes + 1);
  return out;
}

/** Compares two MACs in time independent of where they differ. */
export function macEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
