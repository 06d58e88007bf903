//! Helpers the integration tests share: recognisable data, and calls to a controller's REST API.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";

/** `length` bytes derived from `seed` (sha256 of "seed:i" per 32 bytes): a write is recognisable. */
export function pattern(seed: string, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0, at = 0; at < length; i++, at += 32)
    createHash("sha256")
      .update(`${seed}:${i}`)
      .digest()
      .copy(out, at, 0, Math.min(32, length - at));
  return out;
}

/** A REST call that must succeed (HTTP < 400); returns the decoded answer. */
export async function restCall(
  baseUrl: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<unknown> {
  const r = await fetch(baseUrl + path, {
    method,
    ...(body === undefined
      ? {}
      : { body: JSON.stringify(body), headers: { "content-type": "application/json" } }),
  });
  const answer = (await r.json()) as unknown;
  assert.ok(r.status < 400, `${method} ${path}: HTTP ${r.status} ${JSON.stringify(answer)}`);
  return answer;
}

/** The parts of `GET /v1/view/resources` the satellite tests read. */
export interface ResourceView {
  node_name: string;
  flags: string[];
  volumes: {
    usable_size_kib?: number;
    state?: {
      disk_state?: string;
      replication_states?: Record<string, { replication_state: string }>;
    };
    device_path?: string;
  }[];
}

/** Every replica of resource `name`, as the controller at `baseUrl` shows it. */
export async function viewResources(baseUrl: string, name: string): Promise<ResourceView[]> {
  return (await restCall(baseUrl, "GET", `/v1/view/resources?resources=${name}`)) as ResourceView[];
}

/** A satellite to register with the controller, with the directory of its storage pool "pool". */
export interface SatelliteNode {
  name: string;
  address: string;
  port: number;
  poolDir: string;
}

/**
 * Registers each satellite as a node with a file storage pool named "pool", after setting the
 * controller's NBD port base (so that the tests' exports do not collide with other tests').
 */
export async function registerSatellites(
  baseUrl: string,
  nodes: readonly SatelliteNode[],
  providerKind: "FILE" | "FILE_THIN",
  nbdPortBase: number,
): Promise<void> {
  await restCall(baseUrl, "POST", "/v1/controller/properties", {
    override_props: { "Mirra/NbdPortBase": String(nbdPortBase) },
  });
  for (const n of nodes) {
    await restCall(baseUrl, "POST", "/v1/nodes", {
      name: n.name,
      type: "SATELLITE",
      net_interfaces: [{ name: "default", address: n.address, satellite_port: n.port }],
    });
    await restCall(baseUrl, "POST", `/v1/nodes/${n.name}/storage-pools`, {
      storage_pool_name: "pool",
      provider_kind: providerKind,
      props: { "StorDriver/FileDir": n.poolDir },
    });
  }
}
