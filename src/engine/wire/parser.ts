//! A push parser for peer frames (the shape of nats.js's parser): feed it whatever bytes the
//! socket delivered, in any split, and it calls `onMessage` for each complete frame in order.
//!
//! Memory model: the parser holds at most one header (12 bytes) and one payload (bounded by
//! payloadBytesMax, or the lower `limitPayload` bound, and allocated only after the header
//! was validated). A frame that lies wholly inside one pushed chunk is decoded in place,
//! without a copy; its block data then aliases that chunk, so the caller must not reuse a
//! chunk after pushing it unless `takeKept` says no frame kept a view of it.
//!
//! A large payload need not be copied at all: `payloadWindow` is the rest of the payload
//! being gathered, which a socket can read into directly (then `filled` reports the bytes).
//!
//! Errors: a malformed frame throws ProtocolError from `push`, and the parser is then dead
//! (every later push throws the same error): after garbage there is no way to find the next
//! frame boundary, so the connection must be closed.

import { ProtocolError } from "../../stdx/errors.js";
import { assert } from "../../stdx/assert.js";
import {
  decodeFrameHeader,
  decodedKeepsPayload,
  decodePayload,
  frameHeaderBytes,
  payloadBytesMax,
  type FrameHeader,
  type WireMessage,
} from "./codec.js";

export class FrameParser {
  private readonly header = new Uint8Array(frameHeaderBytes);
  private headerFill = 0;
  private current: FrameHeader | undefined;
  private payload: Uint8Array | undefined;
  private payloadFill = 0;
  private failure: ProtocolError | undefined;
  /** Current payload bound; see `limitPayload`. */
  private payloadLimitBytes = payloadBytesMax;
  /** A frame decoded in place since the last `takeKept` keeps a view of its chunk. */
  private kept = false;

  /**
   * `allocate` makes the buffer a payload (of the message type `code`) split over several
   * chunks is gathered in; it is
   * always filled whole before use, so the shell may pass a non-zeroing allocator
   * (Buffer.allocUnsafe): zero-filling a 1 MiB resync payload costs as much as copying it.
   */
  constructor(
    private readonly onMessage: (message: WireMessage) => void,
    private readonly allocate: (bytes: number, code: number) => Uint8Array = (bytes) =>
      new Uint8Array(bytes),
  ) {}

  /**
   * Lowers (or restores) the largest payload accepted, e.g. to a few KiB until the peer is
   * authenticated, so an unauthenticated connection cannot make us buffer 32 MiB.
   */
  limitPayload(bytes: number): void {
    assert(Number.isInteger(bytes) && bytes >= 0 && bytes <= payloadBytesMax, "payload limit");
    this.payloadLimitBytes = bytes;
  }

  private checkedHeader(bytes: Uint8Array): FrameHeader {
    const h = decodeFrameHeader(bytes);
    if (h.payloadBytes > this.payloadLimitBytes)
      throw new ProtocolError(
        `frame payload of ${h.payloadBytes} bytes exceeds ${this.payloadLimitBytes} at this stage`,
      );
    return h;
  }

  /** Bytes buffered towards the next frame: at most one header plus one bounded payload. */
  get bufferedBytes(): number {
    return this.headerFill + this.payloadFill;
  }

  push(chunk: Uint8Array): void {
    if (this.failure) throw this.failure;
    try {
      this.consume(chunk);
    } catch (err) {
      if (err instanceof ProtocolError) this.failure = err;
      throw err;
    }
  }

  /**
   * The missing rest of the payload being gathered, when at least `minBytes` are missing: a
   * socket may read straight into it (no copy), and must then call `filled`. Undefined when
   * no payload is being gathered or little of it is missing (read a chunk and `push` it).
   */
  payloadWindow(minBytes: number): Uint8Array | undefined {
    if (this.failure || this.current === undefined) return undefined;
    const payload = this.payload!;
    if (payload.length - this.payloadFill < minBytes) return undefined;
    return payload.subarray(this.payloadFill);
  }

  /** `bytes` were written at the start of the last `payloadWindow`. */
  filled(bytes: number): void {
    if (this.failure) throw this.failure;
    assert(this.current !== undefined, "a payload window is open");
    assert(
      Number.isInteger(bytes) && bytes > 0 && bytes <= this.payload!.length - this.payloadFill,
      "filled within the window",
    );
    this.payloadFill += bytes;
    try {
      this.maybeFinish();
    } catch (err) {
      if (err instanceof ProtocolError) this.failure = err;
      throw err;
    }
  }

  /**
   * Whether a frame decoded in place since the last call keeps a view of a pushed chunk
   * (block data); resets. After false, the last chunk pushed may be reused.
   */
  takeKept(): boolean {
    const k = this.kept;
    this.kept = false;
    return k;
  }

  private consume(chunk: Uint8Array): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.current === undefined && this.headerFill === 0) {
        if (chunk.length - at >= frameHeaderBytes) {
          const h = this.checkedHeader(chunk.subarray(at, at + frameHeaderBytes));
          at += frameHeaderBytes;
          if (chunk.length - at >= h.payloadBytes) {
            // Fast path: the whole frame is in this chunk; decode it in place.
            const payload = chunk.subarray(at, at + h.payloadBytes);
            at += h.payloadBytes;
            if (decodedKeepsPayload(h.code)) this.kept = true;
            this.onMessage(decodePayload(h.code, payload));
          } else {
            this.begin(h);
          }
          continue;
        }
      }
      if (this.current === undefined) {
        const n = Math.min(frameHeaderBytes - this.headerFill, chunk.length - at);
        this.header.set(chunk.subarray(at, at + n), this.headerFill);
        this.headerFill += n;
        at += n;
        if (this.headerFill < frameHeaderBytes) return;
        this.headerFill = 0;
        this.begin(this.checkedHeader(this.header));
      } else {
        const payload = this.payload!;
        const n = Math.min(payload.length - this.payloadFill, chunk.length - at);
        payload.set(chunk.subarray(at, at + n), this.payloadFill);
        this.payloadFill += n;
        at += n;
      }
      this.maybeFinish();
    }
  }

  private begin(h: FrameHeader): void {
    assert(this.current === undefined, "one frame at a time");
    this.current = h;
    this.payload = this.allocate(h.payloadBytes, h.code);
    assert(this.payload.length === h.payloadBytes, "payload buffer of the frame's size");
    this.payloadFill = 0;
  }

  private maybeFinish(): void {
    const h = this.current;
    if (h === undefined || this.payloadFill < h.payloadBytes) return;
    const payload = this.payload!;
    this.current = undefined;
    this.payload = undefined;
    this.payloadFill = 0;
    this.onMessage(decodePayload(h.code, payload));
  }
}
