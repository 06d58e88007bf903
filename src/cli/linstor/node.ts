//! `mirra node` (n): LINSTOR's node verbs beside the daemon's `run`.

import { Option, type Command } from "commander";
import { aliases, contextOf, parseCount, verb } from "./common.js";
import { asObjects, asString, type JsonObject } from "./json.js";
import { colorState, enc, listCommand, mutate, query, type CliContext } from "./output.js";

const satellitePortDefault = 3366;

interface NodeCreateOptions {
  nodeType: string;
  port?: string;
  communicationType: string;
  interfaceName: string;
}

/** The interface the controller reaches the satellite on, as LINSTOR's `node list` shows. */
function addresses(node: JsonObject): string {
  const nifs = asObjects(node["net_interfaces"]);
  const active = nifs.filter((nif) => nif["is_active"] === true);
  return (active.length > 0 ? active : nifs.slice(0, 1))
    .map(
      (nif) =>
        `${asString(nif["address"])}:${asString(nif["satellite_port"])} ` +
        `(${asString(nif["satellite_encryption_type"])})`,
    )
    .join(", ");
}

/** LINSTOR shows "Online" for a connected satellite and the raw status otherwise. */
function nodeState(ctx: CliContext, node: JsonObject): string {
  const status = asString(node["connection_status"]);
  return colorState(ctx, status === "ONLINE" ? "Online" : status || "Unknown");
}

/** Registers a node with one interface, the one the controller reaches its satellite on. */
async function nodeCreate(
  cmd: Command,
  name: string,
  ip: string,
  opts: NodeCreateOptions,
): Promise<void> {
  const port = opts.port === undefined ? satellitePortDefault : parseCount("--port", opts.port);
  await mutate(contextOf(cmd), "POST", "/v1/nodes", {
    name,
    type: opts.nodeType,
    net_interfaces: [
      {
        name: opts.interfaceName,
        address: ip,
        satellite_port: port,
        satellite_encryption_type: opts.communicationType,
        is_active: true,
      },
    ],
  });
}

export function registerNodeVerbs(node: Command): void {
  node.alias("n");

  verb(node, "create", aliases.create)
    .description("register a node with its first network interface")
    .argument("<name>", "node name")
    .argument("<ip>", "address the satellite listens on")
    .addOption(
      new Option("--node-type <type>", "node type")
        .choices(["satellite", "combined", "controller", "auxiliary"])
        .default("satellite"),
    )
    .option("--port <port>", `satellite port (default ${satellitePortDefault})`)
    .option("--communication-type <type>", "satellite connection encryption", "plain")
    .option("--interface-name <name>", "name of the first interface", "default")
    .action((name: string, ip: string, opts: NodeCreateOptions, cmd: Command) =>
      nodeCreate(cmd, name, ip, opts),
    );

  verb(node, "list", aliases.list)
    .description("list nodes")
    .option("-n, --nodes <names...>", "only these nodes")
    .option("--props <key[=value]...>", "only nodes with these properties")
    .action(async (opts: { nodes?: string[]; props?: string[] }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const q = query({ nodes: opts.nodes, props: opts.props });
      await listCommand(ctx, `/v1/nodes${q}`, (nodes) => [
        ["Node", "NodeType", "Addresses", "State"],
        nodes.map((n) => [
          asString(n["name"]),
          asString(n["type"]),
          addresses(n),
          nodeState(ctx, n),
        ]),
      ]);
    });

  verb(node, "delete", aliases.delete)
    .description("delete a node (refused while it has resources)")
    .argument("<name>", "node name")
    .action(async (name: string, _opts: object, cmd: Command) => {
      await mutate(contextOf(cmd), "DELETE", `/v1/nodes/${enc(name)}`);
    });

  verb(node, "set-property", aliases.setProperty)
    .description("set a property of a node; without a value, delete it")
    .argument("<name>", "node name")
    .argument("<key>", "property key, e.g. Aux/zone")
    .argument("[value]", "new value")
    .action(async (name: string, key: string, value: string | undefined, _o, cmd: Command) => {
      await mutate(
        contextOf(cmd),
        "PUT",
        `/v1/nodes/${enc(name)}`,
        value === undefined ? { delete_props: [key] } : { override_props: { [key]: value } },
      );
    });

  registerNodeInterface(node);
}

/** `node interface` (i): the addresses a node is reached on. */
function registerNodeInterface(node: Command): void {
  const nif = node.command("interface").alias("i").description("network interfaces of a node");

  verb(nif, "create", aliases.create)
    .description("add a network interface to a node")
    .argument("<node>", "node name")
    .argument("<name>", "interface name")
    .argument("<ip>", "address")
    .option("--port <port>", "satellite port, for an interface satellites are reached on")
    .option("--communication-type <type>", "satellite connection encryption", "plain")
    .option("--active", "make it the interface the controller reaches the satellite on")
    .action(
      async (
        nodeName: string,
        name: string,
        ip: string,
        opts: { port?: string; communicationType: string; active?: boolean },
        cmd: Command,
      ) => {
        const body: JsonObject = { name, address: ip };
        if (opts.port !== undefined) {
          body["satellite_port"] = parseCount("--port", opts.port);
          body["satellite_encryption_type"] = opts.communicationType;
        }
        if (opts.active === true) body["is_active"] = true;
        await mutate(contextOf(cmd), "POST", `/v1/nodes/${enc(nodeName)}/net-interfaces`, body);
      },
    );

  verb(nif, "list", aliases.list)
    .description("list the network interfaces of a node")
    .argument("<node>", "node name")
    .action(async (nodeName: string, _opts: object, cmd: Command) => {
      const ctx = contextOf(cmd);
      await listCommand(ctx, `/v1/nodes/${enc(nodeName)}/net-interfaces`, (nifs) => [
        ["Node", "NetInterface", "IP", "Port", "EncryptionType"],
        nifs.map((n) => [
          nodeName,
          (n["is_active"] === true ? "+ " : "") + asString(n["name"]),
          asString(n["address"]),
          asString(n["satellite_port"]),
          asString(n["satellite_encryption_type"]),
        ]),
      ]);
    });

  verb(nif, "delete", aliases.delete)
    .description("delete a network interface")
    .argument("<node>", "node name")
    .argument("<name>", "interface name")
    .action(async (nodeName: string, name: string, _opts: object, cmd: Command) => {
      await mutate(
        contextOf(cmd),
        "DELETE",
        `/v1/nodes/${enc(nodeName)}/net-interfaces/${enc(name)}`,
      );
    });
}
