//! One table from a storage error to the NBD error the client sees. The specification has a
//! small set of values, and says a client must treat unknown ones as EINVAL, so anything
//! without a precise match is reported as EIO: the honest "the device failed".

import * as C from "./protocol/constants.js";
import type { NbdErrno } from "./protocol/constants.js";

const table: Record<string, NbdErrno> = {
  EPERM: C.NBD_EPERM,
  EACCES: C.NBD_EPERM,
  EROFS: C.NBD_EPERM,
  EIO: C.NBD_EIO,
  ENOMEM: C.NBD_ENOMEM,
  EINVAL: C.NBD_EINVAL,
  ENOSPC: C.NBD_ENOSPC,
  EDQUOT: C.NBD_ENOSPC,
  EFBIG: C.NBD_ENOSPC,
  EOVERFLOW: C.NBD_EOVERFLOW,
  ENOTSUP: C.NBD_ENOTSUP,
  EOPNOTSUPP: C.NBD_ENOTSUP,
  ESHUTDOWN: C.NBD_ESHUTDOWN,
};

export function toNbdErrno(err: NodeJS.ErrnoException): NbdErrno {
  return (err.code !== undefined ? table[err.code] : undefined) ?? C.NBD_EIO;
}
