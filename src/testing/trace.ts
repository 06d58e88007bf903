//! One readable line per engine event and effect, for `npm run sim -- --seed S` replays.
//! Data payloads are summarised by their tags (write ids), never dumped.

import type { Effect, Event, PeerMessage } from "../engine/mod.js";
import { blockSizeBytes, payloadWriteId } from "./payload.js";

function tags(data: Uint8Array): string {
  const count = data.length / blockSizeBytes;
  const first = payloadWriteId(data, 0);
  if (count === 1) return `w${first}`;
  const last = payloadWriteId(data, (count - 1) * blockSizeBytes);
  return first === last ? `${count}×w${first}` : `w${first}..w${last}`;
}

export function describeMessage(m: PeerMessage): string {
  switch (m.type) {
    case "state":
      return (
        `state ${m.role}/${m.disk} uuid=${m.uuids.currentUuid} bits=${m.bitsForYou}` +
        (m.reply ? " reply" : "") +
        (m.handshakeId !== undefined && m.handshakeId !== 0 ? ` hs=${m.handshakeId}` : "") +
        (m.discardMyData ? " discard-my-data" : "")
      );
    case "data":
      return `data seq=${m.seq} epoch=${m.epoch} block=${m.firstBlock} ${tags(m.data)} ack=${m.ack}`;
    case "resyncReply":
      return `resyncReply block=${m.block} ok=${m.ok}${m.streamId === undefined ? "" : ` at=${m.streamId}:${m.streamSeq}`}${m.data === undefined ? "" : ` ${tags(m.data)}`}`;
    case "readReply":
      return `readReply id=${m.id} ok=${m.ok}${m.data === undefined ? "" : ` ${tags(m.data)}`}`;
    case "bitmap":
      return `bitmap ranges=${m.ranges.length / 2} last=${m.last}`;
    case "syncStart":
      return `syncStart full=${m.full} uuid=${m.uuids.currentUuid}`;
    default: {
      const { type, ...rest } = m;
      const fields = Object.entries(rest)
        .map(([k, v]) => `${k}=${String(v)}`)
        .join(" ");
      return fields === "" ? type : `${type} ${fields}`;
    }
  }
}

export function describeEvent(e: Event): string {
  switch (e.type) {
    case "clientWrite":
      return `clientWrite #${e.requestId} block=${e.offsetBytes / blockSizeBytes} ${tags(e.data)}${e.fua ? " fua" : ""}`;
    case "clientRead":
      return `clientRead #${e.requestId} block=${e.offsetBytes / blockSizeBytes}+${e.lengthBytes / blockSizeBytes}`;
    case "clientFlush":
      return `clientFlush #${e.requestId}`;
    case "peerMessage":
      return `from n${e.from}: ${describeMessage(e.message)}`;
    case "peerConnected":
    case "peerDisconnected":
      return `${e.type} n${e.peer}`;
    case "diskCompleted":
      return `diskCompleted io=${e.ioId} ${e.ok ? "ok" : `error ${e.error}`}${e.data === undefined ? "" : ` ${tags(e.data)}`}`;
    case "metadataCompleted":
      return `metadataCompleted io=${e.ioId} ${e.ok ? "ok" : "error"}`;
    case "admin":
      return `admin #${e.commandId} ${JSON.stringify(e.command)}`;
    case "start":
    case "tick":
      return e.type;
    case "backingCapacity":
      return `backingCapacity blocks=${e.sizeBlocks}`;
  }
}

export function describeEffect(f: Effect): string {
  switch (f.type) {
    case "diskRead":
      return `diskRead io=${f.ioId} block=${f.offsetBytes / blockSizeBytes}+${f.lengthBytes / blockSizeBytes}`;
    case "diskWrite":
      return `diskWrite io=${f.ioId} block=${f.offsetBytes / blockSizeBytes} ${tags(f.data)}`;
    case "diskFlush":
      return `diskFlush io=${f.ioId}`;
    case "metadataWrite": {
      const r = f.record;
      const what =
        r.kind === "superblock"
          ? `superblock uuid=${r.superblock.currentUuid} counter=${r.superblock.uuidCounter} ` +
            `consistent=${r.superblock.consistent} upToDate=${r.superblock.wasUpToDate} ` +
            `primary=${r.superblock.primary}`
          : r.kind === "activityLog"
            ? `activityLog tx=${r.transactionSeq} extents=[${r.extents.join(",")}]`
            : r.kind === "resize"
              ? `resize blocks=${r.sizeBlocks}`
              : `bitmap peer=${r.peer} blocks=${r.firstBlock}+${r.blockCount} ${r.value ? "set" : "clear"}`;
      return `metadataWrite io=${f.ioId} ${what}`;
    }
    case "send":
      return describeMessage(f.message);
    case "connectPeer":
      return `connectPeer n${f.peer}`;
    case "disconnectPeer":
      return `disconnectPeer n${f.peer} reconnect=${f.reconnect}`;
    case "completeRequest":
      return `completeRequest #${f.requestId} ${f.ok ? "ok" : `error ${f.error}`}`;
    case "adminCompleted":
      return `adminCompleted #${f.commandId} ${f.ok ? "ok" : `error "${f.error}"`}`;
    case "dataDone":
      return `dataDone ${f.data.length} bytes`;
    case "stateChanged": {
      const { kind, ...rest } = f.change;
      return `stateChanged ${kind} ${Object.entries(rest)
        .map(([k, v]) => `${k}=${String(v)}`)
        .join(" ")}`;
    }
  }
}
