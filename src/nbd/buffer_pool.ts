//! Reusable buffers for request payloads and read replies, by exact size. Workloads use a few
//! sizes (4 KiB, 128 KiB, ...), so a per-size free list turns nearly every allocation on the
//! data path into a pop. Each list is bounded, and large buffers are never pooled.

const POOLED_BYTES_MAX = 1024 * 1024 + 64;
const FREE_PER_SIZE_MAX = 256;

export class BufferPool {
  private readonly free = new Map<number, Uint8Array[]>();

  get(size: number): Uint8Array {
    const list = this.free.get(size);
    const buf = list?.pop();
    return buf ?? new Uint8Array(size);
  }

  put(buf: Uint8Array): void {
    if (
      buf.byteLength > POOLED_BYTES_MAX ||
      buf.byteOffset !== 0 ||
      buf.byteLength !== buf.buffer.byteLength
    )
      return;
    let list = this.free.get(buf.byteLength);
    if (!list) {
      list = [];
      this.free.set(buf.byteLength, list);
    }
    if (list.length < FREE_PER_SIZE_MAX) list.push(buf);
  }
}
