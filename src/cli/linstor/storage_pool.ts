//! `mirra storage-pool` (sp): pools of FILE and FILE_THIN drivers (a directory of
//! preallocated or sparse files) and DISKLESS ones.

import type { Command } from "commander";
import { aliases, contextOf, verb } from "./common.js";
import { asObjects, asString, isObject, type JsonObject } from "./json.js";
import {
  colorState,
  enc,
  formatKib,
  listCommand,
  mutate,
  query,
  severityOf,
  type CliContext,
} from "./output.js";

/** The property LINSTOR's FILE drivers keep their directory in. */
const fileDirKey = "StorDriver/FileDir";

/** Error reports make a pool red, warnings yellow; a pool no satellite measured is Unknown. */
function poolState(ctx: CliContext, pool: JsonObject): string {
  const severities = asObjects(pool["reports"]).map((r) => severityOf(r["ret_code"]));
  if (severities.includes("error")) return colorState(ctx, "Error");
  if (severities.includes("warning")) return colorState(ctx, "Warning");
  const measured = "free_capacity" in pool || asString(pool["provider_kind"]) === "DISKLESS";
  return colorState(ctx, measured ? "Ok" : "Unknown");
}

export function registerStoragePool(program: Command): void {
  const sp = program
    .command("storage-pool")
    .alias("sp")
    .description("storage pools: where a node keeps the data of its volumes");

  const create = verb(sp, "create", aliases.create).description("create a storage pool");
  for (const [driver, kind, what] of [
    ["file", "FILE", "preallocated files"],
    ["filethin", "FILE_THIN", "sparse files"],
  ] as const) {
    create
      .command(driver)
      .description(`a directory of ${what}`)
      .argument("<node>", "node name")
      .argument("<name>", "storage pool name")
      .argument("<directory>", "directory that holds the volume files")
      .action(async (node: string, name: string, directory: string, _o: object, cmd: Command) => {
        await mutate(contextOf(cmd), "POST", `/v1/nodes/${enc(node)}/storage-pools`, {
          storage_pool_name: name,
          provider_kind: kind,
          props: { [fileDirKey]: directory },
        });
      });
  }
  create
    .command("diskless")
    .description("a pool for diskless resources")
    .argument("<node>", "node name")
    .argument("<name>", "storage pool name")
    .action(async (node: string, name: string, _o: object, cmd: Command) => {
      await mutate(contextOf(cmd), "POST", `/v1/nodes/${enc(node)}/storage-pools`, {
        storage_pool_name: name,
        provider_kind: "DISKLESS",
      });
    });

  registerStoragePoolList(sp);

  verb(sp, "delete", aliases.delete)
    .description("delete a storage pool (refused while resources use it)")
    .argument("<node>", "node name")
    .argument("<name>", "storage pool name")
    .action(async (node: string, name: string, _o: object, cmd: Command) => {
      await mutate(contextOf(cmd), "DELETE", `/v1/nodes/${enc(node)}/storage-pools/${enc(name)}`);
    });
}

function registerStoragePoolList(sp: Command): void {
  verb(sp, "list", aliases.list)
    .description("list storage pools")
    .option("-n, --nodes <names...>", "only on these nodes")
    .option("-s, --storage-pools <names...>", "only these pools")
    .action(async (opts: { nodes?: string[]; storagePools?: string[] }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const q = query({ nodes: opts.nodes, storage_pools: opts.storagePools });
      await listCommand(ctx, `/v1/view/storage-pools${q}`, (pools) => [
        [
          "StoragePool",
          "Node",
          "Driver",
          "PoolName",
          "FreeCapacity",
          "TotalCapacity",
          "CanSnapshots",
          "State",
        ],
        pools.map((p) => [
          asString(p["storage_pool_name"]),
          asString(p["node_name"]),
          asString(p["provider_kind"]),
          isObject(p["props"]) ? asString(p["props"][fileDirKey]) : "",
          formatKib(p["free_capacity"]),
          formatKib(p["total_capacity"]),
          p["supports_snapshots"] === true ? "True" : "False",
          poolState(ctx, p),
        ]),
      ]);
    });
}
