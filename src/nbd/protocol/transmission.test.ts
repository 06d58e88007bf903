import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import * as C from "./constants.js";
import {
  decodeRequestHeader,
  encodeRequestHeader,
  newRequestHeader,
  validateRequest,
  type RequestHeader,
  type TransmissionContext,
} from "./transmission.js";

const ctx: TransmissionContext = {
  sizeBytes: 1 << 30,
  readOnly: false,
  canTrim: true,
  canFastZero: true,
  structuredReplies: true,
};

function req(type: number, offset: number, length: number, flags = 0): RequestHeader {
  return { type, offset, length, flags, cookieHi: 1, cookieLo: 2 };
}

describe("nbd transmission codecs", () => {
  test("property: request headers round-trip", () => {
    fc.assert(
      fc.property(
        fc.record({
          flags: fc.integer({ min: 0, max: 0xffff }),
          type: fc.integer({ min: 0, max: 0xffff }),
          cookieHi: fc.nat(),
          cookieLo: fc.nat(),
          offset: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
          length: fc.nat(),
        }),
        (h) => {
          const b = new Uint8Array(C.REQUEST_HEADER_BYTES);
          encodeRequestHeader(b, 0, h);
          const out = newRequestHeader();
          assert.ok(decodeRequestHeader(b, 0, out));
          assert.deepEqual(out, { ...h });
        },
      ),
    );
  });

  test("a wrong magic is refused", () => {
    const b = new Uint8Array(C.REQUEST_HEADER_BYTES);
    encodeRequestHeader(b, 0, req(C.CMD_READ, 0, 512));
    b[3] ^= 1;
    assert.equal(decodeRequestHeader(b, 0, newRequestHeader()), false);
  });

  const cases: [string, RequestHeader, TransmissionContext, number][] = [
    ["read in range", req(C.CMD_READ, 4096, 4096), ctx, C.NBD_OK],
    ["read past the end", req(C.CMD_READ, ctx.sizeBytes - 512, 1024), ctx, C.NBD_EINVAL],
    ["write past the end", req(C.CMD_WRITE, ctx.sizeBytes, 512), ctx, C.NBD_ENOSPC],
    ["trim past the end", req(C.CMD_TRIM, ctx.sizeBytes - 512, 4096), ctx, C.NBD_ENOSPC],
    ["offset beyond 2^53", req(C.CMD_READ, 2 ** 60, 512), ctx, C.NBD_EINVAL],
    ["read over 32 MiB", req(C.CMD_READ, 0, C.PAYLOAD_BYTES_MAX + 512), ctx, C.NBD_EOVERFLOW],
    ["write over 32 MiB", req(C.CMD_WRITE, 0, C.PAYLOAD_BYTES_MAX + 512), ctx, C.NBD_EINVAL],
    ["zeroes over 32 MiB are fine", req(C.CMD_WRITE_ZEROES, 0, 64 << 20), ctx, C.NBD_OK],
    ["misaligned offset", req(C.CMD_READ, 100, 512), ctx, C.NBD_EINVAL],
    ["misaligned length", req(C.CMD_WRITE, 0, 100), ctx, C.NBD_EINVAL],
    ["zero length", req(C.CMD_READ, 0, 0), ctx, C.NBD_EINVAL],
    ["unknown command", req(77, 0, 512), ctx, C.NBD_EINVAL],
    ["block status without meta context", req(C.CMD_BLOCK_STATUS, 0, 512), ctx, C.NBD_EINVAL],
    ["FUA on write", req(C.CMD_WRITE, 0, 512, C.CMD_FLAG_FUA), ctx, C.NBD_OK],
    ["FUA on read is not valid", req(C.CMD_READ, 0, 512, C.CMD_FLAG_FUA), ctx, C.NBD_EINVAL],
    [
      "DF without structured replies",
      req(C.CMD_READ, 0, 512, C.CMD_FLAG_DF),
      { ...ctx, structuredReplies: false },
      C.NBD_EINVAL,
    ],
    [
      "NO_HOLE and FAST_ZERO on zeroes",
      req(C.CMD_WRITE_ZEROES, 0, 512, C.CMD_FLAG_NO_HOLE | C.CMD_FLAG_FAST_ZERO),
      ctx,
      C.NBD_OK,
    ],
    [
      "FAST_ZERO when not offered",
      req(C.CMD_WRITE_ZEROES, 0, 512, C.CMD_FLAG_FAST_ZERO),
      { ...ctx, canFastZero: false },
      C.NBD_EINVAL,
    ],
    ["flush", req(C.CMD_FLUSH, 0, 0), ctx, C.NBD_OK],
    ["flush with a range", req(C.CMD_FLUSH, 0, 512), ctx, C.NBD_EINVAL],
    ["write to read-only", req(C.CMD_WRITE, 0, 512), { ...ctx, readOnly: true }, C.NBD_EPERM],
    [
      "trim on read-only",
      req(C.CMD_TRIM, 0, 512),
      { ...ctx, readOnly: true, canTrim: false },
      C.NBD_EPERM,
    ],
    ["read on read-only", req(C.CMD_READ, 0, 512), { ...ctx, readOnly: true }, C.NBD_OK],
  ];
  for (const [name, h, c, errno] of cases) {
    test(`validate: ${name}`, () => assert.equal(validateRequest(h, c).errno, errno));
  }

  test("property: an accepted request never reaches outside the export", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 0, max: 10 }),
        fc.oneof(
          fc.integer({ min: 0, max: 2 ** 31 }),
          fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        ),
        fc.nat(),
        fc.integer({ min: 512, max: 1 << 24 }),
        (flags, type, offset, length, size) => {
          const c = { ...ctx, sizeBytes: size * 512 };
          const v = validateRequest(req(type, offset, length, flags), c);
          if (v.errno !== C.NBD_OK || type === C.CMD_DISC || type === C.CMD_FLUSH) return;
          assert.ok(offset + length <= c.sizeBytes);
          assert.ok(length > 0 && offset % 512 === 0 && length % 512 === 0);
          if (type === C.CMD_READ || type === C.CMD_WRITE) assert.ok(length <= C.PAYLOAD_BYTES_MAX);
        },
      ),
      { numRuns: 5000 },
    );
  });
});
