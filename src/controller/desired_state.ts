//! What a node should hold, built from the controller's store: the `DesiredState` its
//! satellite reconciles to (src/satellite/reconcile.ts). Pure over a `StoreReader`.
//!
//! - Pools: the node's FILE and FILE_THIN pools that name a directory (`StorDriver/FileDir`);
//!   other kinds have no satellite driver, so a resource on them is a problem the satellite
//!   reports ("storage pool X is not on this node").
//! - Addresses: a node's replication and NBD address is its first net interface's address;
//!   every replica of a resource listens on the resource definition's port, so two nodes on
//!   one machine need two addresses (`mirra up` uses 127.0.0.1, .2, .3).
//! - NBD: every volume (but a tie-breaker's) is exported on its node's address, port `nbdPortBase + minor - 1000`
//!   (10809 for the first minor; the controller property `Mirra/NbdPortBase` moves it).

import { inheritedProps } from "./api_common.js";
import { minorMin } from "./api_definitions.js";
import type {
  NodeRecord,
  ResourceDefinitionRecord,
  ResourceRecord,
  StoreReader,
} from "./store/store.js";
import { optionNames } from "../config/resource_file.js";
import type {
  DesiredPeer,
  DesiredPool,
  DesiredResource,
  DesiredState,
} from "../satellite/reconcile.js";

export const fileDirProp = "StorDriver/FileDir";
export const nbdPortBaseProp = "Mirra/NbdPortBase";
/**
 * Set on a resource by toggle-disk into diskful: its new disk joins peers that hold data, so
 * the satellite creates its metadata Inconsistent and it full-syncs from them.
 */
export const joiningProp = "Mirra/DiskJoinsPeers";
/** NBD's registered port, for the first device minor. */
export const nbdPortBaseDefault = 10809;
/** LINSTOR's default peer slots when neither definition nor group sets them. */
const peerSlotsDefault = 7;

/** The address other nodes reach `node` on; undefined when it has no net interface. */
export function nodeAddress(node: NodeRecord): string | undefined {
  return node.netInterfaces[0]?.address;
}

/** `HOST:PORT` of the node's satellite, from its first interface with a satellite port. */
export function satelliteAddress(node: NodeRecord): { host: string; port: number } | undefined {
  const ni = node.netInterfaces.find((n) => n.satellitePort !== null);
  return ni === undefined ? undefined : { host: ni.address, port: ni.satellitePort! };
}

function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

function nbdPortBase(tx: StoreReader): number {
  const v = Number(tx.controllerProps()[nbdPortBaseProp]);
  return Number.isInteger(v) && v > 0 && v < 65535 ? v : nbdPortBaseDefault;
}

function poolDirectory(tx: StoreReader, r: ResourceRecord): string | null {
  if (r.flags.includes("DISKLESS")) return null;
  const pool = tx.storagePool(r.node, r.storagePool);
  return pool?.props[fileDirProp] ?? null;
}

/** The desired state of node `name`; an unknown node holds nothing. */
export function desiredStateFor(tx: StoreReader, name: string): DesiredState {
  const node = tx.node(name);
  if (node === undefined) return { pools: [], resources: [] };
  const pools: DesiredPool[] = [];
  for (const p of tx.storagePools(node.name)) {
    const directory = p.props[fileDirProp];
    if ((p.providerKind === "FILE" || p.providerKind === "FILE_THIN") && directory !== undefined)
      pools.push({ name: p.name, kind: p.providerKind, directory });
  }
  const host = nodeAddress(node) ?? "127.0.0.1";
  const base = nbdPortBase(tx);
  const resources: DesiredResource[] = [];
  for (const r of tx.resources({ node: node.name })) {
    const rd = tx.resourceDefinition(r.resourceDefinition);
    if (rd === undefined) continue;
    const rg = tx.resourceGroup(rd.resourceGroup);
    const peers: DesiredPeer[] = tx
      .resources({ resourceDefinition: rd.name })
      .filter((p) => p.node !== r.node)
      .map((p) => {
        const peerNode = tx.node(p.node);
        return {
          name: p.node,
          nodeId: p.nodeId,
          host: (peerNode && nodeAddress(peerNode)) ?? "127.0.0.1",
          poolDirectory: poolDirectory(tx, p),
        };
      });
    const diskless = r.flags.includes("DISKLESS");
    // A tie-breaker only votes; LINSTOR gives it no device to use either.
    const exported = !r.flags.includes("TIE_BREAKER");
    resources.push({
      name: rd.name,
      nodeName: node.name,
      host,
      port: rd.port,
      sharedSecret: rd.secret,
      nodeId: r.nodeId,
      peerSlots: Math.max(rd.peerSlots ?? rg?.peerSlots ?? peerSlotsDefault, peers.length, 1),
      diskless,
      ...(!diskless && r.props[joiningProp] === "true" ? { joining: true } : {}),
      pool: r.storagePool,
      volumes: tx.volumeDefinitions(rd.name).map((v) => ({
        volume: v.volumeNumber,
        // The engine works in 4 KiB blocks; LINSTOR sizes are KiB.
        sizeKib: Math.ceil(v.sizeKib / 4) * 4,
        ...(exported ? { nbd: hostPort(host, base + v.minorNumber - minorMin) } : {}),
      })),
      peers,
      options: drbdOptionsFor(tx, rd, peers.length + 1),
    });
  }
  return { pools, resources };
}

/**
 * The resource file's DRBD options from LINSTOR's `DrbdOptions/<Section>/<name>` properties,
 * looked up on the definition, then its group, then the controller (the first one set wins),
 * plus LINSTOR's auto-quorum: a resource with three or more nodes (tie-breakers count) gets
 * `quorum majority` and `on-no-quorum` from `DrbdOptions/auto-quorum` (default io-error,
 * `disabled` turns it off) unless quorum is set explicitly. Names the resource file does not
 * know are left out: the daemon would refuse the whole file for one of them.
 */
export function drbdOptionsFor(
  tx: StoreReader,
  rd: ResourceDefinitionRecord,
  nodeCount: number,
): Record<string, string | number | boolean> {
  const props = inheritedProps(tx, rd);
  const options: Record<string, string | number | boolean> = {};
  for (const [key, value] of Object.entries(props)) {
    const m = /^DrbdOptions\/(?:Resource|Net|Disk|PeerDevice|Handlers)\/([a-z0-9-]+)$/.exec(key);
    if (m === null || !optionNames.includes(m[1]!)) continue;
    options[m[1]!] = optionValue(value);
  }
  const auto = (props["DrbdOptions/auto-quorum"] ?? "io-error").toLowerCase();
  if (options["quorum"] === undefined && nodeCount >= 3 && auto !== "disabled") {
    options["quorum"] = "majority";
    options["on-no-quorum"] ??= auto === "suspend-io" ? "suspend-io" : "io-error";
  }
  return options;
}

/** LINSTOR properties are strings; the resource file wants numbers and booleans typed. */
function optionValue(value: string): string | number | boolean {
  if (/^\d+$/.test(value)) return Number(value);
  const lower = value.toLowerCase();
  if (lower === "yes" || lower === "true") return true;
  if (lower === "no" || lower === "false") return false;
  return value;
}
