//! The embedded store: one SQLite file (`controller.db`) in the controller's data directory.
//!
//! Durability: WAL with `synchronous=FULL`, so a write that resolved survives a crash of the
//! process or the machine. One controller per data directory: the database is opened in
//! exclusive locking mode, and a second opener fails instead of splitting the state.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import Database from "better-sqlite3";
import type BetterSqlite3 from "better-sqlite3";
import { migrations, type Migration } from "./migrations.js";
import type {
  AutoSelectFilter,
  ControllerStore,
  ErrorReportRecord,
  KeyValueStoreRecord,
  NetInterfaceRecord,
  NodeRecord,
  NodeType,
  Props,
  ProviderKind,
  ResourceDefinitionRecord,
  ResourceFilter,
  ResourceGroupRecord,
  ResourceRecord,
  StoragePoolRecord,
  StoreReader,
  StoreWriter,
  VolumeDefinitionRecord,
  VolumeGroupRecord,
} from "./store.js";

export const databaseFileName = "controller.db";

/** The store could not be opened or used: a locked, newer or corrupt database. */
export class StoreError extends Error {
  override name = "StoreError";
}

export interface SqliteStoreOptions {
  /** Directory that holds `controller.db`; created when missing. */
  dataDir: string;
  /** Migrations to apply; tests pass a longer list to exercise upgrades. @default migrations */
  migrations?: readonly Migration[];
}

type Row = Record<string, unknown>;

function text(row: Row, column: string): string {
  const v = row[column];
  if (typeof v !== "string") throw new StoreError(`column ${column}: expected text`);
  return v;
}

function int(row: Row, column: string): number {
  const v = row[column];
  if (typeof v === "bigint") return Number(v);
  if (typeof v !== "number") throw new StoreError(`column ${column}: expected an integer`);
  return v;
}

function intOrNull(row: Row, column: string): number | null {
  return row[column] === null ? null : int(row, column);
}

function json<T>(row: Row, column: string): T {
  return JSON.parse(text(row, column)) as T;
}

const toNode = (r: Row): NodeRecord => ({
  name: text(r, "name"),
  type: text(r, "type") as NodeType,
  flags: json<string[]>(r, "flags"),
  props: json<Props>(r, "props"),
  netInterfaces: json<NetInterfaceRecord[]>(r, "net_interfaces"),
  uuid: text(r, "uuid"),
});

const toPool = (r: Row): StoragePoolRecord => ({
  node: text(r, "node"),
  name: text(r, "name"),
  providerKind: text(r, "provider_kind") as ProviderKind,
  props: json<Props>(r, "props"),
  sharedSpace: r["shared_space"] === null ? null : text(r, "shared_space"),
  externalLocking: int(r, "external_locking") !== 0,
  uuid: text(r, "uuid"),
});

const toGroup = (r: Row): ResourceGroupRecord => ({
  name: text(r, "name"),
  description: text(r, "description"),
  props: json<Props>(r, "props"),
  selectFilter: json<AutoSelectFilter>(r, "select_filter"),
  peerSlots: intOrNull(r, "peer_slots"),
  uuid: text(r, "uuid"),
});

const toVolumeGroup = (r: Row): VolumeGroupRecord => ({
  resourceGroup: text(r, "resource_group"),
  volumeNumber: int(r, "volume_number"),
  props: json<Props>(r, "props"),
  flags: json<string[]>(r, "flags"),
  uuid: text(r, "uuid"),
});

const toDefinition = (r: Row): ResourceDefinitionRecord => ({
  name: text(r, "name"),
  externalName: r["external_name"] === null ? null : text(r, "external_name"),
  resourceGroup: text(r, "resource_group"),
  props: json<Props>(r, "props"),
  flags: json<string[]>(r, "flags"),
  port: int(r, "port"),
  secret: text(r, "secret"),
  peerSlots: intOrNull(r, "peer_slots"),
  transportType: text(r, "transport_type"),
  uuid: text(r, "uuid"),
});

const toVolumeDefinition = (r: Row): VolumeDefinitionRecord => ({
  resourceDefinition: text(r, "resource_definition"),
  volumeNumber: int(r, "volume_number"),
  sizeKib: int(r, "size_kib"),
  props: json<Props>(r, "props"),
  flags: json<string[]>(r, "flags"),
  minorNumber: int(r, "minor_number"),
  uuid: text(r, "uuid"),
});

const toResource = (r: Row): ResourceRecord => ({
  resourceDefinition: text(r, "resource_definition"),
  node: text(r, "node"),
  props: json<Props>(r, "props"),
  flags: json<string[]>(r, "flags"),
  storagePool: text(r, "storage_pool"),
  nodeId: int(r, "node_id"),
  createTimestampMs: int(r, "create_timestamp_ms"),
  uuid: text(r, "uuid"),
});

/** Opens (creating and migrating as needed) the store in `options.dataDir`. */
export function openSqliteStore(options: SqliteStoreOptions): ControllerStore {
  mkdirSync(options.dataDir, { recursive: true });
  const path = join(options.dataDir, databaseFileName);
  let db: BetterSqlite3.Database | undefined;
  try {
    // A second controller on the same directory fails at once instead of waiting.
    db = new Database(path, { timeout: 0 });
    db.pragma("locking_mode = EXCLUSIVE");
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
    db.pragma("foreign_keys = ON");
    migrate(db, options.migrations ?? migrations);
  } catch (err) {
    db?.close(); // releases the exclusive lock
    throw new StoreError(`cannot open the controller database ${path}: ${String(err)}`, {
      cause: err,
    });
  }
  return new SqliteStore(db);
}

/** Applies every migration newer than the database, all in one transaction. */
function migrate(db: BetterSqlite3.Database, list: readonly Migration[]): void {
  db.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
  const row = db.prepare("SELECT max(version) AS v FROM schema_version").get() as Row;
  const current = row["v"] === null ? 0 : int(row, "v");
  const latest = list.length === 0 ? 0 : list[list.length - 1]!.version;
  if (current > latest) {
    throw new StoreError(
      `the database has schema version ${current}, newer than this controller's ${latest}`,
    );
  }
  const pending = list.filter((m) => m.version > current);
  if (pending.length === 0) return;
  db.transaction(() => {
    for (const m of pending) {
      m.up(db, { newUuid: randomUUID });
      db.prepare("DELETE FROM schema_version").run();
      db.prepare("INSERT INTO schema_version (version) VALUES (?)").run(m.version);
    }
  })();
}

class SqliteStore implements ControllerStore {
  private readonly tx: SqliteTx;
  private closed = false;

  constructor(private readonly db: BetterSqlite3.Database) {
    this.tx = new SqliteTx(db);
  }

  read<T>(fn: (tx: StoreReader) => T): T {
    this.checkOpen();
    return fn(this.tx);
  }

  write<T>(fn: (tx: StoreWriter) => T): Promise<T> {
    this.checkOpen();
    try {
      return Promise.resolve(this.db.transaction(() => fn(this.tx))());
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }

  private checkOpen(): void {
    if (this.closed) throw new StoreError("the store is closed");
  }
}

/** Statements are prepared once and reused; SQLite checks every foreign key. */
class SqliteTx implements StoreWriter {
  private readonly statements = new Map<string, BetterSqlite3.Statement>();

  constructor(private readonly db: BetterSqlite3.Database) {}

  private st(sql: string): BetterSqlite3.Statement {
    let s = this.statements.get(sql);
    if (s === undefined) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  private one<T>(sql: string, map: (r: Row) => T, ...args: unknown[]): T | undefined {
    const r = this.st(sql).get(...args) as Row | undefined;
    return r === undefined ? undefined : map(r);
  }

  private all<T>(sql: string, map: (r: Row) => T, ...args: unknown[]): T[] {
    return (this.st(sql).all(...args) as Row[]).map(map);
  }

  private run(sql: string, ...args: unknown[]): void {
    this.st(sql).run(...args);
  }

  controllerProps(): Props {
    const props: Props = {};
    for (const r of this.st("SELECT key, value FROM controller_props ORDER BY key").all()) {
      props[text(r as Row, "key")] = text(r as Row, "value");
    }
    return props;
  }

  setControllerProps(props: Props): void {
    this.run("DELETE FROM controller_props");
    for (const [k, v] of Object.entries(props)) {
      this.run("INSERT INTO controller_props (key, value) VALUES (?, ?)", k, v);
    }
  }

  node(name: string): NodeRecord | undefined {
    return this.one("SELECT * FROM nodes WHERE name = ?", toNode, name);
  }
  nodes(): NodeRecord[] {
    return this.all("SELECT * FROM nodes ORDER BY name", toNode);
  }
  putNode(n: NodeRecord): void {
    this.run(
      `INSERT INTO nodes (name, type, flags, props, net_interfaces, uuid) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET type = excluded.type, flags = excluded.flags,
         props = excluded.props, net_interfaces = excluded.net_interfaces, uuid = excluded.uuid`,
      n.name,
      n.type,
      JSON.stringify(n.flags),
      JSON.stringify(n.props),
      JSON.stringify(n.netInterfaces),
      n.uuid,
    );
  }
  deleteNode(name: string): void {
    this.run("DELETE FROM nodes WHERE name = ?", name);
  }

  storagePool(node: string, name: string): StoragePoolRecord | undefined {
    return this.one("SELECT * FROM storage_pools WHERE node = ? AND name = ?", toPool, node, name);
  }
  storagePools(node?: string): StoragePoolRecord[] {
    return node === undefined
      ? this.all("SELECT * FROM storage_pools ORDER BY node, name", toPool)
      : this.all("SELECT * FROM storage_pools WHERE node = ? ORDER BY name", toPool, node);
  }
  putStoragePool(p: StoragePoolRecord): void {
    this.run(
      `INSERT INTO storage_pools
         (node, name, provider_kind, props, shared_space, external_locking, uuid)
       VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (node, name) DO UPDATE SET provider_kind = excluded.provider_kind,
         props = excluded.props, shared_space = excluded.shared_space,
         external_locking = excluded.external_locking, uuid = excluded.uuid`,
      p.node,
      p.name,
      p.providerKind,
      JSON.stringify(p.props),
      p.sharedSpace,
      p.externalLocking ? 1 : 0,
      p.uuid,
    );
  }
  deleteStoragePool(node: string, name: string): void {
    this.run("DELETE FROM storage_pools WHERE node = ? AND name = ?", node, name);
  }

  resourceGroup(name: string): ResourceGroupRecord | undefined {
    return this.one("SELECT * FROM resource_groups WHERE name = ?", toGroup, name);
  }
  resourceGroups(): ResourceGroupRecord[] {
    return this.all("SELECT * FROM resource_groups ORDER BY name", toGroup);
  }
  putResourceGroup(g: ResourceGroupRecord): void {
    this.run(
      `INSERT INTO resource_groups (name, description, props, select_filter, peer_slots, uuid)
       VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET description = excluded.description,
         props = excluded.props, select_filter = excluded.select_filter,
         peer_slots = excluded.peer_slots, uuid = excluded.uuid`,
      g.name,
      g.description,
      JSON.stringify(g.props),
      JSON.stringify(g.selectFilter),
      g.peerSlots,
      g.uuid,
    );
  }
  deleteResourceGroup(name: string): void {
    this.run("DELETE FROM resource_groups WHERE name = ?", name);
  }

  volumeGroup(rg: string, nr: number): VolumeGroupRecord | undefined {
    return this.one(
      "SELECT * FROM volume_groups WHERE resource_group = ? AND volume_number = ?",
      toVolumeGroup,
      rg,
      nr,
    );
  }
  volumeGroups(rg: string): VolumeGroupRecord[] {
    return this.all(
      "SELECT * FROM volume_groups WHERE resource_group = ? ORDER BY volume_number",
      toVolumeGroup,
      rg,
    );
  }
  putVolumeGroup(g: VolumeGroupRecord): void {
    this.run(
      `INSERT INTO volume_groups (resource_group, volume_number, props, flags, uuid)
       VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (resource_group, volume_number) DO UPDATE SET props = excluded.props,
         flags = excluded.flags, uuid = excluded.uuid`,
      g.resourceGroup,
      g.volumeNumber,
      JSON.stringify(g.props),
      JSON.stringify(g.flags),
      g.uuid,
    );
  }
  deleteVolumeGroup(rg: string, nr: number): void {
    this.run("DELETE FROM volume_groups WHERE resource_group = ? AND volume_number = ?", rg, nr);
  }

  resourceDefinition(name: string): ResourceDefinitionRecord | undefined {
    return this.one("SELECT * FROM resource_definitions WHERE name = ?", toDefinition, name);
  }
  resourceDefinitions(rg?: string): ResourceDefinitionRecord[] {
    return rg === undefined
      ? this.all("SELECT * FROM resource_definitions ORDER BY name", toDefinition)
      : this.all(
          "SELECT * FROM resource_definitions WHERE resource_group = ? ORDER BY name",
          toDefinition,
          rg,
        );
  }
  putResourceDefinition(d: ResourceDefinitionRecord): void {
    this.run(
      `INSERT INTO resource_definitions (name, external_name, resource_group, props, flags, port,
         secret, peer_slots, transport_type, uuid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET external_name = excluded.external_name,
         resource_group = excluded.resource_group, props = excluded.props,
         flags = excluded.flags, port = excluded.port, secret = excluded.secret,
         peer_slots = excluded.peer_slots, transport_type = excluded.transport_type,
         uuid = excluded.uuid`,
      d.name,
      d.externalName,
      d.resourceGroup,
      JSON.stringify(d.props),
      JSON.stringify(d.flags),
      d.port,
      d.secret,
      d.peerSlots,
      d.transportType,
      d.uuid,
    );
  }
  deleteResourceDefinition(name: string): void {
    this.run("DELETE FROM resource_definitions WHERE name = ?", name);
  }

  volumeDefinition(rd: string, nr: number): VolumeDefinitionRecord | undefined {
    return this.one(
      "SELECT * FROM volume_definitions WHERE resource_definition = ? AND volume_number = ?",
      toVolumeDefinition,
      rd,
      nr,
    );
  }
  volumeDefinitions(rd?: string): VolumeDefinitionRecord[] {
    return rd === undefined
      ? this.all(
          "SELECT * FROM volume_definitions ORDER BY resource_definition, volume_number",
          toVolumeDefinition,
        )
      : this.all(
          "SELECT * FROM volume_definitions WHERE resource_definition = ? ORDER BY volume_number",
          toVolumeDefinition,
          rd,
        );
  }
  putVolumeDefinition(v: VolumeDefinitionRecord): void {
    this.run(
      `INSERT INTO volume_definitions
         (resource_definition, volume_number, size_kib, props, flags, minor_number, uuid)
       VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (resource_definition, volume_number) DO UPDATE SET
         size_kib = excluded.size_kib, props = excluded.props, flags = excluded.flags,
         minor_number = excluded.minor_number, uuid = excluded.uuid`,
      v.resourceDefinition,
      v.volumeNumber,
      v.sizeKib,
      JSON.stringify(v.props),
      JSON.stringify(v.flags),
      v.minorNumber,
      v.uuid,
    );
  }
  deleteVolumeDefinition(rd: string, nr: number): void {
    this.run(
      "DELETE FROM volume_definitions WHERE resource_definition = ? AND volume_number = ?",
      rd,
      nr,
    );
  }

  resource(rd: string, node: string): ResourceRecord | undefined {
    return this.one(
      "SELECT * FROM resources WHERE resource_definition = ? AND node = ?",
      toResource,
      rd,
      node,
    );
  }
  resources(filter: ResourceFilter = {}): ResourceRecord[] {
    // Each condition is either unset (NULL matches all) or compared case-insensitively.
    return this.all(
      `SELECT * FROM resources
       WHERE (@rd IS NULL OR resource_definition = @rd) AND (@node IS NULL OR node = @node)
         AND (@pool IS NULL OR storage_pool = @pool)
       ORDER BY resource_definition, node`,
      toResource,
      {
        rd: filter.resourceDefinition ?? null,
        node: filter.node ?? null,
        pool: filter.storagePool ?? null,
      },
    );
  }
  putResource(r: ResourceRecord): void {
    this.run(
      `INSERT INTO resources (resource_definition, node, props, flags, storage_pool, node_id,
         create_timestamp_ms, uuid) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (resource_definition, node) DO UPDATE SET props = excluded.props,
         flags = excluded.flags, storage_pool = excluded.storage_pool,
         node_id = excluded.node_id, create_timestamp_ms = excluded.create_timestamp_ms,
         uuid = excluded.uuid`,
      r.resourceDefinition,
      r.node,
      JSON.stringify(r.props),
      JSON.stringify(r.flags),
      r.storagePool,
      r.nodeId,
      r.createTimestampMs,
      r.uuid,
    );
  }
  deleteResource(rd: string, node: string): void {
    this.run("DELETE FROM resources WHERE resource_definition = ? AND node = ?", rd, node);
  }

  keyValueStore(name: string): KeyValueStoreRecord | undefined {
    return this.one("SELECT * FROM key_value_stores WHERE name = ?", toKvs, name);
  }
  keyValueStores(): KeyValueStoreRecord[] {
    return this.all("SELECT * FROM key_value_stores ORDER BY name", toKvs);
  }
  putKeyValueStore(k: KeyValueStoreRecord): void {
    this.run(
      `INSERT INTO key_value_stores (name, props) VALUES (?, ?)
       ON CONFLICT (name) DO UPDATE SET props = excluded.props`,
      k.name,
      JSON.stringify(k.props),
    );
  }
  deleteKeyValueStore(name: string): void {
    this.run("DELETE FROM key_value_stores WHERE name = ?", name);
  }

  errorReport(id: string): ErrorReportRecord | undefined {
    return this.one("SELECT * FROM error_reports WHERE id = ?", toErrorReport, id);
  }
  errorReports(): ErrorReportRecord[] {
    return this.all("SELECT * FROM error_reports ORDER BY error_time_ms, id", toErrorReport);
  }
  putErrorReport(e: ErrorReportRecord): void {
    this.run(
      `INSERT INTO error_reports (id, node_name, error_time_ms, module, version, peer, exception,
         exception_message, origin_file, origin_method, origin_line, text)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      e.id,
      e.nodeName,
      e.errorTimeMs,
      e.module,
      e.version,
      e.peer,
      e.exception,
      e.exceptionMessage,
      e.originFile,
      e.originMethod,
      e.originLine,
      e.text,
    );
  }
  deleteErrorReport(id: string): void {
    this.run("DELETE FROM error_reports WHERE id = ?", id);
  }
}

const textOrNull = (r: Row, column: string): string | null =>
  r[column] === null ? null : text(r, column);

const toErrorReport = (r: Row): ErrorReportRecord => ({
  id: text(r, "id"),
  nodeName: text(r, "node_name"),
  errorTimeMs: int(r, "error_time_ms"),
  module: text(r, "module"),
  version: text(r, "version"),
  peer: textOrNull(r, "peer"),
  exception: text(r, "exception"),
  exceptionMessage: text(r, "exception_message"),
  originFile: textOrNull(r, "origin_file"),
  originMethod: textOrNull(r, "origin_method"),
  originLine: intOrNull(r, "origin_line"),
  text: text(r, "text"),
});

const toKvs = (r: Row): KeyValueStoreRecord => ({
  name: text(r, "name"),
  props: json<Props>(r, "props"),
});
