//! The resource file: what a DRBD `.res` file says, as JSON (docs/resource-file.md). One
//! file describes one resource on every node: its name, shared secret, protocol and options
//! (DRBD's names, units and defaults from drbd-options.md), its nodes with node ids and peer
//! addresses, and its volumes with size and, per node, backing disk, metadata placement and
//! NBD export address. The same file is installed on every node; each node's daemon finds
//! itself in it by `--node-id` or by host name.
//!
//! The parser is a pure function of the text: it never touches the disks it names. Every
//! problem is reported with the JSON path of the field (`nodes[1].volumes[0].meta-disk`), and
//! all problems of a file are reported at once so that an operator fixes them in one go.

import { ConfigError } from "../stdx/errors.js";
import { parseSize } from "../stdx/units.js";
import type {
  AfterSb0pri,
  AfterSb1pri,
  AfterSb2pri,
  NodeConfig,
  OnNoQuorum,
  Protocol,
  QuorumSetting,
  ReadBalancing,
  ResourceConfig,
  ResourceOptions,
} from "../engine/types.js";

/** Milliseconds per engine tick: DRBD's time options are in tenths of a second. */
export const tickMs = 100;

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** Where a volume's NBD export listens on its node. */
export type NbdAddress =
  | { readonly kind: "tcp"; readonly host: string; readonly port: number }
  | { readonly kind: "unix"; readonly path: string };

export interface NodeVolumeSpec {
  readonly volume: number;
  /** Backing file or block device; undefined for a diskless volume (`"disk": "none"`). */
  readonly disk: string | undefined;
  /** `internal` (tail of the backing disk) or the path of an external metadata file/device. */
  readonly metaDisk: "internal" | { readonly path: string };
  /** Export address of this volume on this node; undefined: not exported. */
  readonly nbd: NbdAddress | undefined;
}

export interface NodeSpec {
  readonly name: string;
  readonly nodeId: number;
  /** Address this node's daemon listens on for peer links of this resource. */
  readonly address: HostPort;
  readonly volumes: readonly NodeVolumeSpec[];
}

export interface VolumeSpec {
  readonly volume: number;
  /** Size of the replicated volume in bytes, a multiple of 4 KiB. */
  readonly sizeBytes: number;
}

export interface TlsFiles {
  readonly certificate: string;
  readonly privateKey: string;
  readonly ca: string;
}

/** Options of the peer links (shell side; the engine's options are in `engineOptions`). */
export interface LinkOptions {
  /** `connect-int`: upper bound of the reconnect delay. */
  readonly connectIntMs: number;
  /** `ping-int`: silence before a keepalive ping. */
  readonly pingIntMs: number;
  /** `ping-timeout`: silence after a ping before the connection is dropped. */
  readonly pingTimeoutMs: number;
  /** `tls yes`: certificate, key and CA (PEM files). */
  readonly tls: TlsFiles | undefined;
}

export interface ResourceFile {
  readonly resource: string;
  readonly sharedSecret: string | undefined;
  readonly protocol: Protocol;
  /** Engine options in the engine's units (ticks of `tickMs`). */
  readonly engineOptions: Partial<ResourceOptions>;
  readonly link: LinkOptions;
  readonly nodes: readonly NodeSpec[];
  readonly volumes: readonly VolumeSpec[];
}

export interface ResourceFileProblem {
  /** JSON path of the offending field, e.g. `nodes[1].address`; "" for the whole file. */
  readonly path: string;
  readonly message: string;
}

/** A resource file that cannot be used; `problems` lists every reason with its field path. */
export class ResourceFileError extends ConfigError {
  override name = "ResourceFileError";
  readonly problems: readonly ResourceFileProblem[];
  constructor(source: string, problems: readonly ResourceFileProblem[]) {
    const lines = problems.map((p) => `  ${p.path === "" ? "(file)" : p.path}: ${p.message}`);
    super(`resource file ${source} is not valid:\n${lines.join("\n")}`);
    this.problems = problems;
  }
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

function isObject(v: Json | undefined): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Collects problems while walking the document. */
class Checker {
  readonly problems: ResourceFileProblem[] = [];

  fail(path: string, message: string): undefined {
    this.problems.push({ path, message });
    return undefined;
  }

  /** Reports keys of `obj` not in `known`. */
  keys(obj: JsonObject, path: string, known: readonly string[]): void {
    for (const key of Object.keys(obj)) {
      if (!known.includes(key))
        this.fail(join(path, key), `unknown field; known fields here: ${known.join(", ")}`);
    }
  }

  string(obj: JsonObject, path: string, key: string, required: boolean): string | undefined {
    const v = obj[key];
    if (v === undefined) return required ? this.fail(join(path, key), "is required") : undefined;
    if (typeof v !== "string" || v === "")
      return this.fail(join(path, key), "must be a non-empty string");
    return v;
  }

  integer(
    obj: JsonObject,
    path: string,
    key: string,
    min: number,
    max: number,
    required: boolean,
  ): number | undefined {
    const v = obj[key];
    if (v === undefined) return required ? this.fail(join(path, key), "is required") : undefined;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max)
      return this.fail(join(path, key), `must be a whole number in ${min}..${max}`);
    return v;
  }
}

function join(path: string, key: string | number): string {
  if (typeof key === "number") return `${path}[${key}]`;
  return path === "" ? key : `${path}.${key}`;
}

/** Parses `HOST:PORT` or `[V6]:PORT`. */
export function parseHostPort(text: string): HostPort | string {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d+)$/.exec(text);
  if (!m) return `"${text}" is not HOST:PORT`;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return `port ${port} is outside 1..65535`;
  return { host: m[1] ?? m[2]!, port };
}

/** Parses an NBD export address: `HOST:PORT` or `unix:/path/to.sock`. */
export function parseNbdAddress(text: string): NbdAddress | string {
  if (text.startsWith("unix:")) {
    const path = text.slice(5);
    if (!path.startsWith("/")) return `"${text}": the socket path must be absolute`;
    return { kind: "unix", path };
  }
  const hp = parseHostPort(text);
  if (typeof hp === "string") return `${hp} (or unix:/path)`;
  return { kind: "tcp", ...hp };
}

function yesNo(v: Json): boolean | undefined {
  if (v === true || v === "yes") return true;
  if (v === false || v === "no") return false;
  return undefined;
}

type OptionTarget = keyof ResourceOptions | "protocol" | "connect-int" | "tls" | "tls-file";

interface OptionSpec {
  readonly target: OptionTarget;
  /** Checks and converts the value; a string is the problem. */
  readonly parse: (v: Json) => number | boolean | string | object | { problem: string };
}

function problem(message: string): { problem: string } {
  return { problem: message };
}

function intIn(min: number, max: number, scale = 1): (v: Json) => number | { problem: string } {
  return (v) =>
    typeof v === "number" && Number.isInteger(v) && v >= min && v <= max
      ? v * scale
      : problem(`must be a whole number in ${min}..${max}`);
}

function oneOf<T extends string>(values: readonly T[]): (v: Json) => T | { problem: string } {
  return (v) =>
    typeof v === "string" && (values as readonly string[]).includes(v)
      ? (v as T)
      : problem(`must be one of ${values.join(", ")}`);
}

function bool(v: Json): boolean | { problem: string } {
  const b = yesNo(v);
  return b === undefined ? problem("must be yes or no (or true or false)") : b;
}

/** The engine's digests are CRC32C; DRBD names the algorithm, so we accept that name. */
function digestAlg(v: Json): boolean | { problem: string } {
  if (v === "crc32c") return true;
  return problem('must be "crc32c" (the only digest the engine computes)');
}

/** Ticks per tenth of a second and per second, at `tickMs`. */
const perDecisecond = 100 / tickMs;
const perSecond = 1000 / tickMs;

/**
 * Options by their drbd.conf names (see drbd-options.md for meaning, units and defaults).
 * Time options keep DRBD's units in the file and become engine ticks here.
 */
const optionSpecs: Record<string, OptionSpec> = {
  protocol: { target: "protocol", parse: oneOf(["A", "B", "C"] as const) },
  "allow-two-primaries": { target: "allowTwoPrimaries", parse: bool },
  "auto-promote": { target: "autoPromote", parse: bool },
  quorum: {
    target: "quorum",
    parse: (v): QuorumSetting | { problem: string } =>
      v === "off" || v === "majority" || v === "all"
        ? v
        : typeof v === "number" && Number.isInteger(v) && v >= 1 && v <= 32
          ? v
          : problem("must be off, majority, all or a number of nodes 1..32"),
  },
  "on-no-quorum": {
    target: "onNoQuorum",
    parse: oneOf<OnNoQuorum>(["io-error", "suspend-io"]),
  },
  "read-balancing": {
    target: "readBalancing",
    parse: oneOf<ReadBalancing>([
      "prefer-local",
      "prefer-remote",
      "round-robin",
      "least-pending",
      "when-congested-remote",
    ]),
  },
  "after-sb-0pri": {
    target: "afterSb0pri",
    parse: (v): AfterSb0pri | { problem: string } => {
      if (typeof v === "string" && v.startsWith("discard-node-") && v.length > 13)
        return { discardNode: v.slice(13) };
      return oneOf([
        "disconnect",
        "discard-younger-primary",
        "discard-older-primary",
        "discard-zero-changes",
        "discard-least-changes",
      ] as const)(v);
    },
  },
  "after-sb-1pri": {
    target: "afterSb1pri",
    parse: oneOf<AfterSb1pri>([
      "disconnect",
      "consensus",
      "discard-secondary",
      "call-pri-lost-after-sb",
    ]),
  },
  "after-sb-2pri": {
    target: "afterSb2pri",
    parse: oneOf<AfterSb2pri>(["disconnect", "call-pri-lost-after-sb"]),
  },
  "al-extents": { target: "alExtents", parse: intIn(7, 65534) },
  "ping-int": { target: "pingIntTicks", parse: intIn(1, 120, perSecond) },
  "ping-timeout": { target: "pingTimeoutTicks", parse: intIn(1, 300, perDecisecond) },
  timeout: { target: "timeoutTicks", parse: intIn(1, 600, perDecisecond) },
  "ko-count": { target: "koCount", parse: intIn(0, 200) },
  "max-epoch-size": { target: "maxEpochSize", parse: intIn(1, 20000) },
  "max-buffers": { target: "maxBuffers", parse: intIn(32, 131072) },
  "c-plan-ahead": { target: "cPlanAheadTicks", parse: intIn(0, 300, perDecisecond) },
  "c-fill-target": { target: "cFillTargetSectors", parse: intIn(0, 1048576) },
  "c-min-rate": { target: "cMinRateKiBps", parse: intIn(0, 4 * 1024 * 1024) },
  "c-max-rate": { target: "cMaxRateKiBps", parse: intIn(0, 4 * 1024 * 1024) },
  "resync-rate": { target: "resyncRateKiBps", parse: intIn(1, 4 * 1024 * 1024) },
  "csums-alg": { target: "csumsAlg", parse: digestAlg },
  "verify-alg": { target: "verifyAlg", parse: digestAlg },
  "connect-int": { target: "connect-int", parse: intIn(1, 120) },
  tls: { target: "tls", parse: bool },
  "tls-certificate": {
    target: "tls-file",
    parse: (v) => (typeof v === "string" && v !== "" ? v : problem("must be a file path")),
  },
  "tls-privkey": {
    target: "tls-file",
    parse: (v) => (typeof v === "string" && v !== "" ? v : problem("must be a file path")),
  },
  "tls-ca": {
    target: "tls-file",
    parse: (v) => (typeof v === "string" && v !== "" ? v : problem("must be a file path")),
  },
};

/** Option names the resource file accepts, for documentation and error messages. */
export const optionNames: readonly string[] = Object.keys(optionSpecs);

const topKeys = ["resource", "shared-secret", "protocol", "options", "volumes", "nodes"];
const volumeKeys = ["volume", "size"];
const nodeKeys = ["name", "node-id", "address", "volumes"];
const nodeVolumeKeys = ["volume", "disk", "meta-disk", "nbd"];

/** Parses and validates a resource file's text; `source` names it in error messages. */
export function parseResourceFile(text: string, source = "(text)"): ResourceFile {
  let doc: Json;
  try {
    doc = JSON.parse(text) as Json;
  } catch (err) {
    throw new ResourceFileError(source, [
      { path: "", message: `not JSON: ${(err as Error).message}` },
    ]);
  }
  const c = new Checker();
  const result = validate(doc, c);
  if (c.problems.length > 0 || result === undefined)
    throw new ResourceFileError(source, c.problems);
  return result;
}

function validate(doc: Json, c: Checker): ResourceFile | undefined {
  if (!isObject(doc)) return c.fail("", "must be a JSON object");
  c.keys(doc, "", topKeys);
  const resource = c.string(doc, "", "resource", true);
  if (resource !== undefined && !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(resource))
    c.fail("resource", "must be 1..64 letters, digits, '_', '.' or '-', starting alphanumeric");
  const sharedSecret = c.string(doc, "", "shared-secret", false);

  const engineOptions: Record<string, unknown> = {};
  let protocol: Protocol = "C";
  let connectIntS = 10;
  let tlsOn = false;
  const tlsFiles: Record<string, string> = {};
  const applyOption = (name: string, value: Json, path: string): void => {
    const spec = optionSpecs[name];
    if (spec === undefined) {
      c.fail(path, `unknown option; known options: ${optionNames.join(", ")}`);
      return;
    }
    const parsed = spec.parse(value);
    if (typeof parsed === "object" && parsed !== null && "problem" in parsed) {
      c.fail(path, parsed.problem);
      return;
    }
    switch (spec.target) {
      case "protocol":
        protocol = parsed as Protocol;
        return;
      case "connect-int":
        connectIntS = parsed as number;
        return;
      case "tls":
        tlsOn = parsed as boolean;
        return;
      case "tls-file":
        tlsFiles[name] = parsed as string;
        return;
      default:
        engineOptions[spec.target] = parsed;
    }
  };
  if (doc["protocol"] !== undefined) applyOption("protocol", doc["protocol"], "protocol");
  const options = doc["options"];
  if (options !== undefined) {
    if (!isObject(options)) c.fail("options", "must be an object of drbd.conf options");
    else for (const [k, v] of Object.entries(options)) applyOption(k, v, join("options", k));
  }
  let tls: TlsFiles | undefined;
  if (tlsOn) {
    for (const k of ["tls-certificate", "tls-privkey", "tls-ca"])
      if (tlsFiles[k] === undefined) c.fail(join("options", k), "is required with tls yes");
    tls = {
      certificate: tlsFiles["tls-certificate"] ?? "",
      privateKey: tlsFiles["tls-privkey"] ?? "",
      ca: tlsFiles["tls-ca"] ?? "",
    };
  } else if (Object.keys(tlsFiles).length > 0) {
    c.fail("options.tls", "TLS files are given but tls is not yes");
  }
  const volumes = validateVolumes(doc["volumes"], c);
  const nodes = validateNodes(doc["nodes"], c, volumes);
  const quorum = engineOptions["quorum"];
  if (typeof quorum === "number" && nodes !== undefined && quorum > nodes.length)
    c.fail("options.quorum", `${quorum} is more than the resource's ${nodes.length} nodes`);
  const tSec = (engineOptions["timeoutTicks"] as number | undefined) ?? 60;
  const pingIntTicks = (engineOptions["pingIntTicks"] as number | undefined) ?? 100;
  if (tSec >= connectIntS * perSecond)
    c.fail("options.timeout", "must be less than connect-int (DRBD's rule)");
  if (tSec >= pingIntTicks) c.fail("options.timeout", "must be less than ping-int (DRBD's rule)");
  if (resource === undefined || volumes === undefined || nodes === undefined) return undefined;
  const pingTimeoutTicks = (engineOptions["pingTimeoutTicks"] as number | undefined) ?? 5;
  return {
    resource,
    sharedSecret,
    protocol,
    engineOptions: { ...(engineOptions as Partial<ResourceOptions>), tickMs },
    link: {
      connectIntMs: connectIntS * 1000,
      pingIntMs: pingIntTicks * tickMs,
      pingTimeoutMs: pingTimeoutTicks * tickMs,
      tls,
    },
    nodes,
    volumes,
  };
}

function validateVolumes(v: Json | undefined, c: Checker): VolumeSpec[] | undefined {
  if (v === undefined) return c.fail("volumes", "is required (a list of { volume, size })");
  if (!Array.isArray(v) || v.length === 0)
    return c.fail("volumes", "must be a non-empty list of { volume, size }");
  const out: VolumeSpec[] = [];
  v.forEach((item, i) => {
    const path = join("volumes", i);
    if (!isObject(item)) return c.fail(path, "must be an object { volume, size }");
    c.keys(item, path, volumeKeys);
    const volume = c.integer(item, path, "volume", 0, 65535, true);
    const sizeBytes = sizeOf(item["size"], join(path, "size"), c);
    if (volume !== undefined && out.some((o) => o.volume === volume))
      c.fail(join(path, "volume"), `volume ${volume} is defined twice`);
    if (volume !== undefined && sizeBytes !== undefined) out.push({ volume, sizeBytes });
    return undefined;
  });
  return out.length === v.length ? out : undefined;
}

function sizeOf(v: Json | undefined, path: string, c: Checker): number | undefined {
  if (v === undefined) return c.fail(path, 'is required (bytes, or a size such as "64M")');
  let bytes: number;
  if (typeof v === "number") bytes = v;
  else if (typeof v === "string") {
    try {
      bytes = parseSize(v);
    } catch (err) {
      return c.fail(path, (err as Error).message);
    }
  } else return c.fail(path, 'must be a number of bytes or a size such as "64M"');
  if (!Number.isSafeInteger(bytes) || bytes < 4096 || bytes % 4096 !== 0)
    return c.fail(path, `${bytes} bytes is not a positive multiple of 4 KiB`);
  if (bytes > 2 ** 44) return c.fail(path, "is larger than 16 TiB, the metadata format's limit");
  return bytes;
}

function validateNodes(
  v: Json | undefined,
  c: Checker,
  volumes: readonly VolumeSpec[] | undefined,
): NodeSpec[] | undefined {
  if (v === undefined) return c.fail("nodes", "is required (a list of nodes)");
  if (!Array.isArray(v) || v.length === 0 || v.length > 32)
    return c.fail("nodes", "must be a list of 1..32 nodes");
  const out: NodeSpec[] = [];
  v.forEach((item, i) => {
    const path = join("nodes", i);
    if (!isObject(item))
      return c.fail(path, "must be an object { name, node-id, address, volumes }");
    c.keys(item, path, nodeKeys);
    const name = c.string(item, path, "name", true);
    const nodeId = c.integer(item, path, "node-id", 0, 31, true);
    const addressText = c.string(item, path, "address", true);
    let address: HostPort | undefined;
    if (addressText !== undefined) {
      const a = parseHostPort(addressText);
      if (typeof a === "string") c.fail(join(path, "address"), a);
      else address = a;
    }
    if (name !== undefined && out.some((o) => o.name === name))
      c.fail(join(path, "name"), `node name "${name}" is used twice`);
    if (nodeId !== undefined && out.some((o) => o.nodeId === nodeId))
      c.fail(join(path, "node-id"), `node id ${nodeId} is used twice`);
    if (address !== undefined && out.some((o) => sameAddress(o.address, address!)))
      c.fail(join(path, "address"), `address ${addressText} is used by two nodes`);
    const nodeVolumes = validateNodeVolumes(item["volumes"], join(path, "volumes"), c, volumes);
    if (
      name !== undefined &&
      nodeId !== undefined &&
      address !== undefined &&
      nodeVolumes !== undefined
    )
      out.push({ name, nodeId, address, volumes: nodeVolumes });
    return undefined;
  });
  return out.length === v.length ? out : undefined;
}

function sameAddress(a: HostPort, b: HostPort): boolean {
  return a.host === b.host && a.port === b.port;
}

function validateNodeVolumes(
  v: Json | undefined,
  path: string,
  c: Checker,
  volumes: readonly VolumeSpec[] | undefined,
): NodeVolumeSpec[] | undefined {
  if (v === undefined) return c.fail(path, "is required: one entry per volume of the resource");
  if (!Array.isArray(v)) return c.fail(path, "must be a list of { volume, disk, meta-disk, nbd }");
  const out: NodeVolumeSpec[] = [];
  let bad = false;
  v.forEach((item, i) => {
    const p = join(path, i);
    if (!isObject(item)) {
      bad = true;
      return c.fail(p, "must be an object { volume, disk, meta-disk, nbd }");
    }
    c.keys(item, p, nodeVolumeKeys);
    const volume = c.integer(item, p, "volume", 0, 65535, true);
    if (volume !== undefined && volumes !== undefined && !volumes.some((x) => x.volume === volume))
      c.fail(join(p, "volume"), `volume ${volume} is not in the resource's volumes`);
    if (volume !== undefined && out.some((o) => o.volume === volume))
      c.fail(join(p, "volume"), `volume ${volume} is listed twice for this node`);
    const diskText = c.string(item, p, "disk", true);
    const disk = diskText === "none" ? undefined : diskText;
    if (disk !== undefined && !disk.startsWith("/"))
      c.fail(join(p, "disk"), 'must be an absolute path (or "none" for a diskless volume)');
    const metaText = c.string(item, p, "meta-disk", false) ?? "internal";
    let metaDisk: NodeVolumeSpec["metaDisk"] = "internal";
    if (metaText !== "internal") {
      if (!metaText.startsWith("/"))
        c.fail(join(p, "meta-disk"), 'must be "internal" or an absolute path');
      else metaDisk = { path: metaText };
    }
    if (diskText === "none" && item["meta-disk"] !== undefined)
      c.fail(join(p, "meta-disk"), "a diskless volume has no metadata");
    const nbdText = c.string(item, p, "nbd", false);
    let nbd: NbdAddress | undefined;
    if (nbdText !== undefined) {
      const a = parseNbdAddress(nbdText);
      if (typeof a === "string") c.fail(join(p, "nbd"), a);
      else nbd = a;
    }
    if (volume === undefined || diskText === undefined) bad = true;
    else out.push({ volume, disk, metaDisk, nbd });
    return undefined;
  });
  if (volumes !== undefined) {
    for (const vol of volumes)
      if (!out.some((o) => o.volume === vol.volume) && !bad)
        c.fail(path, `has no entry for volume ${vol.volume} (use "disk": "none" for diskless)`);
  }
  return bad ? undefined : out.sort((a, b) => a.volume - b.volume);
}

/**
 * Finds the node this daemon runs as: by `nodeId` when given, else the node whose name is
 * the host name (as DRBD matches `on HOSTNAME`).
 */
export function localNode(
  file: ResourceFile,
  nodeId: number | undefined,
  hostname: string,
): NodeSpec {
  if (nodeId !== undefined) {
    const node = file.nodes.find((n) => n.nodeId === nodeId);
    if (node === undefined)
      throw new ConfigError(
        `resource ${file.resource} has no node with node-id ${nodeId} ` +
          `(its nodes: ${file.nodes.map((n) => `${n.name}=${n.nodeId}`).join(", ")})`,
      );
    return node;
  }
  const short = hostname.split(".")[0]!;
  const node = file.nodes.find((n) => n.name === hostname || n.name === short);
  if (node === undefined)
    throw new ConfigError(
      `resource ${file.resource} has no node named "${hostname}": give --node-id or name ` +
        `the node after this host (its nodes: ${file.nodes.map((n) => n.name).join(", ")})`,
    );
  return node;
}

/** Name of one volume's replica on the wire (peer handshakes) and of its NBD export. */
export function volumeWireName(file: ResourceFile, volume: number): string {
  return file.volumes.length === 1 && volume === 0 ? file.resource : `${file.resource}/${volume}`;
}

/** The engine's configuration of one volume of the resource. */
export function engineConfigOf(
  file: ResourceFile,
  volume: number,
  optionOverrides: Partial<ResourceOptions> = {},
): ResourceConfig {
  const spec = file.volumes.find((v) => v.volume === volume);
  if (spec === undefined)
    throw new ConfigError(`resource ${file.resource} has no volume ${volume}`);
  const nodes: NodeConfig[] = file.nodes.map((n) => ({
    id: n.nodeId,
    name: n.name,
    disk: n.volumes.find((v) => v.volume === volume)?.disk === undefined ? "diskless" : "diskful",
  }));
  return {
    name: volumeWireName(file, volume),
    nodes,
    sizeBlocks: spec.sizeBytes / 4096,
    protocol: file.protocol,
    options: { ...file.engineOptions, ...optionOverrides },
  };
}
