//! What the controller knows about the cluster beyond its desired state: node connections,
//! pool capacity, DRBD roles and disk states. Satellites report these; until the satellite link
//! feeds this interface, `nothingObserved` answers what the REST views say today (every node
//! OFFLINE, nothing else known), so that metrics and events never invent a value.

/** LINSTOR's Node.connection_status values, in the order of their numeric codes (0..10). */
export const nodeConnectionStatuses = [
  "OFFLINE",
  "CONNECTED",
  "ONLINE",
  "VERSION_MISMATCH",
  "FULL_SYNC_FAILED",
  "AUTHENTICATION_ERROR",
  "UNKNOWN",
  "HOSTNAME_MISMATCH",
  "OTHER_CONTROLLER",
  "AUTHENTICATED",
  "NO_STLT_CONN",
] as const;
export type NodeConnectionStatus = (typeof nodeConnectionStatuses)[number];

export interface PoolCapacity {
  freeKib: number;
  totalKib: number;
}

/** Read-only view of observed state; every answer may be "not known" (undefined). */
export interface ObservedState {
  nodeConnectionStatus(node: string): NodeConnectionStatus;
  poolCapacity(node: string, pool: string): PoolCapacity | undefined;
  /** Whether a DRBD device of the resource is in use there (Primary); undefined: not known. */
  resourceInUse(resource: string, node: string): boolean | undefined;
  /** DRBD's may_promote for the resource on that node; undefined: not known. */
  mayPromote(resource: string, node: string): boolean | undefined;
  /** The volume's disk state as DRBD names it ("UpToDate", "Diskless", ...). */
  volumeDiskState(resource: string, node: string, volume: number): string | undefined;
}

/** No satellite has reported anything: the state the REST API shows without satellites. */
export const nothingObserved: ObservedState = {
  nodeConnectionStatus: () => "OFFLINE",
  poolCapacity: () => undefined,
  resourceInUse: () => undefined,
  mayPromote: () => undefined,
  volumeDiskState: () => undefined,
};
