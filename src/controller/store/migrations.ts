//! The SQLite schema as numbered migrations. `schema_version` holds the number of the last one
//! applied; opening a store applies the rest in one transaction, so a crash mid-upgrade leaves
//! the old schema whole. Migrations are append-only: never edit one that has shipped.
//!
//! Name columns use `COLLATE NOCASE` so that lookups and uniqueness ignore case, as LINSTOR's
//! do, while the stored text keeps the case the object was created with. Props, flags, net
//! interfaces and select filters are JSON text: they are read and written whole.

import type BetterSqlite3 from "better-sqlite3";

export interface Migration {
  version: number;
  description: string;
  up(db: BetterSqlite3.Database, ctx: MigrationContext): void;
}

export interface MigrationContext {
  newUuid(): string;
}

export const migrations: readonly Migration[] = [
  {
    version: 1,
    description: "desired state: nodes, pools, groups, definitions, resources, key-value stores",
    up(db, ctx) {
      db.exec(`
        CREATE TABLE controller_props (
          key TEXT NOT NULL PRIMARY KEY,
          value TEXT NOT NULL
        );
        CREATE TABLE nodes (
          name TEXT NOT NULL COLLATE NOCASE PRIMARY KEY,
          type TEXT NOT NULL,
          flags TEXT NOT NULL,
          props TEXT NOT NULL,
          net_interfaces TEXT NOT NULL,
          uuid TEXT NOT NULL
        );
        CREATE TABLE storage_pools (
          node TEXT NOT NULL COLLATE NOCASE REFERENCES nodes(name) ON DELETE CASCADE,
          name TEXT NOT NULL COLLATE NOCASE,
          provider_kind TEXT NOT NULL,
          props TEXT NOT NULL,
          shared_space TEXT,
          external_locking INTEGER NOT NULL,
          uuid TEXT NOT NULL,
          PRIMARY KEY (node, name)
        );
        CREATE TABLE resource_groups (
          name TEXT NOT NULL COLLATE NOCASE PRIMARY KEY,
          description TEXT NOT NULL,
          props TEXT NOT NULL,
          select_filter TEXT NOT NULL,
          peer_slots INTEGER,
          uuid TEXT NOT NULL
        );
        CREATE TABLE volume_groups (
          resource_group TEXT NOT NULL COLLATE NOCASE
            REFERENCES resource_groups(name) ON DELETE CASCADE,
          volume_number INTEGER NOT NULL,
          props TEXT NOT NULL,
          flags TEXT NOT NULL,
          uuid TEXT NOT NULL,
          PRIMARY KEY (resource_group, volume_number)
        );
        CREATE TABLE resource_definitions (
          name TEXT NOT NULL COLLATE NOCASE PRIMARY KEY,
          external_name TEXT,
          resource_group TEXT NOT NULL COLLATE NOCASE REFERENCES resource_groups(name),
          props TEXT NOT NULL,
          flags TEXT NOT NULL,
          port INTEGER NOT NULL UNIQUE,
          secret TEXT NOT NULL,
          peer_slots INTEGER,
          transport_type TEXT NOT NULL,
          uuid TEXT NOT NULL
        );
        CREATE TABLE volume_definitions (
          resource_definition TEXT NOT NULL COLLATE NOCASE
            REFERENCES resource_definitions(name) ON DELETE CASCADE,
          volume_number INTEGER NOT NULL,
          size_kib INTEGER NOT NULL,
          props TEXT NOT NULL,
          flags TEXT NOT NULL,
          minor_number INTEGER NOT NULL UNIQUE,
          uuid TEXT NOT NULL,
          PRIMARY KEY (resource_definition, volume_number)
        );
        CREATE TABLE resources (
          resource_definition TEXT NOT NULL COLLATE NOCASE
            REFERENCES resource_definitions(name) ON DELETE CASCADE,
          node TEXT NOT NULL COLLATE NOCASE REFERENCES nodes(name) ON DELETE CASCADE,
          props TEXT NOT NULL,
          flags TEXT NOT NULL,
          storage_pool TEXT NOT NULL COLLATE NOCASE,
          node_id INTEGER NOT NULL,
          create_timestamp_ms INTEGER NOT NULL,
          uuid TEXT NOT NULL,
          PRIMARY KEY (resource_definition, node),
          UNIQUE (resource_definition, node_id),
          FOREIGN KEY (node, storage_pool) REFERENCES storage_pools(node, name) ON DELETE CASCADE
        );
        CREATE INDEX resources_by_node ON resources(node);
        CREATE TABLE key_value_stores (
          name TEXT NOT NULL COLLATE NOCASE PRIMARY KEY,
          props TEXT NOT NULL
        );
      `);
      // LINSTOR's database starts with this group; definitions that name none belong to it.
      db.prepare(
        `INSERT INTO resource_groups (name, description, props, select_filter, peer_slots, uuid)
         VALUES ('DfltRscGrp', '', '{}', '{}', NULL, ?)`,
      ).run(ctx.newUuid());
    },
  },
  {
    version: 2,
    description: "error reports",
    up(db) {
      db.exec(`
        CREATE TABLE error_reports (
          id TEXT NOT NULL COLLATE NOCASE PRIMARY KEY,
          node_name TEXT NOT NULL,
          error_time_ms INTEGER NOT NULL,
          module TEXT NOT NULL,
          version TEXT NOT NULL,
          peer TEXT,
          exception TEXT NOT NULL,
          exception_message TEXT NOT NULL,
          origin_file TEXT,
          origin_method TEXT,
          origin_line INTEGER,
          text TEXT NOT NULL
        );
        CREATE INDEX error_reports_by_time ON error_reports(error_time_ms);
      `);
    },
  },
];
