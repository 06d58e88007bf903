//! The satellite's I/O shell: `execute` applies reconcile's actions to the real disk, and
//! `observe` reads the state reconcile needs back from it. Every step is crash-safe on its
//! own, so that reconcile can resume after a crash between (or inside) any two actions:
//! - metadata and resource files are written to a temporary name, synced and renamed, so they
//!   exist whole or not at all;
//! - backing files grow from their current size, so a half-created one is grown next time.
//! Running daemons sit behind `ResourceRunner`: the executor decides when to start and stop,
//! the runner knows how.

import * as fs from "node:fs";
import * as path from "node:path";
import { createMd, readMd } from "../cli/md.js";
import { ConfigError, DiskIoError, MetadataError } from "../stdx/errors.js";
import {
  contentHash,
  parseVolumeFileName,
  volumeFilePath,
  type Action,
  type ObservedMetadata,
  type ObservedPool,
  type ObservedResourceFile,
  type ObservedRunning,
  type ObservedState,
  type ObservedVolumeFile,
  type VolumeFileRef,
} from "./reconcile.js";

/** Starts and stops the node daemon of one resource (`mirra node run --config FILE`). */
export interface ResourceRunner {
  /** Starts (or restarts) `resource` from the resource file at `filePath`. */
  start(resource: string, filePath: string, hash: string): Promise<void>;
  /** Stops `resource`; resolves once its daemon has released its disks. */
  stop(resource: string): Promise<void>;
  /** Resources running now, with the restart key of the file each was started from. */
  running(): readonly ObservedRunning[];
  /** `mirra adm resize` of `resource`'s daemon; rejects with the daemon's refusal. */
  resize(resource: string): Promise<void>;
}

export interface ExecutorConfig {
  /** Directory of the resource files, one `RESOURCE.json` per resource. */
  readonly resourceDirectory: string;
  readonly runner: ResourceRunner;
}

/** Zeros written per call when preallocating a FILE pool's backing file. */
const preallocateChunkBytes = 1 << 20;

export function resourceFilePath(config: ExecutorConfig, resource: string): string {
  return path.join(config.resourceDirectory, `${resource}.json`);
}

function ioError(what: string, target: string, err: unknown): DiskIoError {
  const e = err as NodeJS.ErrnoException;
  return new DiskIoError(`cannot ${what} ${target}: ${e.message}`, e.code, { cause: err });
}

/** Applies `actions` in order; stops at the first failure (reconcile resumes from there). */
export async function execute(actions: readonly Action[], config: ExecutorConfig): Promise<void> {
  for (const action of actions) await executeOne(action, config);
}

async function executeOne(a: Action, config: ExecutorConfig): Promise<void> {
  switch (a.type) {
    case "createPoolDirectory":
      return guard("create", a.directory, () => fs.mkdirSync(a.directory, { recursive: true }));
    case "stopResource":
      return config.runner.stop(a.resource);
    case "deleteResourceFile":
      return removeFile(resourceFilePath(config, a.resource));
    case "deleteVolumeFile":
    case "removeDisk":
      return removeFile(volumeFilePath(a.file));
    case "createBacking":
    case "growBacking":
      return guard("size", volumeFilePath(a.file), () =>
        sizeBacking(volumeFilePath(a.file), a.sizeKib * 1024, a.provisioning === "preallocated"),
      );
    case "createMetadata":
      return createMetadata(a.file, a.nodeId, a.peerSlots, a.alExtents, a.inconsistent === true);
    case "writeResourceFile":
      return guard("write", resourceFilePath(config, a.resource), () => {
        fs.mkdirSync(config.resourceDirectory, { recursive: true });
        writeAtomically(resourceFilePath(config, a.resource), a.content);
      });
    case "startResource":
    case "restartResource":
      return config.runner.start(a.resource, resourceFilePath(config, a.resource), a.hash);
    case "resizeResource":
      return config.runner.resize(a.resource);
  }
}

function guard(what: string, target: string, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    if (err instanceof DiskIoError || err instanceof ConfigError) throw err;
    throw ioError(what, target, err);
  }
}

function removeFile(file: string): void {
  guard("delete", file, () => {
    fs.rmSync(file, { force: true });
    syncDirectory(path.dirname(file));
  });
}

function syncDirectory(dir: string): void {
  const fd = fs.openSync(dir, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Creates or grows `file` to `sizeBytes`: sparse, or with every new byte written. */
function sizeBacking(file: string, sizeBytes: number, preallocate: boolean): void {
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT);
  try {
    const fromBytes = fs.fstatSync(fd).size;
    if (fromBytes >= sizeBytes) return;
    if (!preallocate) fs.ftruncateSync(fd, sizeBytes);
    else {
      // Node has no fallocate; writing zeros reserves the blocks just as well.
      const zeros = new Uint8Array(preallocateChunkBytes);
      for (let at = fromBytes; at < sizeBytes; at += zeros.length)
        fs.writeSync(fd, zeros, 0, Math.min(zeros.length, sizeBytes - at), at);
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  syncDirectory(path.dirname(file));
}

function writeAtomically(file: string, content: string): void {
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, "w");
  try {
    fs.writeSync(fd, content);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  syncDirectory(path.dirname(file));
}

/** create-md on a temporary file, then rename: a crash never leaves a half-written area. */
function createMetadata(
  ref: VolumeFileRef,
  nodeId: number,
  peers: number,
  al: number,
  inconsistent: boolean,
): void {
  const meta = volumeFilePath(ref);
  const tmp = `${meta}.tmp`;
  guard("create metadata", meta, () => {
    fs.rmSync(tmp, { force: true });
    createMd(
      {
        backing: volumeFilePath({ ...ref, kind: "backing" }),
        meta: tmp,
        nodeId: String(nodeId),
        peers: String(peers),
        alExtents: String(al),
        inconsistent,
      },
      () => undefined,
    );
    fs.renameSync(tmp, meta);
    syncDirectory(path.dirname(meta));
  });
}

/**
 * Reads the observed state: the given pool directories (capacity and volume files), the
 * resource files, and what the runner runs. Files the satellite did not name are ignored.
 */
export function observe(poolDirectories: readonly string[], config: ExecutorConfig): ObservedState {
  const pools: ObservedPool[] = [];
  const files: ObservedVolumeFile[] = [];
  for (const directory of poolDirectories) {
    if (!fs.existsSync(directory)) continue;
    const st = guardValue("statfs", directory, () => fs.statfsSync(directory));
    pools.push({
      directory,
      freeKib: Math.floor((st.bavail * st.bsize) / 1024),
      totalKib: Math.floor((st.blocks * st.bsize) / 1024),
    });
    for (const name of fs.readdirSync(directory).sort()) {
      const parsed = parseVolumeFileName(name);
      if (parsed === undefined) continue;
      const ref: VolumeFileRef = { directory, ...parsed };
      const sizeBytes = guardValue(
        "stat",
        name,
        () => fs.statSync(path.join(directory, name)).size,
      );
      const metadata = ref.kind === "metadata" ? readMetadata(ref) : null;
      files.push({ ...ref, sizeKib: Math.floor(sizeBytes / 1024), metadata });
    }
  }
  const resourceFiles: ObservedResourceFile[] = [];
  if (fs.existsSync(config.resourceDirectory)) {
    for (const name of fs.readdirSync(config.resourceDirectory).sort()) {
      if (!name.endsWith(".json")) continue;
      const text = fs.readFileSync(path.join(config.resourceDirectory, name), "utf8");
      resourceFiles.push({ resource: name.slice(0, -".json".length), hash: contentHash(text) });
    }
  }
  return { pools, files, resourceFiles, running: [...config.runner.running()] };
}

function guardValue<T>(what: string, target: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw ioError(what, target, err);
  }
}

/** The metadata's identity, or null when there is no valid area (reconcile reports that). */
function readMetadata(ref: VolumeFileRef): ObservedMetadata | null {
  try {
    const { decoded } = readMd({
      backing: volumeFilePath({ ...ref, kind: "backing" }),
      meta: volumeFilePath(ref),
    });
    const h = decoded.header;
    return { nodeId: h.nodeId, peerSlots: h.peerSlots, volumeKib: h.volumeBytes / 1024 };
  } catch (err) {
    if (err instanceof MetadataError || err instanceof DiskIoError || err instanceof ConfigError)
      return null;
    throw err;
  }
}
