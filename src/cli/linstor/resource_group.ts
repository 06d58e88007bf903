//! `mirra resource-group` (rg): templates for resource definitions, with the placement rules
//! (select filter) that spawn-resources and auto-placement apply.

import type { Command } from "commander";
import { ConfigError } from "../../stdx/errors.js";
import { aliases, collect, contextOf, parseCount, verb } from "./common.js";
import { asArray, asObjects, asString, isObject, type Json, type JsonObject } from "./json.js";
import { enc, fetchJson, listCommand, mutate } from "./output.js";
import { parseSizeKib } from "./sizes.js";

interface SelectFilterOptions {
  placeCount?: string;
  storagePool?: string[];
  disklessOnRemaining?: boolean;
  replicasOnSame?: string[];
  replicasOnDifferent?: string[];
  doNotPlaceWith?: string[];
  doNotPlaceWithRegex?: string;
  description?: string;
}

function addSelectFilterOptions(command: Command): Command {
  return command
    .option("--place-count <n>", "number of diskful replicas")
    .option("--storage-pool <pool>", "storage pool(s) to place in (repeatable)", collect)
    .option("--diskless-on-remaining", "add diskless resources on the other nodes")
    .option("--replicas-on-same <key>", "node property replicas share (repeatable)", collect)
    .option(
      "--replicas-on-different <key>",
      "node property replicas differ in (repeatable)",
      collect,
    )
    .option(
      "--do-not-place-with <rsc>",
      "avoid nodes that hold this resource (repeatable)",
      collect,
    )
    .option("--do-not-place-with-regex <re>", "avoid nodes with resources matching this")
    .option("--description <text>", "free text");
}

/** The API's AutoSelectFilter from the options given; options not given stay unset. */
function selectFilter(opts: SelectFilterOptions): JsonObject {
  const f: JsonObject = {};
  if (opts.placeCount !== undefined)
    f["place_count"] = parseCount("--place-count", opts.placeCount, 1);
  if (opts.storagePool !== undefined) {
    if (opts.storagePool.length === 1) f["storage_pool"] = opts.storagePool[0]!;
    f["storage_pool_list"] = opts.storagePool;
  }
  if (opts.disklessOnRemaining === true) f["diskless_on_remaining"] = true;
  if (opts.replicasOnSame !== undefined) f["replicas_on_same"] = opts.replicasOnSame;
  if (opts.replicasOnDifferent !== undefined) f["replicas_on_different"] = opts.replicasOnDifferent;
  if (opts.doNotPlaceWith !== undefined) f["not_place_with_rsc"] = opts.doNotPlaceWith;
  if (opts.doNotPlaceWithRegex !== undefined)
    f["not_place_with_rsc_regex"] = opts.doNotPlaceWithRegex;
  return f;
}

/** "PlaceCount: 2, StoragePool(s): pool1": the select filter as LINSTOR's table shows it. */
export function selectFilterText(filter: Json | undefined): string {
  if (!isObject(filter)) return "";
  const parts: string[] = [];
  const list = (v: Json | undefined): string => asArray(v).map(asString).join(", ");
  if (filter["place_count"] !== undefined)
    parts.push(`PlaceCount: ${asString(filter["place_count"])}`);
  const pools =
    asArray(filter["storage_pool_list"]).length > 0
      ? filter["storage_pool_list"]
      : [filter["storage_pool"] ?? null];
  if (list(pools) !== "") parts.push(`StoragePool(s): ${list(pools)}`);
  if (filter["diskless_on_remaining"] === true) parts.push("DisklessOnRemaining: True");
  if (list(filter["replicas_on_same"]) !== "")
    parts.push(`ReplicasOnSame: ${list(filter["replicas_on_same"])}`);
  if (list(filter["replicas_on_different"]) !== "")
    parts.push(`ReplicasOnDifferent: ${list(filter["replicas_on_different"])}`);
  if (list(filter["not_place_with_rsc"]) !== "")
    parts.push(`NotPlaceWithRsc: ${list(filter["not_place_with_rsc"])}`);
  return parts.join(", ");
}

export function registerResourceGroup(program: Command): void {
  const rg = program
    .command("resource-group")
    .alias("rg")
    .description("resource groups: templates with placement rules");

  addSelectFilterOptions(
    verb(rg, "create", aliases.create)
      .description("create a resource group")
      .argument("<name>", "resource group name"),
  ).action(async (name: string, opts: SelectFilterOptions, cmd: Command) => {
    const body: JsonObject = { name, select_filter: selectFilter(opts) };
    if (opts.description !== undefined) body["description"] = opts.description;
    await mutate(contextOf(cmd), "POST", "/v1/resource-groups", body);
  });

  verb(rg, "list", aliases.list)
    .description("list resource groups")
    .action(async (_opts: object, cmd: Command) => {
      const ctx = contextOf(cmd);
      await listCommand(ctx, "/v1/resource-groups", async (groups) => [
        ["ResourceGroup", "SelectFilter", "VlmNrs", "Description"],
        await Promise.all(
          groups.map(async (g) => {
            const name = asString(g["name"]);
            const vgs = await fetchJson(ctx, `/v1/resource-groups/${enc(name)}/volume-groups`);
            return [
              name,
              selectFilterText(g["select_filter"]),
              asObjects(vgs)
                .map((vg) => asString(vg["volume_number"]))
                .join(","),
              asString(g["description"]),
            ];
          }),
        ),
      ]);
    });

  verb(rg, "delete", aliases.delete)
    .description("delete a resource group (refused while definitions use it)")
    .argument("<name>", "resource group name")
    .action(async (name: string, _opts: object, cmd: Command) => {
      await mutate(contextOf(cmd), "DELETE", `/v1/resource-groups/${enc(name)}`);
    });

  addSelectFilterOptions(
    verb(rg, "modify", aliases.modify)
      .description("change a resource group's placement rules or description")
      .argument("<name>", "resource group name"),
  ).action(async (name: string, opts: SelectFilterOptions, cmd: Command) => {
    const filter = selectFilter(opts);
    const body: JsonObject = {};
    if (Object.keys(filter).length > 0) body["select_filter"] = filter;
    if (opts.description !== undefined) body["description"] = opts.description;
    if (Object.keys(body).length === 0)
      throw new ConfigError("rg modify: give at least one option to change");
    await mutate(contextOf(cmd), "PUT", `/v1/resource-groups/${enc(name)}`, body);
  });

  registerSpawn(rg);
}

/** `rg spawn-resources`: a definition from the group, placed by the controller. */
function registerSpawn(rg: Command): void {
  verb(rg, "spawn-resources", ["spawn"])
    .description("create a resource definition from the group and place its resources")
    .argument("<group>", "resource group name")
    .argument("<definition>", "name of the new resource definition")
    .argument("<sizes...>", "volume sizes, e.g. 1G (no unit: GiB)")
    .option("--definitions-only", "create the definitions but place no resources")
    .option("--partial", "create only the volume definitions the group lacks")
    .action(
      async (
        group: string,
        definition: string,
        sizes: string[],
        opts: { definitionsOnly?: boolean; partial?: boolean },
        cmd: Command,
      ) => {
        const body: JsonObject = {
          resource_definition_name: definition,
          volume_sizes: sizes.map(parseSizeKib),
        };
        if (opts.definitionsOnly === true) body["definitions_only"] = true;
        if (opts.partial === true) body["partial"] = true;
        await mutate(contextOf(cmd), "POST", `/v1/resource-groups/${enc(group)}/spawn`, body);
      },
    );
}
