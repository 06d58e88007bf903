//! `mirra create-md` and `mirra dump-md`: initialise and inspect a volume's metadata area,
//! internal (the tail of the backing device) or external (the tail of a separate device or
//! file, `--meta`). The format itself lives in src/engine/ondisk (docs/metadata.md); this
//! file only finds the area on disk, refuses to destroy a valid one without `--force`, and
//! prints what it holds. Admin commands, not the data path: synchronous file IO is fine.

import * as fs from "node:fs";
import { ConfigError, DiskIoError, MetadataError } from "../stdx/errors.js";
import { formatSize, parseSize } from "../stdx/units.js";
import { createPersistedMeta } from "../engine/meta.js";
import {
  alExtentBytesDefault,
  alExtentsDefault,
  alExtentsMax,
  alExtentsMin,
  areaOffsetOnDevice,
  chooseSuperblock,
  encodeMetadataArea,
  internalDataBytes,
  locateArea,
  metadataLayout,
  peerSlotsMax,
  readMetadataArea,
  roundDownPage,
  slotFree,
  superblockSlotBytes,
  type DecodedArea,
} from "../engine/ondisk/mod.js";

export interface CreateMdOptions {
  backing: string;
  meta?: string;
  nodeId: string;
  peers: string;
  alExtents?: string;
  size?: string;
  force?: boolean;
  /**
   * Start Inconsistent instead of day-0 UpToDate: for a disk that joins peers which already
   * hold data (the satellite's toggle-disk), so that it full-syncs from them.
   */
  inconsistent?: boolean;
}

export interface DumpMdOptions {
  backing: string;
  meta?: string;
  json?: boolean;
}

function parseIntOption(name: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || n < min || n > max)
    throw new ConfigError(`bad ${name} "${text}": use a whole number in ${min}..${max}`);
  return n;
}

function ioError(what: string, path: string, err: unknown): DiskIoError {
  const e = err as NodeJS.ErrnoException;
  return new DiskIoError(`cannot ${what} ${path}: ${e.message}`, e.code, { cause: err });
}

/** Size of a regular file or block device (block devices report 0 in stat; ask sysfs). */
export function deviceBytesOf(path: string): number {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(path);
  } catch (err) {
    throw ioError("open", path, err);
  }
  if (stat.isFile()) return stat.size;
  if (!stat.isBlockDevice())
    throw new ConfigError(`${path} is neither a regular file nor a block device`);
  const major = (stat.rdev >> 8) & 0xfff;
  const minor = (stat.rdev & 0xff) | ((stat.rdev >> 12) & 0xfff00);
  try {
    return Number(fs.readFileSync(`/sys/dev/block/${major}:${minor}/size`, "utf8").trim()) * 512;
  } catch (err) {
    throw ioError("find the size of", path, err);
  }
}

function readAt(path: string, offsetBytes: number, lengthBytes: number): Uint8Array {
  const buf = new Uint8Array(lengthBytes);
  let fd: number | undefined;
  try {
    fd = fs.openSync(path, "r");
    let done = 0;
    while (done < lengthBytes) {
      const n = fs.readSync(fd, buf, done, lengthBytes - done, offsetBytes + done);
      if (n === 0) break;
      done += n;
    }
    return buf;
  } catch (err) {
    throw ioError("read", path, err);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

function writeAtDurably(path: string, offsetBytes: number, data: Uint8Array): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(path, "r+");
    let done = 0;
    while (done < data.length) {
      done += fs.writeSync(fd, data, done, data.length - done, offsetBytes + done);
    }
    fs.fsyncSync(fd);
  } catch (err) {
    throw ioError("write", path, err);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

function createSparse(path: string, sizeBytes: number): void {
  try {
    fs.writeFileSync(path, new Uint8Array(0), { flag: "wx" });
    fs.truncateSync(path, sizeBytes);
  } catch (err) {
    throw ioError("create", path, err);
  }
}

/** Whether the superblock pair at the end of `path` holds a valid mirra superblock. */
function hasValidSuperblock(path: string, deviceBytes: number): boolean {
  const end = roundDownPage(deviceBytes);
  if (end < 2 * superblockSlotBytes) return false;
  const pair = readAt(path, end - 2 * superblockSlotBytes, 2 * superblockSlotBytes);
  const chosen = chooseSuperblock(
    pair.subarray(0, superblockSlotBytes),
    pair.subarray(superblockSlotBytes),
  );
  return !(chosen instanceof MetadataError);
}

export function createMd(options: CreateMdOptions, print = console.log): void {
  const nodeId = parseIntOption("--node-id", options.nodeId, 0, 31);
  const peers = parseIntOption("--peers", options.peers, 1, peerSlotsMax);
  const alExtents = parseIntOption(
    "--al-extents",
    options.alExtents ?? String(alExtentsDefault),
    alExtentsMin,
    alExtentsMax,
  );
  if (!fs.existsSync(options.backing)) {
    if (options.size === undefined)
      throw new ConfigError(`${options.backing} does not exist: give --size to create it`);
    createSparse(options.backing, parseSize(options.size));
  } else if (options.size !== undefined) {
    throw new ConfigError(`${options.backing} exists: --size only sizes a new backing file`);
  }
  const backingBytes = deviceBytesOf(options.backing);
  const placement = options.meta === undefined ? "internal" : "external";
  const volumeBytes =
    placement === "internal"
      ? internalDataBytes(backingBytes, alExtents, peers)
      : Math.min(roundDownPage(backingBytes), 2 ** 44);
  if (volumeBytes < 4096)
    throw new ConfigError(
      `${options.backing} (${backingBytes} bytes) is too small to hold data and metadata`,
    );
  const layout = metadataLayout(volumeBytes, alExtents, peers);
  const metaPath = options.meta ?? options.backing;
  if (options.meta !== undefined && !fs.existsSync(options.meta))
    createSparse(options.meta, layout.areaBytes);
  const metaBytes = deviceBytesOf(metaPath);
  if (roundDownPage(metaBytes) < layout.areaBytes)
    throw new ConfigError(
      `${metaPath} holds ${formatSize(metaBytes)} but the metadata needs ` +
        `${formatSize(layout.areaBytes)} for a ${formatSize(volumeBytes)} volume`,
    );
  if (!options.force && hasValidSuperblock(metaPath, metaBytes))
    throw new MetadataError(
      `${metaPath} already holds valid mirra metadata; use --force to overwrite it ` +
        "(this forgets its generation identifiers and bitmaps: a full resync follows)",
    );
  const fresh = createPersistedMeta(volumeBytes / 4096, true);
  const meta =
    options.inconsistent === true
      ? { ...fresh, superblock: { ...fresh.superblock, consistent: false, wasUpToDate: false } }
      : fresh;
  const area = encodeMetadataArea(meta, {
    volumeBytes,
    nodeId,
    peerSlots: peers,
    alExtents,
    alExtentBytes: alExtentBytesDefault,
    placement,
  });
  const offset = areaOffsetOnDevice(metaBytes, area.length);
  writeAtDurably(metaPath, offset, area);
  print(
    `created ${placement} metadata on ${metaPath}: node id ${nodeId}, ${peers} peer slot(s), ` +
      `al-extents ${alExtents}; area ${formatSize(area.length)} at offset ${offset}; ` +
      `usable data size ${formatSize(volumeBytes)} (${volumeBytes} bytes)`,
  );
}

/**
 * Reads and decodes the area configured by the options; throws MetadataError if bad. With
 * `scanDownToBytes`, an area left behind by a grow of the device (not yet moved by
 * `mirra adm resize`) is looked for below the device's end (relocate.ts `locateArea`).
 */
export function readMd(options: {
  backing: string;
  meta?: string;
  nodeId?: number;
  scanDownToBytes?: number;
}): {
  decoded: DecodedArea;
  metaPath: string;
  offsetBytes: number;
  /** Set when the area was found below the end of a grown device. */
  movedFrom?: string;
} {
  const placement = options.meta === undefined ? "internal" : "external";
  const metaPath = options.meta ?? options.backing;
  const backingBytes = deviceBytesOf(options.backing);
  const metaBytes = deviceBytesOf(metaPath);
  const located = locateArea((o, n) => readAt(metaPath, o, n), metaBytes, {
    placement,
    ...(options.nodeId !== undefined ? { nodeId: options.nodeId } : {}),
    ...(options.scanDownToBytes !== undefined ? { scanDownToBytes: options.scanDownToBytes } : {}),
  });
  if (located instanceof MetadataError)
    throw new MetadataError(`${metaPath}: ${located.message}`, { cause: located });
  const end = located.endBytes;
  // Read the superblock pair first: it names the area's size, so the area is read whole
  // without reading the (possibly huge) data in front of it.
  let areaBytes = Math.min(end, 2 * superblockSlotBytes);
  if (end >= 2 * superblockSlotBytes) {
    const pair = readAt(metaPath, end - 2 * superblockSlotBytes, 2 * superblockSlotBytes);
    const chosen = chooseSuperblock(
      pair.subarray(0, superblockSlotBytes),
      pair.subarray(superblockSlotBytes),
    );
    if (!(chosen instanceof MetadataError))
      areaBytes = Math.min(end, chosen.decoded.header.areaBytes);
  }
  const bytes = readAt(metaPath, end - areaBytes, areaBytes);
  const decoded = readMetadataArea(bytes, {
    placement,
    ...(placement === "internal" ? { deviceBytes: backingBytes } : {}),
    ...(placement === "external" ? { dataDeviceBytes: backingBytes } : {}),
  });
  if (decoded instanceof MetadataError)
    throw new MetadataError(`${metaPath}: ${decoded.message}`, { cause: decoded });
  if (areaBytes < decoded.header.areaBytes)
    throw new MetadataError(`${metaPath}: the metadata area is truncated`);
  return {
    decoded,
    metaPath,
    offsetBytes: end - areaBytes,
    ...(located.movedFrom !== undefined ? { movedFrom: located.movedFrom } : {}),
  };
}

function hex64(n: number): string {
  return "0x" + n.toString(16).toUpperCase().padStart(16, "0");
}

function popcount(bytes: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    let b = bytes[i]!;
    while (b) {
      b &= b - 1;
      n++;
    }
  }
  return n;
}

export function dumpMdReport(
  decoded: DecodedArea,
  metaPath: string,
  offsetBytes: number,
): Record<string, unknown> {
  const { header, meta } = decoded;
  const sb = meta.superblock;
  return {
    path: metaPath,
    placement: header.placement,
    areaOffsetBytes: offsetBytes,
    areaBytes: header.areaBytes,
    formatVersion: 1,
    superblockSequence: decoded.superblockSequence,
    superblockCopies: decoded.superblockSlots,
    volumeBytes: header.volumeBytes,
    nodeId: header.nodeId,
    flags: {
      consistent: sb.consistent,
      wasUpToDate: sb.wasUpToDate,
      primary: sb.primary,
      crashedPrimary: sb.crashedPrimary,
    },
    currentUuid: hex64(sb.currentUuid),
    uuidCounter: sb.uuidCounter,
    historyUuids: sb.historyUuids.map(hex64),
    activityLog: {
      alExtents: header.alExtents,
      alExtentBytes: header.alExtentBytes,
      transactionSeq: meta.alTransactionSeq,
      extentsInUse: meta.alExtents.length,
      extents: meta.alExtents,
      ringSlots: header.alRingSlots,
      ringSlotsValid: decoded.alSlotsValid,
      ringSlotsTorn: decoded.alSlotsTorn,
    },
    peerSlots: header.slotNodeIds.map((id, slot) =>
      id === slotFree
        ? { slot, nodeId: null }
        : {
            slot,
            nodeId: id,
            bitmapUuid: hex64(sb.bitmapUuids[id] ?? 0),
            outOfSyncBlocks: popcount(meta.bitmaps[id]!),
            outOfSyncKiB: popcount(meta.bitmaps[id]!) * 4,
          },
    ),
  };
}

function formatReport(r: ReturnType<typeof dumpMdReport>, decoded: DecodedArea): string {
  const { header, meta } = decoded;
  const sb = meta.superblock;
  const flags = Object.entries({
    consistent: sb.consistent,
    "was-up-to-date": sb.wasUpToDate,
    primary: sb.primary,
    "crashed-primary": sb.crashedPrimary,
  })
    .filter(([, on]) => on)
    .map(([name]) => name);
  const lines = [
    `metadata:         ${header.placement} on ${r.path}, ${formatSize(header.areaBytes)} at offset ${r.areaOffsetBytes}`,
    `format version:   1, superblock sequence ${decoded.superblockSequence}`,
    `  copy 0:         ${decoded.superblockSlots[0]}`,
    `  copy 1:         ${decoded.superblockSlots[1]}`,
    `volume size:      ${formatSize(header.volumeBytes)} (${header.volumeBytes} bytes, ${header.volumeBytes / 4096} blocks of 4 KiB)`,
    `node id:          ${header.nodeId}`,
    `flags:            ${flags.length ? flags.join(", ") : "(none)"}`,
    `current uuid:     ${hex64(sb.currentUuid)}`,
    `uuid counter:     ${sb.uuidCounter}`,
    `history uuids:    ${sb.historyUuids.length ? sb.historyUuids.map(hex64).join(" ") : "(none)"}`,
    `activity log:     ${meta.alExtents.length} of ${header.alExtents} extents of ${formatSize(header.alExtentBytes)} in use, transaction ${meta.alTransactionSeq}`,
    `                  ring of ${header.alRingSlots} slots: ${decoded.alSlotsValid} valid, ${decoded.alSlotsTorn} torn`,
  ];
  if (meta.alExtents.length) lines.push(`  hot extents:    ${meta.alExtents.join(" ")}`);
  lines.push(`peer slots:       ${header.peerSlots}`);
  header.slotNodeIds.forEach((id, slot) => {
    if (id === slotFree) {
      lines.push(`  slot ${slot}:         free`);
      return;
    }
    const kib = popcount(meta.bitmaps[id]!) * 4;
    lines.push(
      `  slot ${slot}:         node ${id}, bitmap uuid ${hex64(sb.bitmapUuids[id] ?? 0)}, ${kib} KiB out of sync`,
    );
  });
  return lines.join("\n");
}

export function dumpMd(options: DumpMdOptions, print = console.log): void {
  const { decoded, metaPath, offsetBytes } = readMd(options);
  const report = dumpMdReport(decoded, metaPath, offsetBytes);
  print(options.json ? JSON.stringify(report, null, 2) : formatReport(report, decoded));
}
