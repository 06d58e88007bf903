//! The controller↔satellite wire format (docs/satellite.md): the controller PUTs a node's
//! whole desired state with a generation number, the satellite answers with what it observes.
//! Pure: types and the check of a pushed desired state (it arrives over the network, so every
//! field is checked before reconcile sees it).

import type {
  DesiredPeer,
  DesiredPool,
  DesiredResource,
  DesiredState,
  DesiredVolume,
} from "./reconcile.js";

/** The satellite's default TCP port, as LINSTOR's (plain, not SSL). */
export const satellitePortDefault = 3366;

/** `PUT /v1/desired`: the complete desired state of one node. */
export interface DesiredPush {
  /** The node this state is for; a satellite refuses a push for another node. */
  readonly node: string;
  /**
   * Grows with every push from the controller; a satellite ignores a push older than the one
   * it holds, so a delayed request never undoes a newer one.
   */
  readonly generation: number;
  readonly state: DesiredState;
}

export interface PeerReport {
  readonly node: string;
  readonly nodeId: number;
  /** DRBD's connection state: Connected, Connecting, StandAlone, ... */
  readonly connection: string;
  /** DRBD's replication state: Established, SyncSource, SyncTarget, ... ("Off" when not connected). */
  readonly replication: string;
  readonly peerDisk: string;
  /** Resync progress in percent while syncing. */
  readonly donePercent?: number;
  readonly outOfSyncKib: number;
}

export interface VolumeReport {
  readonly volume: number;
  /** The size the daemon serves (grown by an online resize once every disk grew). */
  readonly sizeKib: number;
  /** DRBD's disk state: UpToDate, Inconsistent, Diskless, ... */
  readonly diskState: string;
  /** The NBD URI of this node's export of the volume. */
  readonly nbd?: string;
  readonly peers: readonly PeerReport[];
}

export interface ResourceReport {
  readonly name: string;
  /** Whether its node daemon runs and answers on its admin socket. */
  readonly running: boolean;
  readonly role: string;
  readonly volumes: readonly VolumeReport[];
  /** Why the resource is not (fully) up: reconcile's problems, a daemon that failed. */
  readonly problems: readonly string[];
}

export interface PoolReport {
  readonly name: string;
  readonly kind: DesiredPool["kind"];
  readonly directory: string;
  /** Free and total capacity of the file system holding the pool; null before it exists. */
  readonly freeKib: number | null;
  readonly totalKib: number | null;
}

/** `GET /v1/report` (and the answer to a push): what the satellite observes. */
export interface SatelliteReport {
  readonly node: string;
  /** The newest desired state received; 0: none yet. */
  readonly generation: number;
  /** The generation the last completed reconcile pass applied. */
  readonly appliedGeneration: number;
  readonly pools: readonly PoolReport[];
  readonly resources: readonly ResourceReport[];
  /** Failures of the last pass that belong to no single resource. */
  readonly errors: readonly string[];
}

/** Answer of a push that was refused (another node's state, or an older generation). */
export interface PushRefusal {
  readonly error: string;
  readonly generation: number;
}

type Obj = Record<string, unknown>;

class PushError extends Error {}

function obj(v: unknown, where: string): Obj {
  if (typeof v !== "object" || v === null || Array.isArray(v))
    throw new PushError(`${where} must be an object`);
  return v as Obj;
}

function str(o: Obj, key: string, where: string): string {
  const v = o[key];
  if (typeof v !== "string") throw new PushError(`${where}.${key} must be a string`);
  return v;
}

function int(o: Obj, key: string, where: string, min: number, max: number): number {
  const v = o[key];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max)
    throw new PushError(`${where}.${key} must be an integer in ${min}..${max}`);
  return v;
}

function list(o: Obj, key: string, where: string): unknown[] {
  const v = o[key];
  if (!Array.isArray(v)) throw new PushError(`${where}.${key} must be a list`);
  return v;
}

function readPool(v: unknown, where: string): DesiredPool {
  const o = obj(v, where);
  const kind = str(o, "kind", where);
  if (kind !== "FILE" && kind !== "FILE_THIN")
    throw new PushError(`${where}.kind must be FILE or FILE_THIN`);
  const directory = str(o, "directory", where);
  if (!directory.startsWith("/")) throw new PushError(`${where}.directory must be absolute`);
  return { name: str(o, "name", where), kind, directory };
}

function readVolume(v: unknown, where: string): DesiredVolume {
  const o = obj(v, where);
  const sizeKib = int(o, "sizeKib", where, 4, Number.MAX_SAFE_INTEGER);
  if (sizeKib % 4 !== 0) throw new PushError(`${where}.sizeKib must be a multiple of 4`);
  const nbd = o["nbd"] === undefined ? undefined : str(o, "nbd", where);
  return {
    volume: int(o, "volume", where, 0, 65535),
    sizeKib,
    ...(nbd === undefined ? {} : { nbd }),
  };
}

function readPeer(v: unknown, where: string): DesiredPeer {
  const o = obj(v, where);
  const dir = o["poolDirectory"];
  if (dir !== null && typeof dir !== "string")
    throw new PushError(`${where}.poolDirectory must be a path or null`);
  return {
    name: str(o, "name", where),
    nodeId: int(o, "nodeId", where, 0, 31),
    host: str(o, "host", where),
    poolDirectory: dir,
  };
}

function readResource(v: unknown, where: string): DesiredResource {
  const o = obj(v, where);
  const diskless = o["diskless"];
  if (typeof diskless !== "boolean") throw new PushError(`${where}.diskless must be a boolean`);
  const al = o["alExtents"] === undefined ? undefined : int(o, "alExtents", where, 1, 65534);
  const joining = o["joining"];
  if (joining !== undefined && typeof joining !== "boolean")
    throw new PushError(`${where}.joining must be a boolean`);
  const options = o["options"] === undefined ? undefined : readOptions(o["options"], where);
  return {
    name: str(o, "name", where),
    nodeName: str(o, "nodeName", where),
    host: str(o, "host", where),
    port: int(o, "port", where, 1, 65535),
    sharedSecret: str(o, "sharedSecret", where),
    nodeId: int(o, "nodeId", where, 0, 31),
    peerSlots: int(o, "peerSlots", where, 1, 32),
    ...(al === undefined ? {} : { alExtents: al }),
    diskless,
    ...(joining === true ? { joining } : {}),
    pool: str(o, "pool", where),
    volumes: list(o, "volumes", where).map((x, i) => readVolume(x, `${where}.volumes[${i}]`)),
    peers: list(o, "peers", where).map((x, i) => readPeer(x, `${where}.peers[${i}]`)),
    ...(options === undefined ? {} : { options }),
  };
}

/** DRBD options by name; the resource file's parser checks names and values at start. */
function readOptions(v: unknown, where: string): Record<string, string | number | boolean> {
  const o = obj(v, `${where}.options`);
  const out: Record<string, string | number | boolean> = {};
  for (const [k, x] of Object.entries(o)) {
    if (!/^[a-z0-9-]{1,64}$/.test(k)) throw new PushError(`${where}.options: bad name "${k}"`);
    if (typeof x !== "string" && typeof x !== "number" && typeof x !== "boolean")
      throw new PushError(`${where}.options.${k} must be a string, number or boolean`);
    out[k] = x;
  }
  return out;
}

/** Checks a decoded push body; returns the push or why it is refused. */
export function parseDesiredPush(value: unknown): DesiredPush | string {
  try {
    const o = obj(value, "push");
    const state = obj(o["state"], "push.state");
    return {
      node: str(o, "node", "push"),
      generation: int(o, "generation", "push", 1, Number.MAX_SAFE_INTEGER),
      state: {
        pools: list(state, "pools", "state").map((x, i) => readPool(x, `state.pools[${i}]`)),
        resources: list(state, "resources", "state").map((x, i) =>
          readResource(x, `state.resources[${i}]`),
        ),
      },
    };
  } catch (err) {
    if (err instanceof PushError) return err.message;
    throw err;
  }
}
