//! The satellite's reconcile step: a pure function from what the controller wants on this node
//! (`DesiredState`) and what exists on its disks and in its process table (`ObservedState`) to
//! the list of actions that closes the gap. The executor (executor.ts) applies the actions and
//! `observe` reads the state back; nothing here touches the disk, so the step is tested
//! against a model of the disk (reconcile.test.ts).
//!
//! Invariants, each checked by a property test:
//! - Idempotent: after applying every action, reconciling again yields no action.
//! - Never destroys data of a desired resource: only resources that this node should no longer
//!   hold at all lose their files, and only after they were stopped; a resource desired
//!   diskless (toggle-disk) loses its disk files once its daemon runs without them.
//! - Safe to resume after a crash between any two actions: the actions are ordered so that
//!   every prefix leaves a state the next reconcile picks up from (backing file, then
//!   metadata, then resource file, then start).
//!
//! Layout of a pool directory (LINSTOR's FILE driver naming): `RSC_VVVVV.img` is the backing
//! file of volume V of resource RSC, `RSC_VVVVV.meta` its external metadata. External metadata
//! keeps the backing file's size equal to the volume's size, so growing a volume is growing a
//! file on every diskful node, then one online resize (`resizer`) that grows the metadata.

import { alExtentsDefault, peerSlotsMax } from "../engine/ondisk/mod.js";

/** The storage pool drivers a satellite implements: a directory of files. */
export type PoolKind = "FILE" | "FILE_THIN";

export interface DesiredPool {
  readonly name: string;
  readonly kind: PoolKind;
  /** Absolute path of the pool's directory (LINSTOR's `StorDriver/FileDir`). */
  readonly directory: string;
}

export interface DesiredVolume {
  readonly volume: number;
  /** Size of the replicated volume; a positive multiple of 4 KiB. */
  readonly sizeKib: number;
  /** Where this node exports the volume over NBD (`HOST:PORT` or `unix:/path`); none: not. */
  readonly nbd?: string;
}

export interface DesiredPeer {
  readonly name: string;
  readonly nodeId: number;
  /** The host the peer's daemon listens on; the port is the resource definition's. */
  readonly host: string;
  /** The peer's pool directory; null when the peer is diskless. */
  readonly poolDirectory: string | null;
}

export interface DesiredResource {
  /** The resource definition's name. */
  readonly name: string;
  /** This node's name in the resource file. */
  readonly nodeName: string;
  /** The host this node's daemon listens on for its peers. */
  readonly host: string;
  /** The TCP port the controller allocated to the resource definition. */
  readonly port: number;
  readonly sharedSecret: string;
  /** This node's replication node-id, 0..31. */
  readonly nodeId: number;
  /** Peer slots in the metadata: at least the number of peers, at most 32. */
  readonly peerSlots: number;
  /** Activity-log extents in the metadata. @default 1237 */
  readonly alExtents?: number;
  readonly diskless: boolean;
  /** The storage pool backing every volume; ignored when diskless. */
  readonly pool: string;
  readonly volumes: readonly DesiredVolume[];
  readonly peers: readonly DesiredPeer[];
  /** DRBD options for the resource file by their drbd.conf names (quorum, protocol, ...). */
  readonly options?: Readonly<Record<string, string | number | boolean>>;
  /**
   * This node's disk joins a resource whose peers already hold data (toggle-disk into
   * diskful): metadata created for it starts Inconsistent, so it full-syncs from its peers
   * instead of claiming the zeroed day-0 data every replica of a new resource starts with.
   */
  readonly joining?: boolean;
}

export interface DesiredState {
  readonly pools: readonly DesiredPool[];
  readonly resources: readonly DesiredResource[];
}

export interface ObservedPool {
  readonly directory: string;
  readonly freeKib: number;
  readonly totalKib: number;
}

/** What a valid metadata area says about itself. */
export interface ObservedMetadata {
  readonly nodeId: number;
  readonly peerSlots: number;
  /** Data size the metadata describes. */
  readonly volumeKib: number;
}

export interface ObservedVolumeFile {
  readonly directory: string;
  readonly resource: string;
  readonly volume: number;
  readonly kind: "backing" | "metadata";
  readonly sizeKib: number;
  /** For metadata files: the decoded area, or null when the file holds no valid area. */
  readonly metadata: ObservedMetadata | null;
}

export interface ObservedResourceFile {
  readonly resource: string;
  /** `contentHash` of the file's text. */
  readonly hash: string;
}

export interface ObservedRunning {
  readonly resource: string;
  /** `restartKey` of the resource file the daemon was started with. */
  readonly hash: string;
}

/** What a running daemon says about its volumes and peers (its admin `status`). */
export interface ObservedDaemon {
  readonly resource: string;
  /** Primary or Secondary. */
  readonly role: string;
  readonly volumes: readonly {
    readonly volume: number;
    readonly disk: string;
    /** The size the daemon serves now. */
    readonly sizeKib: number;
  }[];
  readonly peers: readonly {
    readonly nodeId: number;
    readonly role: string;
    readonly volumes: readonly {
      readonly volume: number;
      readonly replication: string;
      readonly peerDisk: string;
    }[];
  }[];
}

export interface ObservedState {
  /** Pool directories that exist. */
  readonly pools: readonly ObservedPool[];
  readonly files: readonly ObservedVolumeFile[];
  readonly resourceFiles: readonly ObservedResourceFile[];
  readonly running: readonly ObservedRunning[];
  /** Status of the running daemons that answered; none: no online resize is started. */
  readonly daemons?: readonly ObservedDaemon[];
}

export type Provisioning = "preallocated" | "sparse";

export type Action =
  | { readonly type: "createPoolDirectory"; readonly directory: string }
  | { readonly type: "stopResource"; readonly resource: string }
  | { readonly type: "deleteResourceFile"; readonly resource: string }
  | { readonly type: "deleteVolumeFile"; readonly file: VolumeFileRef }
  | {
      readonly type: "createBacking";
      readonly file: VolumeFileRef;
      readonly sizeKib: number;
      readonly provisioning: Provisioning;
    }
  | {
      readonly type: "growBacking";
      readonly file: VolumeFileRef;
      readonly sizeKib: number;
      readonly provisioning: Provisioning;
    }
  | {
      readonly type: "createMetadata";
      /** The metadata file; its backing file is the same ref with kind "backing". */
      readonly file: VolumeFileRef;
      readonly nodeId: number;
      readonly peerSlots: number;
      readonly alExtents: number;
      /** Created Inconsistent: the node joins peers that hold data (`joining`). */
      readonly inconsistent?: true;
    }
  | {
      readonly type: "writeResourceFile";
      readonly resource: string;
      readonly content: string;
      readonly hash: string;
    }
  | {
      readonly type: "startResource" | "restartResource";
      readonly resource: string;
      /** `restartKey` of the resource file, recorded as what the daemon runs from. */
      readonly hash: string;
      /** `contentHash` of the resource file it starts from. */
      readonly fileHash: string;
    }
  /** A diskless resource's old disk files, once its daemon runs from the diskless file. */
  | { readonly type: "removeDisk"; readonly file: VolumeFileRef; readonly runningHash: string }
  /** `mirra adm resize` of the running daemon: grows every volume to its disks' new size. */
  | { readonly type: "resizeResource"; readonly resource: string };

export interface VolumeFileRef {
  readonly directory: string;
  readonly resource: string;
  readonly volume: number;
  readonly kind: "backing" | "metadata";
}

/** Why a desired resource cannot be brought up; reported, never "fixed" by deleting data. */
export interface Problem {
  readonly resource: string;
  readonly message: string;
}

export interface Plan {
  readonly actions: readonly Action[];
  readonly problems: readonly Problem[];
}

/** The file name of a volume file in its pool directory (LINSTOR's `RSC_00000` naming). */
export function volumeFileName(resource: string, volume: number, kind: VolumeFileRef["kind"]) {
  return `${resource}_${String(volume).padStart(5, "0")}.${kind === "backing" ? "img" : "meta"}`;
}

export function volumeFilePath(ref: VolumeFileRef): string {
  return `${ref.directory}/${volumeFileName(ref.resource, ref.volume, ref.kind)}`;
}

/** Inverse of `volumeFileName`; undefined for a file the satellite did not create. */
export function parseVolumeFileName(
  name: string,
): { resource: string; volume: number; kind: VolumeFileRef["kind"] } | undefined {
  const m = /^(.+)_(\d{5})\.(img|meta)$/.exec(name);
  if (!m) return undefined;
  return { resource: m[1]!, volume: Number(m[2]), kind: m[3] === "img" ? "backing" : "metadata" };
}

/**
 * A 64-bit FNV-1a hash of `text` as 16 hex digits. It only detects changed resource files
 * (not adversarial ones), and it is pure, so reconcile can compute it without node:crypto.
 */
export function contentHash(text: string): string {
  let h = 0xcbf29ce484222325n;
  const bytes = new TextEncoder().encode(text);
  for (const b of bytes) {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h.toString(16).padStart(16, "0");
}

function joinHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * The resource file (docs/resource-file.md) of `r` for this node, as the exact text the
 * executor writes. Nodes are sorted by node-id and the JSON is generated field by field, so
 * the same desired state always gives the same bytes (and the same hash).
 */
export function resourceFileFor(r: DesiredResource, poolDirectory: string | null): string {
  const volumes = [...r.volumes].sort((a, b) => a.volume - b.volume);
  const nodeVolumes = (dir: string | null, self: boolean) =>
    volumes.map((v) => {
      const nbd = self && v.nbd !== undefined ? { nbd: v.nbd } : {};
      if (dir === null) return { volume: v.volume, disk: "none", ...nbd };
      const ref = { directory: dir, resource: r.name, volume: v.volume };
      return {
        volume: v.volume,
        disk: volumeFilePath({ ...ref, kind: "backing" }),
        "meta-disk": volumeFilePath({ ...ref, kind: "metadata" }),
        ...nbd,
      };
    });
  const self = {
    name: r.nodeName,
    "node-id": r.nodeId,
    address: joinHostPort(r.host, r.port),
    volumes: nodeVolumes(r.diskless ? null : poolDirectory, true),
  };
  const peers = r.peers.map((p) => ({
    name: p.name,
    "node-id": p.nodeId,
    address: joinHostPort(p.host, r.port),
    volumes: nodeVolumes(p.poolDirectory, false),
  }));
  const doc = {
    resource: r.name,
    "shared-secret": r.sharedSecret,
    protocol: "C",
    options: sortedOptions({ "al-extents": r.alExtents ?? alExtentsDefault, ...r.options }),
    volumes: volumes.map((v) => ({ volume: v.volume, size: `${v.sizeKib}K` })),
    nodes: [self, ...peers].sort((a, b) => a["node-id"] - b["node-id"]),
  };
  return JSON.stringify(doc, null, 2) + "\n";
}

/** The same options always give the same bytes, whatever order they were collected in. */
function sortedOptions(
  options: Record<string, string | number | boolean>,
): Record<string, string | number | boolean> {
  return Object.fromEntries(Object.entries(options).sort(([a], [b]) => a.localeCompare(b)));
}

export function reconcile(desired: DesiredState, observed: ObservedState): Action[] {
  return [...plan(desired, observed).actions];
}

/** `reconcile` plus the reasons some desired resources cannot be brought up. */
export function plan(desired: DesiredState, observed: ObservedState): Plan {
  const actions: Action[] = [];
  const problems: Problem[] = [];
  const desiredNames = new Set(desired.resources.map((r) => r.name));

  // Pools first: every later file action needs its directory.
  for (const pool of desired.pools) {
    if (!observed.pools.some((p) => p.directory === pool.directory))
      actions.push({ type: "createPoolDirectory", directory: pool.directory });
  }

  // Resources this node should no longer hold: stop, then forget the resource file so that
  // nothing can start it again, then delete its files (metadata before backing, so a crash in
  // between never leaves metadata that claims a missing disk).
  const gone = new Set<string>();
  for (const run of observed.running) if (!desiredNames.has(run.resource)) gone.add(run.resource);
  for (const f of observed.resourceFiles) if (!desiredNames.has(f.resource)) gone.add(f.resource);
  for (const f of observed.files) if (!desiredNames.has(f.resource)) gone.add(f.resource);
  for (const name of [...gone].sort()) {
    if (observed.running.some((x) => x.resource === name))
      actions.push({ type: "stopResource", resource: name });
    if (observed.resourceFiles.some((x) => x.resource === name))
      actions.push({ type: "deleteResourceFile", resource: name });
    const files = observed.files
      .filter((f) => f.resource === name)
      .sort((a, b) => (a.kind === b.kind ? 0 : a.kind === "metadata" ? -1 : 1));
    for (const f of files) actions.push({ type: "deleteVolumeFile", file: refOf(f) });
  }

  // Online resizes last: the daemon refuses one while a peer is not ready, and that refusal
  // (reported, retried on the next pass) must not hold up the other resources' actions.
  const resizes: Action[] = [];
  for (const r of desired.resources) {
    const result = planResource(r, desired, observed);
    for (const a of result.actions) (a.type === "resizeResource" ? resizes : actions).push(a);
    problems.push(...result.problems);
  }
  return { actions: [...actions, ...resizes], problems };
}

/** The resource file's rule for names (docs/resource-file.md). */
const resourceNamePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

function refOf(f: VolumeFileRef): VolumeFileRef {
  return { directory: f.directory, resource: f.resource, volume: f.volume, kind: f.kind };
}

function planResource(r: DesiredResource, desired: DesiredState, observed: ObservedState): Plan {
  const actions: Action[] = [];
  const problems: Problem[] = [];
  const fail = (message: string) => problems.push({ resource: r.name, message });
  // The name becomes part of file paths: refuse anything that could leave the pool directory.
  if (!resourceNamePattern.test(r.name)) {
    fail(`"${r.name}" is not a valid resource name`);
    return { actions, problems };
  }
  const pool = r.diskless ? undefined : desired.pools.find((p) => p.name === r.pool);
  if (!r.diskless && pool === undefined) fail(`storage pool ${r.pool} is not on this node`);
  if (r.peerSlots < Math.max(1, r.peers.length) || r.peerSlots > peerSlotsMax)
    fail(`${r.peerSlots} peer slots cannot hold ${r.peers.length} peer(s)`);
  // What each volume's own metadata serves; until an online resize grows it, the resource
  // file keeps that size, so a daemon that restarts meanwhile still attaches.
  const servedKib = new Map<number, number>();
  if (pool !== undefined && problems.length === 0) {
    const observedPool = observed.pools.find((p) => p.directory === pool.directory);
    // Free space is spent as preallocated files are created in this pass.
    let freeKib = observedPool?.freeKib ?? Infinity;
    for (const v of r.volumes) {
      const ref = { directory: pool.directory, resource: r.name, volume: v.volume };
      const backingRef: VolumeFileRef = { ...ref, kind: "backing" };
      const metaRef: VolumeFileRef = { ...ref, kind: "metadata" };
      const backing = findFile(observed, backingRef);
      const meta = findFile(observed, metaRef);
      const provisioning: Provisioning = pool.kind === "FILE" ? "preallocated" : "sparse";
      const missingKib = v.sizeKib - (backing?.sizeKib ?? 0);
      if (missingKib > 0 && provisioning === "preallocated" && missingKib > freeKib) {
        fail(`volume ${v.volume} needs ${missingKib} KiB but pool ${pool.name} has ${freeKib}`);
        continue;
      }
      if (missingKib > 0 && provisioning === "preallocated") freeKib -= missingKib;
      if (backing === undefined)
        actions.push({ type: "createBacking", file: backingRef, sizeKib: v.sizeKib, provisioning });
      else if (backing.sizeKib < v.sizeKib)
        actions.push({ type: "growBacking", file: backingRef, sizeKib: v.sizeKib, provisioning });
      if (meta === undefined) {
        // After the backing file: create-md sizes the metadata for the backing file's data.
        actions.push({
          type: "createMetadata",
          file: metaRef,
          nodeId: r.nodeId,
          peerSlots: r.peerSlots,
          alExtents: r.alExtents ?? alExtentsDefault,
          ...(r.joining === true ? { inconsistent: true as const } : {}),
        });
        continue;
      }
      // Existing metadata is never overwritten: it holds the generation identifiers and
      // bitmaps, and recreating it would force a full resync (or hide a misconfiguration).
      const m = meta.metadata;
      if (m === null) fail(`volume ${v.volume}: ${volumeFilePath(metaRef)} is not valid metadata`);
      else if (m.nodeId !== r.nodeId)
        fail(`volume ${v.volume}: metadata belongs to node-id ${m.nodeId}, not ${r.nodeId}`);
      else if (m.peerSlots < r.peers.length)
        fail(`volume ${v.volume}: metadata has ${m.peerSlots} peer slots for ${r.peers.length}`);
      else if (m.volumeKib < v.sizeKib) servedKib.set(v.volume, m.volumeKib);
    }
  }
  // A resource with a problem keeps running as it is, on its old resource file.
  if (problems.length > 0) return { actions, problems };
  const fileResource: DesiredResource = {
    ...r,
    volumes: r.volumes.map((v) => ({ ...v, sizeKib: servedKib.get(v.volume) ?? v.sizeKib })),
  };
  const content = resourceFileFor(fileResource, pool?.directory ?? null);
  const fileHash = contentHash(content);
  const key = restartKey(fileResource, pool?.directory ?? null);
  const written = observed.resourceFiles.find((f) => f.resource === r.name);
  if (written?.hash !== fileHash)
    actions.push({ type: "writeResourceFile", resource: r.name, content, hash: fileHash });
  const running = observed.running.find((x) => x.resource === r.name);
  if (running === undefined)
    actions.push({ type: "startResource", resource: r.name, hash: key, fileHash });
  else if (running.hash !== key)
    actions.push({ type: "restartResource", resource: r.name, hash: key, fileHash });
  if (r.diskless) {
    // Like LINSTOR, a replica toggled diskless loses its disk files, but only once its
    // daemon runs from the diskless file (and so holds them no longer).
    const leftovers = observed.files
      .filter(
        (f) => f.resource === r.name && desired.pools.some((p) => p.directory === f.directory),
      )
      .sort((a, b) => (a.kind === b.kind ? 0 : a.kind === "metadata" ? -1 : 1));
    for (const f of leftovers)
      actions.push({ type: "removeDisk", file: refOf(f), runningHash: key });
  }
  if (running?.hash === key && resizer(r, observed))
    actions.push({ type: "resizeResource", resource: r.name });
  return { actions, problems };
}

/**
 * The hash that decides whether a running daemon must restart: the resource file's, with
 * every volume's size left out. A size change is applied online by `resizeResource` (the
 * daemon takes its size from the metadata once a resize agreed on it), never by a restart.
 */
export function restartKey(r: DesiredResource, poolDirectory: string | null): string {
  const sizeless = { ...r, volumes: r.volumes.map((v) => ({ ...v, sizeKib: 0 })) };
  return contentHash(resourceFileFor(sizeless, poolDirectory));
}

/**
 * Whether this node runs the online resize of `r`, as LINSTOR runs `drbdadm resize` on one
 * node once every diskful node grew its backing storage. The daemon refuses unless every
 * diskful peer is connected and Established and a Primary resizes itself, so: this node's
 * volumes are UpToDate, every diskful peer is Established and UpToDate on every volume, and
 * this node is the Primary, or (with no Primary) the diskful node with the lowest node-id.
 * The resize takes no size: the daemon grows to the smallest backing file of the diskful
 * nodes, so a peer whose file is not grown yet holds the size back instead of having its
 * file extended under its satellite's own growBacking.
 * Every satellite sees the same connected cluster, so exactly one of them picks itself; the
 * others wait. Until then the next pass asks again.
 */
function resizer(r: DesiredResource, observed: ObservedState): boolean {
  const d = observed.daemons?.find((x) => x.resource === r.name);
  if (d === undefined) return false;
  const smaller = r.volumes.some(
    (v) => (d.volumes.find((x) => x.volume === v.volume)?.sizeKib ?? v.sizeKib) < v.sizeKib,
  );
  if (!smaller) return false;
  // The daemon resizes from UpToDate local data only. (A diskless Primary blocks the resize
  // everywhere, as in DRBD; it proceeds once that client lets go.)
  if (r.diskless) return false;
  if (!r.volumes.every((v) => d.volumes.find((x) => x.volume === v.volume)?.disk === "UpToDate"))
    return false;
  const diskfulPeers = r.peers.filter((p) => p.poolDirectory !== null);
  for (const p of diskfulPeers) {
    const seen = d.peers.find((x) => x.nodeId === p.nodeId);
    const ready = r.volumes.every((v) => {
      const pv = seen?.volumes.find((x) => x.volume === v.volume);
      return pv?.replication === "Established" && pv.peerDisk === "UpToDate";
    });
    if (!ready) return false;
  }
  if (d.role === "Primary") return true;
  if (d.peers.some((p) => p.role === "Primary")) return false;
  return diskfulPeers.every((p) => p.nodeId > r.nodeId);
}

function findFile(observed: ObservedState, ref: VolumeFileRef): ObservedVolumeFile | undefined {
  return observed.files.find(
    (f) =>
      f.directory === ref.directory &&
      f.resource === ref.resource &&
      f.volume === ref.volume &&
      f.kind === ref.kind,
  );
}
