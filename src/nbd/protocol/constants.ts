//! Numbers of the NBD protocol (NetworkBlockDevice/nbd doc/proto.md). Names follow the
//! specification so that a reader can grep the one against the other.

export const NBDMAGIC = 0x4e42444d41474943n;
export const IHAVEOPT = 0x49484156454f5054n;
export const OPTION_REPLY_MAGIC = 0x3e889045565a9n;
export const REQUEST_MAGIC = 0x25609513;
export const SIMPLE_REPLY_MAGIC = 0x67446698;
export const STRUCTURED_REPLY_MAGIC = 0x668e33ef;

// Handshake flags (server) and client flags.
export const FLAG_FIXED_NEWSTYLE = 1 << 0;
export const FLAG_NO_ZEROES = 1 << 1;
export const FLAG_C_FIXED_NEWSTYLE = 1 << 0;
export const FLAG_C_NO_ZEROES = 1 << 1;

// Transmission flags.
export const FLAG_HAS_FLAGS = 1 << 0;
export const FLAG_READ_ONLY = 1 << 1;
export const FLAG_SEND_FLUSH = 1 << 2;
export const FLAG_SEND_FUA = 1 << 3;
export const FLAG_ROTATIONAL = 1 << 4;
export const FLAG_SEND_TRIM = 1 << 5;
export const FLAG_SEND_WRITE_ZEROES = 1 << 6;
export const FLAG_SEND_DF = 1 << 7;
export const FLAG_CAN_MULTI_CONN = 1 << 8;
export const FLAG_SEND_RESIZE = 1 << 9;
export const FLAG_SEND_CACHE = 1 << 10;
export const FLAG_SEND_FAST_ZERO = 1 << 11;

// Options.
export const OPT_EXPORT_NAME = 1;
export const OPT_ABORT = 2;
export const OPT_LIST = 3;
export const OPT_PEEK_EXPORT = 4;
export const OPT_STARTTLS = 5;
export const OPT_INFO = 6;
export const OPT_GO = 7;
export const OPT_STRUCTURED_REPLY = 8;
export const OPT_LIST_META_CONTEXT = 9;
export const OPT_SET_META_CONTEXT = 10;
export const OPT_EXTENDED_HEADERS = 11;

// Option reply types.
export const REP_ACK = 1;
export const REP_SERVER = 2;
export const REP_INFO = 3;
export const REP_META_CONTEXT = 4;
export const REP_ERR_UNSUP = 0x80000001;
export const REP_ERR_POLICY = 0x80000002;
export const REP_ERR_INVALID = 0x80000003;
export const REP_ERR_PLATFORM = 0x80000004;
export const REP_ERR_TLS_REQD = 0x80000005;
export const REP_ERR_UNKNOWN = 0x80000006;
export const REP_ERR_SHUTDOWN = 0x80000007;
export const REP_ERR_BLOCK_SIZE_REQD = 0x80000008;
export const REP_ERR_TOO_BIG = 0x80000009;

// Information types for NBD_REP_INFO.
export const INFO_EXPORT = 0;
export const INFO_NAME = 1;
export const INFO_DESCRIPTION = 2;
export const INFO_BLOCK_SIZE = 3;

// Commands.
export const CMD_READ = 0;
export const CMD_WRITE = 1;
export const CMD_DISC = 2;
export const CMD_FLUSH = 3;
export const CMD_TRIM = 4;
export const CMD_CACHE = 5;
export const CMD_WRITE_ZEROES = 6;
export const CMD_BLOCK_STATUS = 7;
export const CMD_RESIZE = 8;

// Command flags.
export const CMD_FLAG_FUA = 1 << 0;
export const CMD_FLAG_NO_HOLE = 1 << 1;
export const CMD_FLAG_DF = 1 << 2;
export const CMD_FLAG_REQ_ONE = 1 << 3;
export const CMD_FLAG_FAST_ZERO = 1 << 4;
export const CMD_FLAG_PAYLOAD_LEN = 1 << 5;

// Structured reply flags and chunk types.
export const REPLY_FLAG_DONE = 1 << 0;
export const REPLY_TYPE_NONE = 0;
export const REPLY_TYPE_OFFSET_DATA = 1;
export const REPLY_TYPE_OFFSET_HOLE = 2;
export const REPLY_TYPE_BLOCK_STATUS = 5;
export const REPLY_TYPE_ERROR = (1 << 15) + 1;
export const REPLY_TYPE_ERROR_OFFSET = (1 << 15) + 2;

// Error values on the wire (not the host's errno numbering, though they agree on Linux).
export const NBD_OK = 0;
export const NBD_EPERM = 1;
export const NBD_EIO = 5;
export const NBD_ENOMEM = 12;
export const NBD_EINVAL = 22;
export const NBD_ENOSPC = 28;
export const NBD_EOVERFLOW = 75;
export const NBD_ENOTSUP = 95;
export const NBD_ESHUTDOWN = 108;

export type NbdErrno =
  | typeof NBD_OK
  | typeof NBD_EPERM
  | typeof NBD_EIO
  | typeof NBD_ENOMEM
  | typeof NBD_EINVAL
  | typeof NBD_ENOSPC
  | typeof NBD_EOVERFLOW
  | typeof NBD_ENOTSUP
  | typeof NBD_ESHUTDOWN;

/** Sizes of fixed-length messages, in bytes. */
export const REQUEST_HEADER_BYTES = 28;
export const SIMPLE_REPLY_HEADER_BYTES = 16;
export const STRUCTURED_REPLY_HEADER_BYTES = 20;
export const OPTION_HEADER_BYTES = 16;

/** Block size constraints mirra advertises: 512-byte sectors, as DRBD and the kernel use. */
export const BLOCK_SIZE_MIN = 512;
export const BLOCK_SIZE_PREFERRED = 4096;
/** The largest READ or WRITE payload accepted: 32 MiB, the spec's interoperable maximum. */
export const PAYLOAD_BYTES_MAX = 32 * 1024 * 1024;
/** Option data beyond this is a denial of service, not a request: the connection is closed. */
export const OPTION_DATA_BYTES_MAX = 64 * 1024;
/** Longest export name or description (the spec's string limit). */
export const STRING_BYTES_MAX = 4096;

export function commandName(type: number): string {
  return (
    ["READ", "WRITE", "DISC", "FLUSH", "TRIM", "CACHE", "WRITE_ZEROES", "BLOCK_STATUS", "RESIZE"][
      type
    ] ?? `UNKNOWN(${type})`
  );
}
