//! One resource on this node: its peer listener, one VolumeHost (replica) per volume, and the
//! NBD export of each volume that names an address for this node. `up` attaches it all,
//! `down` takes it all away again (exports first, so that no client IO is cut off mid-way,
//! then a demotion, then the replicas); admin commands fan out to every volume.

import * as fs from "node:fs";
import * as path from "node:path";
import type { Logger } from "../io/log.js";
import { PeerListener, type PeerTlsOptions } from "../io/peer_link.js";
import { NbdServer, type ListenAddress } from "../nbd/server.js";
import { ConfigError, MirraError } from "../stdx/errors.js";
import type { AdminCommand } from "../engine/types.js";
import type { NodeSpec, ResourceFile } from "../config/resource_file.js";
import { ReplicatedDevice } from "./replicated_device.js";
import {
  VolumeHost,
  type AdminResult,
  type StateChangeRecord,
  type VolumeStatus,
} from "./volume_host.js";
import type { AdminRequest, ConnectionStatus, ResourceStatus } from "./admin_protocol.js";

/** Reads the PEM files of `tls yes`: a missing file fails `up` with a clear error. */
function readTls(file: ResourceFile): PeerTlsOptions | undefined {
  const t = file.link.tls;
  if (t === undefined) return undefined;
  try {
    return {
      cert: fs.readFileSync(t.certificate),
      key: fs.readFileSync(t.privateKey),
      ca: fs.readFileSync(t.ca),
    };
  } catch (err) {
    throw new ConfigError(
      `resource ${file.resource}: cannot read a TLS file: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}

/** How long `down` waits for a demotion before detaching anyway. */
const demoteTimeoutMs = 10_000;

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

export class ResourceHost {
  readonly name: string;
  private readonly volumes: VolumeHost[];
  private listener: PeerListener | null = null;
  private readonly exports = new Map<number, { server: NbdServer; address: ListenAddress }>();
  private readonly log: Logger;
  /** Serialises up/down so that two admin clients cannot interleave them. */
  private busy: Promise<unknown> = Promise.resolve();

  constructor(
    readonly file: ResourceFile,
    readonly self: NodeSpec,
    logger: Logger,
    onStateChange?: (resource: string, change: StateChangeRecord) => void,
  ) {
    this.name = file.resource;
    this.log = logger.child({ resource: file.resource, node: self.nodeId });
    const forward = onStateChange
      ? (change: StateChangeRecord): void => onStateChange(file.resource, change)
      : undefined;
    this.volumes = self.volumes.map((v) => new VolumeHost(file, self, v.volume, this.log, forward));
  }

  get isUp(): boolean {
    return this.listener !== null;
  }

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.busy.then(work, work);
    this.busy = next.catch(() => undefined);
    return next;
  }

  /** Attaches every volume, listens for peers and starts the exports. Idempotent. */
  up(): Promise<void> {
    return this.serial(async () => {
      if (this.isUp) return;
      const { host, port } = this.self.address;
      const tls = readTls(this.file);
      let listener: PeerListener;
      try {
        listener = await PeerListener.listen({
          host,
          port,
          logger: this.log,
          ...(tls !== undefined ? { tls } : {}),
        });
      } catch (err) {
        throw new MirraError(
          "MIRRA_E_CONFLICT",
          `resource ${this.name}: cannot listen for peers on ${host}:${port}: ${(err as Error).message}`,
          { cause: err },
        );
      }
      this.listener = listener;
      try {
        for (const v of this.volumes) v.attach(listener, tls);
        for (const v of this.volumes) await this.startExport(v);
      } catch (err) {
        await this.teardown();
        throw err;
      }
      this.log.info("resource up");
    });
  }

  private async startExport(v: VolumeHost): Promise<void> {
    const spec = this.self.volumes.find((x) => x.volume === v.volume)!;
    if (spec.nbd === undefined) return;
    const server = new NbdServer({
      exports: [
        {
          name: v.wireName,
          description: `mirra resource ${this.name} volume ${v.volume}`,
          device: new ReplicatedDevice(v),
          counters: v.io,
        },
      ],
      logger: this.log.child({ export: v.wireName }),
    });
    let address: ListenAddress;
    try {
      if (spec.nbd.kind === "unix") {
        fs.mkdirSync(path.dirname(spec.nbd.path), { recursive: true });
        address = await server.listenUnix(spec.nbd.path);
      } else address = await server.listenTcp(spec.nbd.host, spec.nbd.port);
    } catch (err) {
      throw new MirraError(
        "MIRRA_E_CONFLICT",
        `resource ${this.name} volume ${v.volume}: cannot export over NBD: ${(err as Error).message}`,
        { cause: err },
      );
    }
    this.exports.set(v.volume, { server, address });
    this.log.info("exporting", { volume: v.volume, uri: address.uri });
  }

  /**
   * Stops the exports (in-flight requests finish), demotes if Primary, then detaches every
   * volume and stops listening. Idempotent.
   */
  down(): Promise<void> {
    return this.serial(async () => {
      if (!this.isUp) return;
      await Promise.all([...this.exports.values()].map((e) => e.server.close()));
      this.exports.clear();
      for (const v of this.volumes) {
        if (v.status().role !== "Primary") continue;
        // A Primary whose IO is suspended (no quorum) may not finish demoting: bounded wait,
        // then detach anyway (the metadata's primary flag makes the next start a recovery).
        const r = await Promise.race([
          v.admin({ type: "secondary" }),
          delay(demoteTimeoutMs).then(() => ({ ok: false, error: "timed out" })),
        ]);
        if (!r.ok)
          this.log.warn("demotion before down failed", { volume: v.volume, error: r.error });
      }
      // A clean detach logs an empty activity log: the next start resyncs nothing for this
      // node's hot extents. Bounded too; without it the next start treats them as suspect.
      for (const v of this.volumes) {
        if (v.status().role === "Primary") continue;
        const r = await Promise.race([
          v.admin({ type: "down" }),
          delay(demoteTimeoutMs).then(() => ({ ok: false, error: "timed out" })),
        ]);
        if (!r.ok) this.log.warn("clean detach failed", { volume: v.volume, error: r.error });
      }
      await this.teardown();
      this.log.info("resource down");
    });
  }

  private async teardown(): Promise<void> {
    for (const e of this.exports.values()) await e.server.close(0);
    this.exports.clear();
    for (const v of this.volumes) await v.detach();
    await this.listener?.close();
    this.listener = null;
  }

  /** Runs an engine admin command on every volume; fails with the first volume's error. */
  private async everyVolume(command: AdminCommand): Promise<AdminResult> {
    if (!this.isUp) return { ok: false, error: `resource ${this.name} is down (run adm up)` };
    const results = await Promise.all(this.volumes.map((v) => v.admin(command)));
    const bad = results.findIndex((r) => !r.ok);
    if (bad < 0) return { ok: true };
    const prefix = this.volumes.length > 1 ? `volume ${this.volumes[bad]!.volume}: ` : "";
    return { ok: false, error: prefix + (results[bad]!.error ?? "failed") };
  }

  /** Handles one admin request for this resource. */
  async handle(request: AdminRequest): Promise<AdminResult> {
    const peer = request.peer === undefined ? undefined : this.peerId(request.peer);
    if (typeof peer === "string") return { ok: false, error: peer };
    switch (request.command) {
      case "up":
        await this.up();
        return { ok: true };
      case "down":
        await this.down();
        return { ok: true };
      case "primary":
        return this.everyVolume({ type: "primary", ...(request.force ? { force: true } : {}) });
      case "secondary":
        return this.everyVolume({ type: "secondary" });
      case "connect":
        return this.everyVolume({
          type: "connect",
          ...(peer !== undefined ? { peer } : {}),
          ...(request.discardMyData ? { discardMyData: true } : {}),
        });
      case "disconnect":
        return this.everyVolume({ type: "disconnect", ...(peer !== undefined ? { peer } : {}) });
      case "invalidate":
        return this.everyVolume({ type: "invalidate" });
      case "verify":
        return this.verify(peer);
      case "resize":
        return this.resize(request.size, request.assumeClean === true);
      case "status":
        return { ok: true };
    }
  }

  private peerId(text: string | number): number | string {
    const node =
      typeof text === "number"
        ? this.file.nodes.find((n) => n.nodeId === text)
        : this.file.nodes.find((n) => n.name === text || String(n.nodeId) === text);
    if (node === undefined) return `resource ${this.name} has no peer ${text}`;
    if (node.nodeId === this.self.nodeId) return `node ${text} is this node, not a peer`;
    return node.nodeId;
  }

  /** Online grow of every volume (docs/daemon.md, "Online resize"), one after another. */
  private async resize(sizeBytes: number | undefined, assumeClean: boolean): Promise<AdminResult> {
    if (!this.isUp) return { ok: false, error: `resource ${this.name} is down (run adm up)` };
    if (sizeBytes !== undefined && (sizeBytes <= 0 || sizeBytes % 4096 !== 0))
      return { ok: false, error: `size ${sizeBytes} is not a positive multiple of 4 KiB` };
    for (const v of this.volumes) {
      const before = v.sizeBytes;
      const r = await v.resize(sizeBytes, assumeClean);
      const prefix = this.volumes.length > 1 ? `volume ${v.volume}: ` : "";
      if (!r.ok) return { ok: false, error: prefix + (r.error ?? "failed") };
      if (v.sizeBytes !== before)
        this.log.info("volume resized", { volume: v.volume, sizeBytes: v.sizeBytes, assumeClean });
    }
    return { ok: true };
  }

  /** Online verify against one peer, or against every connected diskful peer. */
  private async verify(peer: number | undefined): Promise<AdminResult> {
    if (!this.isUp) return { ok: false, error: `resource ${this.name} is down (run adm up)` };
    if (!this.file.engineOptions.verifyAlg)
      return { ok: false, error: "Need a verify algorithm to start online verify" };
    for (const v of this.volumes) {
      const targets =
        peer !== undefined
          ? [peer]
          : v
              .status()
              .peers.filter((p) => p.connection === "Connected" && p.disk !== "Diskless")
              .map((p) => p.nodeId);
      if (targets.length === 0) return { ok: false, error: "no connected peer to verify against" };
      for (const t of targets) {
        const r = await v.admin({ type: "verify", peer: t });
        if (!r.ok) return r;
      }
    }
    return { ok: true };
  }

  status(): ResourceStatus {
    const volumes = this.volumes.map((v) => v.status());
    const connections: ConnectionStatus[] = this.file.nodes
      .filter((n) => n.nodeId !== this.self.nodeId)
      .map((n) => {
        const per = volumes.map((vs) => ({ vs, p: vs.peers.find((p) => p.nodeId === n.nodeId) }));
        const states = per.map((x) => x.p?.connection ?? "StandAlone");
        const connection = states.every((s) => s === states[0]) ? states[0]! : worst(states);
        const roles = per.map((x) => x.p?.role ?? "Unknown");
        return {
          nodeId: n.nodeId,
          name: n.name,
          connection,
          role: roles.includes("Primary") ? "Primary" : (roles[0] ?? "Unknown"),
          volumes: per.map(({ vs, p }) => ({
            volume: vs.volume,
            replication: p?.replication ?? "Off",
            peerDisk: p?.disk ?? "DUnknown",
            // A SyncTarget's bitmap lacks the source's bits: what the resync still moves is
            // the better answer, as DRBD's target (which holds both bitmaps) gives it.
            outOfSyncKiB: (p?.traffic.resyncRemainingBlocks ?? p?.outOfSyncBlocks ?? 0) * 4,
            ...(p?.donePercent !== undefined ? { donePercent: p.donePercent } : {}),
            ...(p !== undefined ? { traffic: p.traffic } : {}),
          })),
        };
      });
    return {
      resource: this.name,
      nodeId: this.self.nodeId,
      nodeName: this.self.name,
      up: this.isUp,
      role: !this.isUp
        ? "Unknown"
        : volumes.some((v) => v.role === "Primary")
          ? "Primary"
          : "Secondary",
      volumes: volumes.map((v: VolumeStatus) => {
        const e = this.exports.get(v.volume);
        return {
          volume: v.volume,
          sizeBytes: v.sizeBytes,
          disk: this.isUp ? v.disk : "Diskless",
          quorum: v.quorum,
          suspended: v.suspended,
          writesInFlight: v.writesInFlight,
          ...(e !== undefined ? { nbd: e.address.uri } : {}),
          io: this.volumes.find((h) => h.volume === v.volume)!.io.snapshot(),
          ...(v.metadata !== undefined ? { metadata: v.metadata } : {}),
          localIo: v.localIo,
          upperPending: v.upperPending,
        };
      }),
      connections,
    };
  }
}

/** The least connected of several connection states (for a multi-volume summary). */
function worst(states: readonly string[]): string {
  const order = ["StandAlone", "Disconnecting", "Unconnected", "Connecting", "Connected"];
  let best = states[0]!;
  for (const s of states) if (order.indexOf(s) < order.indexOf(best)) best = s;
  return best;
}
