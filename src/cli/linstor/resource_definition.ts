//! `mirra resource-definition` (rd) and `mirra volume-definition` (vd): what a resource is
//! (its group, DRBD port and secret) and the sizes of its volumes.

import type { Command } from "commander";
import { aliases, contextOf, parseCount, verb } from "./common.js";
import { asArray, asObjects, asString, isObject, type Json, type JsonObject } from "./json.js";
import { colorState, enc, formatKib, listCommand, mutate, query } from "./output.js";
import { parseSizeKib } from "./sizes.js";

function drbdData(layers: Json | undefined): JsonObject {
  const drbd = asObjects(layers).find((l) => asString(l["type"]) === "DRBD");
  return drbd !== undefined && isObject(drbd["data"]) ? drbd["data"] : {};
}

/** "ok" as LINSTOR shows a live definition, "DELETING" while it is being removed. */
function definitionState(flags: Json | undefined): string {
  return asArray(flags).map(asString).includes("DELETE") ? "DELETING" : "ok";
}

export function registerResourceDefinition(program: Command): void {
  const rd = program
    .command("resource-definition")
    .alias("rd")
    .description("resource definitions: a replicated resource, wherever it is placed");

  verb(rd, "create", aliases.create)
    .description("create a resource definition")
    .argument("<name>", "resource name")
    .option("--resource-group <rg>", "group it belongs to (default DfltRscGrp)")
    .option("--port <port>", "DRBD TCP port (default: the lowest free one)")
    .action(async (name: string, opts: { resourceGroup?: string; port?: string }, cmd: Command) => {
      const definition: JsonObject = { name };
      if (opts.resourceGroup !== undefined) definition["resource_group_name"] = opts.resourceGroup;
      const body: JsonObject = { resource_definition: definition };
      if (opts.port !== undefined) body["drbd_port"] = parseCount("--port", opts.port, 1);
      await mutate(contextOf(cmd), "POST", "/v1/resource-definitions", body);
    });

  verb(rd, "list", aliases.list)
    .description("list resource definitions")
    .option("-r, --resources <names...>", "only these")
    .action(async (opts: { resources?: string[] }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const q = query({ resource_definitions: opts.resources });
      await listCommand(ctx, `/v1/resource-definitions${q}`, (rds) => [
        ["ResourceName", "ResourceGroup", "Layers", "Port", "State"],
        rds.map((d) => [
          asString(d["name"]),
          asString(d["resource_group_name"]),
          asObjects(d["layer_data"])
            .map((l) => asString(l["type"]))
            .join(","),
          asString(drbdData(d["layer_data"])["port"]),
          colorState(ctx, definitionState(d["flags"])),
        ]),
      ]);
    });

  verb(rd, "delete", aliases.delete)
    .description("delete a resource definition with its volume definitions and resources")
    .argument("<name>", "resource name")
    .action(async (name: string, _opts: object, cmd: Command) => {
      await mutate(contextOf(cmd), "DELETE", `/v1/resource-definitions/${enc(name)}`);
    });
}

interface VolumeDefinitionCreateOptions {
  vlmnr?: string;
  minor?: string;
}

async function volumeDefinitionCreate(
  cmd: Command,
  rsc: string,
  size: string,
  opts: VolumeDefinitionCreateOptions,
): Promise<void> {
  const definition: JsonObject = { size_kib: parseSizeKib(size) };
  if (opts.vlmnr !== undefined) definition["volume_number"] = parseCount("--vlmnr", opts.vlmnr);
  const body: JsonObject = { volume_definition: definition };
  if (opts.minor !== undefined) body["drbd_minor_number"] = parseCount("--minor", opts.minor);
  const path = `/v1/resource-definitions/${enc(rsc)}/volume-definitions`;
  await mutate(contextOf(cmd), "POST", path, body);
}

export function registerVolumeDefinition(program: Command): void {
  const vd = program
    .command("volume-definition")
    .alias("vd")
    .description("volume definitions: the volumes of a resource and their sizes");

  verb(vd, "create", aliases.create)
    .description("add a volume to a resource definition")
    .argument("<resource>", "resource name")
    .argument("<size>", "size, e.g. 1G or 100M (no unit: GiB)")
    .option("--vlmnr <n>", "volume number (default: the lowest free one)")
    .option("--minor <n>", "device minor (default: the lowest free one)")
    .action((rsc: string, size: string, opts: VolumeDefinitionCreateOptions, cmd: Command) =>
      volumeDefinitionCreate(cmd, rsc, size, opts),
    );

  verb(vd, "list", aliases.list)
    .description("list volume definitions")
    .option("-r, --resources <names...>", "only of these resources")
    .action(async (opts: { resources?: string[] }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const q = query({ with_volume_definitions: "true", resource_definitions: opts.resources });
      await listCommand(ctx, `/v1/resource-definitions${q}`, (rds) => [
        ["ResourceName", "VolumeNr", "VolumeMinor", "Size", "State"],
        rds.flatMap((d) =>
          asObjects(d["volume_definitions"]).map((v) => [
            asString(d["name"]),
            asString(v["volume_number"]),
            asString(drbdData(v["layer_data"])["minor_number"]),
            formatKib(v["size_kib"]),
            colorState(ctx, definitionState(v["flags"])),
          ]),
        ),
      ]);
    });

  verb(vd, "set-size", [])
    .description("resize a volume (growing is always allowed)")
    .argument("<resource>", "resource name")
    .argument("<vlmnr>", "volume number")
    .argument("<size>", "new size, e.g. 2G")
    .action(async (rsc: string, vlmnr: string, size: string, _opts: object, cmd: Command) => {
      const nr = parseCount("volume number", vlmnr);
      await mutate(
        contextOf(cmd),
        "PUT",
        `/v1/resource-definitions/${enc(rsc)}/volume-definitions/${nr}`,
        { size_kib: parseSizeKib(size) },
      );
    });

  verb(vd, "delete", aliases.delete)
    .description("delete a volume definition")
    .argument("<resource>", "resource name")
    .argument("<vlmnr>", "volume number")
    .action(async (rsc: string, vlmnr: string, _opts: object, cmd: Command) => {
      const nr = parseCount("volume number", vlmnr);
      await mutate(
        contextOf(cmd),
        "DELETE",
        `/v1/resource-definitions/${enc(rsc)}/volume-definitions/${nr}`,
      );
    });
}
