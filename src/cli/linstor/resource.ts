//! `mirra resource` (r) and `mirra volume` (v): where a resource is placed and the state its
//! satellites report for it (empty until a satellite reports, shown as Unknown).

import type { Command } from "commander";
import { ConfigError } from "../../stdx/errors.js";
import { aliases, contextOf, parseCount, verb } from "./common.js";
import {
  asArray,
  asNumber,
  asObjects,
  asString,
  isObject,
  type Json,
  type JsonObject,
} from "./json.js";
import {
  colorState,
  enc,
  formatKib,
  listCommand,
  mutate,
  query,
  type CliContext,
} from "./output.js";

function obj(v: Json | undefined): JsonObject {
  return isObject(v) ? v : {};
}

/**
 * One volume's state as LINSTOR's table shows it: the disk state, or the replication state
 * with its progress while a peer is syncing.
 */
export function volumeStateText(volume: JsonObject, flags: readonly string[]): string {
  const state = obj(volume["state"]);
  for (const peer of Object.values(obj(state["replication_states"]))) {
    const p = obj(peer);
    const done = asNumber(p["done_percentage"]);
    if (done !== undefined && done < 100)
      return `${asString(p["replication_state"]) || "Sync"}(${done.toFixed(2)}%)`;
  }
  const disk = asString(state["disk_state"]);
  if (disk !== "") return disk;
  if (flags.includes("DELETE")) return "DELETING";
  return "Unknown";
}

/** The resource's state: its volumes' states when they agree, else each one. */
function resourceStateText(resource: JsonObject): string {
  const flags = asArray(resource["flags"]).map(asString);
  const states = [...new Set(asObjects(resource["volumes"]).map((v) => volumeStateText(v, flags)))];
  if (states.length === 0) return flags.includes("DELETE") ? "DELETING" : "Unknown";
  return states.join(",");
}

function usage(resource: JsonObject): string {
  const inUse = obj(resource["state"])["in_use"];
  return inUse === true ? "InUse" : inUse === false ? "Unused" : "";
}

/** "Ok" when every DRBD peer connection is up, else the peers that are not. */
function conns(resource: JsonObject): string {
  const connections = Object.entries(
    obj(obj(obj(resource["layer_object"])["drbd"])["connections"]),
  );
  if (connections.length === 0) return "";
  const down = connections.filter(([, c]) => obj(c)["connected"] !== true).map(([peer]) => peer);
  return down.length === 0 ? "Ok" : `Connecting(${down.join(",")})`;
}

function port(resource: JsonObject): string {
  return asString(asArray(obj(obj(resource["layer_object"])["drbd"])["tcp_ports"])[0]);
}

function minor(volume: JsonObject): string {
  const drbd = asObjects(volume["layer_data_list"]).find((l) => asString(l["type"]) === "DRBD");
  return asString(obj(obj(drbd?.["data"])["drbd_volume_definition"])["minor_number"]);
}

function createdOn(ms: Json | undefined): string {
  const n = asNumber(ms);
  return n === undefined ? "" : new Date(n).toISOString().slice(0, 19).replace("T", " ");
}

function viewPath(opts: { nodes?: string[]; resources?: string[] }): string {
  return `/v1/view/resources${query({ nodes: opts.nodes, resources: opts.resources })}`;
}

interface ResourceCreateOptions {
  storagePool?: string;
  diskless?: boolean;
  nodeId?: string;
  autoPlace?: string;
}

/**
 * `r create NODE... RD` places the resource on the nodes named; `r create RD --auto-place N`
 * lets the controller choose them.
 */
async function resourceCreate(
  cmd: Command,
  names: string[],
  opts: ResourceCreateOptions,
): Promise<void> {
  const ctx = contextOf(cmd);
  const rsc = names[names.length - 1]!;
  const nodes = names.slice(0, -1);
  if (opts.autoPlace !== undefined) {
    if (nodes.length > 0) throw new ConfigError("r create --auto-place takes only the resource");
    const filter: JsonObject = { place_count: parseCount("--auto-place", opts.autoPlace, 1) };
    if (opts.storagePool !== undefined) filter["storage_pool"] = opts.storagePool;
    await mutate(ctx, "POST", `/v1/resource-definitions/${enc(rsc)}/autoplace`, {
      select_filter: filter,
    });
    return;
  }
  if (nodes.length === 0)
    throw new ConfigError("r create: name at least one node, then the resource");
  if (opts.nodeId !== undefined && nodes.length > 1)
    throw new ConfigError("r create: --node-id names one node's id; give one node");
  const body = nodes.map((node) => {
    const resource: JsonObject = { node_name: node };
    if (opts.storagePool !== undefined) resource["props"] = { StorPoolName: opts.storagePool };
    if (opts.diskless === true) resource["flags"] = ["DRBD_DISKLESS"];
    const entry: JsonObject = { resource };
    if (opts.nodeId !== undefined) entry["drbd_node_id"] = parseCount("--node-id", opts.nodeId);
    return entry;
  });
  await mutate(ctx, "POST", `/v1/resource-definitions/${enc(rsc)}/resources`, body);
}

export function registerResource(program: Command): void {
  const r = program
    .command("resource")
    .alias("r")
    .description("resources: a resource definition placed on a node");

  verb(r, "create", aliases.create)
    .description("place a resource on nodes: r create NODE... RESOURCE")
    .argument("<names...>", "node names, then the resource name")
    .option("-s, --storage-pool <pool>", "storage pool for the volumes")
    .option("-d, --diskless", "a diskless resource (reads and writes go to peers)")
    .option("--node-id <n>", "DRBD node-id (one node only)")
    .option(
      "--auto-place <n>",
      "let the controller choose N nodes: r create RESOURCE --auto-place N",
    )
    .action((names: string[], opts: ResourceCreateOptions, cmd: Command) =>
      resourceCreate(cmd, names, opts),
    );

  verb(r, "list", aliases.list)
    .description("list resources with their state")
    .option("-n, --nodes <names...>", "only on these nodes")
    .option("-r, --resources <names...>", "only these resources")
    .action(async (opts: { nodes?: string[]; resources?: string[] }, cmd: Command) => {
      const ctx = contextOf(cmd);
      await listCommand(ctx, viewPath(opts), (resources) => [
        ["ResourceName", "Node", "Port", "Usage", "Conns", "State", "CreatedOn"],
        resources.map((res) => [
          asString(res["name"]),
          asString(res["node_name"]),
          port(res),
          usage(res),
          colorState(ctx, conns(res)),
          colorState(ctx, resourceStateText(res)),
          createdOn(res["create_timestamp"]),
        ]),
      ]);
    });

  verb(r, "toggle-disk", ["td"])
    .description("give a diskless resource a disk, or take it away: r td NODE RESOURCE")
    .argument("<node>", "the node")
    .argument("<resource>", "the resource")
    .option("-s, --storage-pool <pool>", "the pool to move into (diskful, or a diskless pool)")
    .option("--diskless", "remove the disk (the resource keeps reading and writing via peers)")
    .action(
      async (
        node: string,
        rsc: string,
        opts: { storagePool?: string; diskless?: boolean },
        cmd: Command,
      ) => {
        const body: JsonObject = {
          operation: opts.diskless === true ? "INTO_DRBD_DISKLESS" : "INTO_DRBD_DISKFUL",
        };
        if (opts.storagePool !== undefined) body["storage_pool"] = opts.storagePool;
        await mutate(
          contextOf(cmd),
          "PUT",
          `/v1/resource-definitions/${enc(rsc)}/resources/${enc(node)}/toggle-disk`,
          body,
        );
      },
    );

  verb(r, "delete", aliases.delete)
    .description("remove a resource from nodes: r delete NODE... RESOURCE")
    .argument("<names...>", "node names, then the resource name")
    .action(async (names: string[], _opts: object, cmd: Command) => {
      const ctx = contextOf(cmd);
      const rsc = names[names.length - 1]!;
      const nodes = names.slice(0, -1);
      if (nodes.length === 0)
        throw new ConfigError("r delete: name at least one node, then the resource");
      for (const node of nodes)
        await mutate(ctx, "DELETE", `/v1/resource-definitions/${enc(rsc)}/resources/${enc(node)}`);
    });
}

export function registerVolume(program: Command): void {
  const v = program
    .command("volume")
    .alias("v")
    .description("volumes: the volumes of placed resources");

  verb(v, "list", aliases.list)
    .description("list volumes with their state")
    .option("-n, --nodes <names...>", "only on these nodes")
    .option("-r, --resources <names...>", "only of these resources")
    .action(async (opts: { nodes?: string[]; resources?: string[] }, cmd: Command) => {
      const ctx: CliContext = contextOf(cmd);
      await listCommand(ctx, viewPath(opts), (resources) => [
        [
          "Node",
          "Resource",
          "StoragePool",
          "VolNr",
          "MinorNr",
          "DeviceName",
          "Allocated",
          "InUse",
          "State",
        ],
        resources.flatMap((res) => {
          const flags = asArray(res["flags"]).map(asString);
          return asObjects(res["volumes"]).map((vol) => [
            asString(res["node_name"]),
            asString(res["name"]),
            asString(vol["storage_pool_name"]),
            asString(vol["volume_number"]),
            minor(vol),
            asString(vol["device_path"]),
            formatKib(vol["allocated_size_kib"]),
            usage(res),
            colorState(ctx, volumeStateText(vol, flags)),
          ]);
        }),
      ]);
    });
}
