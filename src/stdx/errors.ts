//! Tier-2 errors: expected failures, each with a stable machine-readable `code` and the
//! `cause` it wraps, so that an operator can act on it and a boundary can map it (to an NBD
//! error, an HTTP status or an exit code) in one table-driven function.

export type MirraErrorCode =
  | "MIRRA_E_PROTOCOL"
  | "MIRRA_E_DISK_IO"
  | "MIRRA_E_CONFIG"
  | "MIRRA_E_NOT_FOUND"
  | "MIRRA_E_CONFLICT"
  | "MIRRA_E_QUORUM_LOST"
  | "MIRRA_E_METADATA"
  | "MIRRA_E_AUTH";

export class MirraError extends Error {
  override name = "MirraError";
  readonly code: MirraErrorCode;
  constructor(code: MirraErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/** A peer or client sent bytes that do not follow the protocol. */
export class ProtocolError extends MirraError {
  override name = "ProtocolError";
  constructor(message: string, options?: ErrorOptions) {
    super("MIRRA_E_PROTOCOL", message, options);
  }
}

/** The backing storage failed; `errno` is the system error code when there was one. */
export class DiskIoError extends MirraError {
  override name = "DiskIoError";
  readonly errno: string | undefined;
  constructor(message: string, errno?: string, options?: ErrorOptions) {
    super("MIRRA_E_DISK_IO", message, options);
    this.errno = errno;
  }
}

/** A command line, configuration file or request names something impossible. */
export class ConfigError extends MirraError {
  override name = "ConfigError";
  constructor(message: string, options?: ErrorOptions) {
    super("MIRRA_E_CONFIG", message, options);
  }
}

/** On-disk metadata is corrupt, foreign or of an unknown version. */
export class MetadataError extends MirraError {
  override name = "MetadataError";
  constructor(message: string, options?: ErrorOptions) {
    super("MIRRA_E_METADATA", message, options);
  }
}
