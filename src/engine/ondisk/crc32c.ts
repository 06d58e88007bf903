//! CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of every metadata slot,
//! of the peer protocol's digests, and of the engine's checksum-based resync and online verify
//! (equal digests count as equal blocks, as DRBD treats csums-alg/verify-alg digests).
//! Table-driven, one byte per step: simplicity beats slicing-by-8 at these sizes.
//! Test vector: crc32c("123456789") = 0xE3069283.

const table: Uint32Array = buildTable();

function buildTable(): Uint32Array {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
}

/**
 * Continues a CRC32C over `bytes[start, end)`. Pass `crc = 0` to start; the result is the
 * finished checksum and may be passed back in as `crc` to extend it over more bytes.
 */
export function crc32c(bytes: Uint8Array, crc = 0, start = 0, end = bytes.length): number {
  let c = ~crc >>> 0;
  for (let i = start; i < end; i++) c = table[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
