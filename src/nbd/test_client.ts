//! A minimal NBD client for tests: it speaks the handshake and transmission byte by byte so
//! that tests can also send what a real client never would (bad magic, oversized payloads,
//! garbage). Test support only; mirra's users reach exports with libnbd, qemu or the kernel.

import * as net from "node:net";
import * as C from "./protocol/constants.js";

export interface OptionReply {
  option: number;
  type: number;
  data: Buffer;
}

export interface SimpleOrStructuredReply {
  cookie: bigint;
  error: number;
  data: Buffer;
  structured: boolean;
}

/** Reads exact byte counts from a socket, in order. */
export class SocketReader {
  private buffered: Buffer = Buffer.alloc(0);
  private waiter: (() => void) | null = null;
  closed = false;

  constructor(readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk]);
      this.waiter?.();
    });
    socket.on("close", () => {
      this.closed = true;
      this.waiter?.();
    });
    socket.on("error", () => undefined);
  }

  async read(n: number, timeoutMs = 10_000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.buffered.length < n) {
      if (this.closed) throw new Error(`connection closed while waiting for ${n} bytes`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${n} bytes`);
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
        setTimeout(resolve, 50);
      });
      this.waiter = null;
    }
    const out = this.buffered.subarray(0, n);
    this.buffered = this.buffered.subarray(n);
    return out;
  }

  /** Resolves once the peer has closed the connection (or rejects after the timeout). */
  async waitClosed(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error("connection still open");
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

export async function connect(address: {
  path?: string;
  port?: number;
  host?: string;
}): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = address.path
      ? net.connect({ path: address.path })
      : net.connect({ host: address.host ?? "127.0.0.1", port: address.port! });
    socket.once("connect", () => resolve(socket));
    socket.once("error", reject);
  });
}

export function optionBytes(option: number, data: Uint8Array = new Uint8Array(0)): Buffer {
  const b = Buffer.alloc(16 + data.length);
  b.writeBigUInt64BE(C.IHAVEOPT, 0);
  b.writeUInt32BE(option, 8);
  b.writeUInt32BE(data.length, 12);
  b.set(data, 16);
  return b;
}

export function goData(name: string, infos: number[] = []): Buffer {
  const n = Buffer.from(name);
  const b = Buffer.alloc(4 + n.length + 2 + 2 * infos.length);
  b.writeUInt32BE(n.length, 0);
  n.copy(b, 4);
  b.writeUInt16BE(infos.length, 4 + n.length);
  infos.forEach((t, i) => b.writeUInt16BE(t, 6 + n.length + 2 * i));
  return b;
}

export function requestBytes(
  type: number,
  offset: number,
  length: number,
  cookie: bigint,
  flags = 0,
): Buffer {
  const b = Buffer.alloc(28);
  b.writeUInt32BE(C.REQUEST_MAGIC, 0);
  b.writeUInt16BE(flags, 4);
  b.writeUInt16BE(type, 6);
  b.writeBigUInt64BE(cookie, 8);
  b.writeBigUInt64BE(BigInt(offset), 16);
  b.writeUInt32BE(length, 24);
  return b;
}

export class TestClient {
  readonly reader: SocketReader;
  structured = false;
  sizeBytes = 0;
  transmissionFlags = 0;

  private constructor(readonly socket: net.Socket) {
    this.reader = new SocketReader(socket);
  }

  static async open(address: { path?: string; port?: number }): Promise<TestClient> {
    const c = new TestClient(await connect(address));
    const greeting = await c.reader.read(18);
    if (greeting.readBigUInt64BE(0) !== C.NBDMAGIC) throw new Error("no NBDMAGIC");
    c.socket.write(Buffer.from([0, 0, 0, C.FLAG_C_FIXED_NEWSTYLE | C.FLAG_C_NO_ZEROES]));
    return c;
  }

  async option(option: number, data?: Uint8Array): Promise<OptionReply> {
    this.socket.write(optionBytes(option, data));
    return this.readOptionReply();
  }

  async readOptionReply(): Promise<OptionReply> {
    const h = await this.reader.read(20);
    if (h.readBigUInt64BE(0) !== C.OPTION_REPLY_MAGIC) throw new Error("bad option reply magic");
    const length = h.readUInt32BE(16);
    return {
      option: h.readUInt32BE(8),
      type: h.readUInt32BE(12),
      data: await this.reader.read(length),
    };
  }

  /** Negotiates structured replies (optionally) and GOes to the export. */
  async go(name: string, structured = true): Promise<void> {
    if (structured) {
      const r = await this.option(C.OPT_STRUCTURED_REPLY);
      if (r.type !== C.REP_ACK) throw new Error("structured replies refused");
      this.structured = true;
    }
    this.socket.write(optionBytes(C.OPT_GO, goData(name)));
    for (;;) {
      const r = await this.readOptionReply();
      if (r.type === C.REP_ACK) return;
      if (r.type !== C.REP_INFO)
        throw new Error(`GO failed: reply type 0x${r.type.toString(16)} ${r.data.toString()}`);
      if (r.data.readUInt16BE(0) === C.INFO_EXPORT) {
        this.sizeBytes = Number(r.data.readBigUInt64BE(2));
        this.transmissionFlags = r.data.readUInt16BE(10);
      }
    }
  }

  send(
    type: number,
    offset: number,
    length: number,
    cookie: bigint,
    flags = 0,
    payload?: Uint8Array,
  ): void {
    this.socket.write(requestBytes(type, offset, length, cookie, flags));
    if (payload) this.socket.write(payload);
  }

  /** Reads one whole reply (all chunks of a structured reply). `readLength` is for simple READ replies. */
  async reply(readLength = 0): Promise<SimpleOrStructuredReply> {
    const magic = (await this.reader.read(4)).readUInt32BE(0);
    if (magic === C.SIMPLE_REPLY_MAGIC) {
      const h = await this.reader.read(12);
      const error = h.readUInt32BE(0);
      const cookie = h.readBigUInt64BE(4);
      const data =
        error === 0 && readLength > 0 ? await this.reader.read(readLength) : Buffer.alloc(0);
      return { cookie, error, data, structured: false };
    }
    if (magic !== C.STRUCTURED_REPLY_MAGIC)
      throw new Error(`bad reply magic 0x${magic.toString(16)}`);
    const parts: Buffer[] = [];
    let error = 0;
    let cookie = 0n;
    for (let first = true; ; first = false) {
      if (!first) {
        const m = (await this.reader.read(4)).readUInt32BE(0);
        if (m !== C.STRUCTURED_REPLY_MAGIC) throw new Error("bad chunk magic");
      }
      const h = await this.reader.read(16);
      const flags = h.readUInt16BE(0);
      const type = h.readUInt16BE(2);
      cookie = h.readBigUInt64BE(4);
      const payload = await this.reader.read(h.readUInt32BE(12));
      if (type === C.REPLY_TYPE_OFFSET_DATA) parts.push(payload.subarray(8));
      else if (type === C.REPLY_TYPE_ERROR || type === C.REPLY_TYPE_ERROR_OFFSET)
        error = payload.readUInt32BE(0);
      if (flags & C.REPLY_FLAG_DONE) break;
    }
    return { cookie, error, data: Buffer.concat(parts), structured: true };
  }

  close(): void {
    this.socket.destroy();
  }
}
