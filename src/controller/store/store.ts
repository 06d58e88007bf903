//! The controller's desired state, behind one interface so that SQLite (the embedded default)
//! and etcd (a highly available controller, later) can both back it.
//!
//! Model: reads are synchronous against the backend's current state; writes run a synchronous
//! function against a transaction and resolve once the change is durable. A function that
//! throws changes nothing. SQLite does this natively; an etcd backend keeps the whole desired
//! state in memory (as LINSTOR's controller does), runs the function against a copy, and
//! commits the recorded changes in one etcd transaction before it resolves.
//!
//! Names are case-insensitive on lookup (LINSTOR's `equalsIgnoreCase`) and kept as created.
//! Props are string-to-string maps on every object.

export type Props = Record<string, string>;

export type NodeType = "CONTROLLER" | "SATELLITE" | "COMBINED" | "AUXILIARY";
export type EncryptionType = "PLAIN" | "SSL";
export type ProviderKind =
  | "DISKLESS"
  | "LVM"
  | "LVM_THIN"
  | "ZFS"
  | "ZFS_THIN"
  | "FILE"
  | "FILE_THIN"
  | "SPDK"
  | "EBS_TARGET"
  | "EBS_INIT"
  | "REMOTE_SPDK"
  | "EXOS"
  | "STORAGE_SPACES";

export interface NetInterfaceRecord {
  name: string;
  address: string;
  /** The satellite's port on this interface; null when the interface is not for satellites. */
  satellitePort: number | null;
  encryptionType: EncryptionType;
  isActive: boolean;
  uuid: string;
}

export interface NodeRecord {
  name: string;
  type: NodeType;
  flags: string[];
  props: Props;
  netInterfaces: NetInterfaceRecord[];
  uuid: string;
}

export interface StoragePoolRecord {
  node: string;
  name: string;
  providerKind: ProviderKind;
  props: Props;
  sharedSpace: string | null;
  externalLocking: boolean;
  uuid: string;
}

/** LINSTOR's AutoSelectFilter, kept in its wire shape (snake_case) because it is opaque here. */
export interface AutoSelectFilter {
  place_count?: number;
  additional_place_count?: number;
  node_name_list?: string[];
  storage_pool?: string;
  storage_pool_list?: string[];
  storage_pool_diskless_list?: string[];
  not_place_with_rsc?: string[];
  not_place_with_rsc_regex?: string;
  replicas_on_same?: string[];
  replicas_on_different?: string[];
  x_replicas_on_different_map?: Record<string, number>;
  layer_stack?: string[];
  provider_list?: string[];
  diskless_on_remaining?: boolean;
  diskless_type?: string;
  overprovision?: number;
  port_count?: number;
}

export interface ResourceGroupRecord {
  name: string;
  description: string;
  props: Props;
  selectFilter: AutoSelectFilter;
  peerSlots: number | null;
  uuid: string;
}

export interface VolumeGroupRecord {
  resourceGroup: string;
  volumeNumber: number;
  props: Props;
  flags: string[];
  uuid: string;
}

export interface ResourceDefinitionRecord {
  name: string;
  externalName: string | null;
  resourceGroup: string;
  props: Props;
  flags: string[];
  /** The DRBD-style TCP port every replica of this resource listens on. */
  port: number;
  /** The shared secret that authenticates the peer links of this resource. */
  secret: string;
  peerSlots: number | null;
  transportType: string;
  uuid: string;
}

export interface VolumeDefinitionRecord {
  resourceDefinition: string;
  volumeNumber: number;
  sizeKib: number;
  props: Props;
  flags: string[];
  /** The device minor, unique in the cluster (DRBD's minor number). */
  minorNumber: number;
  uuid: string;
}

export interface ResourceRecord {
  resourceDefinition: string;
  node: string;
  props: Props;
  /** DISKLESS, DRBD_DISKLESS, TIE_BREAKER, INACTIVE, ... */
  flags: string[];
  /** The storage pool on `node` that backs every volume of this resource. */
  storagePool: string;
  /** The replication node-id, 0..31, unique within the resource definition. */
  nodeId: number;
  createTimestampMs: number;
  uuid: string;
}

export interface KeyValueStoreRecord {
  name: string;
  props: Props;
}

/**
 * One error report (LINSTOR's ErrorReport): written when a request fails in a way nobody
 * planned for, so that the operator can read the details after the reply has gone.
 */
export interface ErrorReportRecord {
  /** `<instance>-<node>-<sequence>`, e.g. `5F3A1B2C-00000-000001`, as LINSTOR names them. */
  id: string;
  nodeName: string;
  errorTimeMs: number;
  /** CONTROLLER or SATELLITE. */
  module: string;
  version: string;
  /** The client involved, e.g. `RestClient(127.0.0.1)`. */
  peer: string | null;
  /** The exception's class, e.g. `TypeError`. */
  exception: string;
  exceptionMessage: string;
  originFile: string | null;
  originMethod: string | null;
  originLine: number | null;
  /** The whole report, as LINSTOR's report file holds it. */
  text: string;
}

export interface ResourceFilter {
  resourceDefinition?: string;
  node?: string;
  storagePool?: string;
}

/** Reads; every list is ordered by name (case-insensitively), then by number. */
export interface StoreReader {
  controllerProps(): Props;

  node(name: string): NodeRecord | undefined;
  nodes(): NodeRecord[];

  storagePool(node: string, name: string): StoragePoolRecord | undefined;
  storagePools(node?: string): StoragePoolRecord[];

  resourceGroup(name: string): ResourceGroupRecord | undefined;
  resourceGroups(): ResourceGroupRecord[];
  volumeGroup(resourceGroup: string, volumeNumber: number): VolumeGroupRecord | undefined;
  volumeGroups(resourceGroup: string): VolumeGroupRecord[];

  resourceDefinition(name: string): ResourceDefinitionRecord | undefined;
  resourceDefinitions(resourceGroup?: string): ResourceDefinitionRecord[];
  volumeDefinition(rd: string, volumeNumber: number): VolumeDefinitionRecord | undefined;
  /** Volume definitions of one resource definition, or of all when `rd` is undefined. */
  volumeDefinitions(rd?: string): VolumeDefinitionRecord[];

  resource(rd: string, node: string): ResourceRecord | undefined;
  resources(filter?: ResourceFilter): ResourceRecord[];

  keyValueStore(name: string): KeyValueStoreRecord | undefined;
  keyValueStores(): KeyValueStoreRecord[];

  errorReport(id: string): ErrorReportRecord | undefined;
  /** Every error report, oldest first (by time, then id). */
  errorReports(): ErrorReportRecord[];
}

/**
 * Writes. `put*` inserts or replaces the object with that key; it never touches children.
 * `delete*` removes the object and its children (a node's storage pools, a resource group's
 * volume groups, a resource definition's volume definitions and resources): refusing a delete
 * while something still uses an object is the API layer's decision, not the store's.
 */
export interface StoreWriter extends StoreReader {
  setControllerProps(props: Props): void;
  putNode(node: NodeRecord): void;
  deleteNode(name: string): void;
  putStoragePool(pool: StoragePoolRecord): void;
  deleteStoragePool(node: string, name: string): void;
  putResourceGroup(group: ResourceGroupRecord): void;
  deleteResourceGroup(name: string): void;
  putVolumeGroup(group: VolumeGroupRecord): void;
  deleteVolumeGroup(resourceGroup: string, volumeNumber: number): void;
  putResourceDefinition(rd: ResourceDefinitionRecord): void;
  deleteResourceDefinition(name: string): void;
  putVolumeDefinition(vd: VolumeDefinitionRecord): void;
  deleteVolumeDefinition(rd: string, volumeNumber: number): void;
  putResource(resource: ResourceRecord): void;
  deleteResource(rd: string, node: string): void;
  putKeyValueStore(kvs: KeyValueStoreRecord): void;
  deleteKeyValueStore(name: string): void;
  putErrorReport(report: ErrorReportRecord): void;
  deleteErrorReport(id: string): void;
}

export interface ControllerStore {
  /** Runs `fn` against the current state; it must not keep the reader. */
  read<T>(fn: (tx: StoreReader) => T): T;
  /** Runs `fn` in one transaction; resolves once durable, rejects (changing nothing) if it throws. */
  write<T>(fn: (tx: StoreWriter) => T): Promise<T>;
  close(): void;
}

/** The resource group every resource definition belongs to unless it names another. */
export const defaultResourceGroup = "DfltRscGrp";
/** The pool LINSTOR creates on every node for diskless resources. */
export const defaultDisklessPool = "DfltDisklessStorPool";
/** The pool a diskful resource uses when nothing names another. */
export const defaultStoragePool = "DfltStorPool";
