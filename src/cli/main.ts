#!/usr/bin/env node
//! The `mirra` command. Each subcommand lives in its own file; this one only parses the
//! command line and maps errors to exit codes in one place.

import { Command, Option } from "commander";
import { MirraError } from "../stdx/errors.js";
import { serve } from "./serve.js";
import { createMd, dumpMd } from "./md.js";
import { nodeRun } from "./node.js";
import { adm, type AdmOptions } from "./adm.js";
import { adminCommands, type AdminCommandName } from "../daemon/admin_protocol.js";
import { addBenchOptions, type RawBenchOptions } from "../bench/options.js";
import { controllerCommand, type ControllerCommandOptions } from "./controller.js";
import { LinstorCliError, registerLinstorCommands } from "./linstor/mod.js";
import type { SatelliteCommandOptions } from "./satellite.js";
import type { DownOptions, UpOptions } from "./up.js";

// A reader that stops early (`mirra status | head`) is not an error: exit quietly.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code === "EPIPE") process.exit(0);
  throw err;
});

const program = new Command();
program
  .name("mirra")
  .description("Replicated block storage for Linux clusters, served over NBD.")
  .version("0.1.0");

program
  .command("serve")
  .description("export a file (created sparse if missing) or block device over NBD")
  .argument("[file]", "backing file or block device")
  .option("--size <size>", "size for a new file, e.g. 1G (also grows a smaller file)")
  .option("--listen <host:port>", "TCP address (default 127.0.0.1:10809 unless --socket is given)")
  .option("--socket <path>", "Unix socket path")
  .option("--name <export>", "export name (default: the file's base name)")
  .option("--read-only", "refuse writes")
  .addOption(
    new Option(
      "--export <name=path[,ro][,size=SIZE]>",
      "another export on the same server (repeatable)",
    ).argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]),
  )
  .action(serve);

program
  .command("create-md")
  .description("initialise a volume's metadata (internal, or external with --meta)")
  .requiredOption("--backing <path>", "backing file or block device")
  .option("--meta <path>", "external metadata file or device (default: internal)")
  .requiredOption("--node-id <n>", "this node's id, 0..31")
  .requiredOption("--peers <n>", "peer bitmap slots, 1..32")
  .option("--al-extents <n>", "activity-log extents of 4 MiB (default 1237)")
  .option("--size <size>", "size of a new backing file, e.g. 1G")
  .option("--force", "overwrite existing valid metadata")
  .action((options: Parameters<typeof createMd>[0]) => createMd(options));

program
  .command("dump-md")
  .description("print a volume's metadata readably")
  .requiredOption("--backing <path>", "backing file or block device")
  .option("--meta <path>", "external metadata file or device (default: internal)")
  .option("--json", "machine-readable output")
  .action((options: Parameters<typeof dumpMd>[0]) => dumpMd(options));

program
  .command("controller")
  .description("run the controller: LINSTOR's REST API over the desired-state store")
  .option("--data <dir>", "data directory, holds controller.db (default /var/lib/mirra/controller)")
  .option("--port <port>", "REST port (default 3370)")
  .option("--listen <host>", "address to listen on (default 127.0.0.1)")
  .action((options: ControllerCommandOptions) => controllerCommand(options));

program
  .command("satellite")
  .description("run the node agent: applies the controller's desired state to this node")
  .option("--listen <[host:]port>", "address for the controller (default 127.0.0.1:3366)")
  .option("--data <dir>", "state directory (default /var/lib/mirra/satellite)")
  .option("--node <name>", "this node's name in the controller (default: the host name)")
  .option("--controller <host:port>", "register this node with that controller at start")
  .option(
    "--metrics <[host:]port|off>",
    "serve Prometheus metrics of its daemons here (default: listen host, port 9942)",
  )
  .action(async (options: SatelliteCommandOptions) => {
    const { satelliteCommand } = await import("./satellite.js");
    await satelliteCommand(options);
  });

program
  .command("up")
  .description("start a local cluster: controller, 3 satellites, a replicated volume over NBD")
  .option(
    "--data <dir>",
    "data directory (default /var/lib/mirra as root, else ~/.local/state/mirra)",
  )
  .option("--size <size>", "size of the volume (default 1G)")
  .option("--detach", "leave the cluster running in the background (stop: mirra down)")
  .option(
    "--addresses <ip,ip,ip>",
    "one loopback address per node (default 127.0.0.1,127.0.0.2,127.0.0.3)",
  )
  .option("--port <port>", "controller REST port (default 3370)")
  .option("--satellite-port <port>", "satellites' port (default 3366)")
  .option("--metrics-port <port>", "satellites' Prometheus metrics port (default 9942)")
  .option("--nbd-port <port>", "NBD port of the first volume (default 10809)")
  .option("--resource <name>", "name of the volume's resource (default r0)")
  .option("--timeout <seconds>", "how long to wait for the volume (default 120)")
  .action(async (options: UpOptions) => {
    const { up } = await import("./up.js");
    await up(options);
  });

program
  .command("down")
  .description("stop the local cluster that `mirra up --detach` started")
  .option("--data <dir>", "data directory of `mirra up`")
  .action(async (options: DownOptions) => {
    const { down } = await import("./up.js");
    await down(options);
  });

const node = program
  .command("node")
  .description("nodes of the cluster (LINSTOR's verbs), and `run`: the node daemon");
node
  .command("run")
  .description("run the resources of one or more resource files (docs/resource-file.md)")
  .addOption(
    new Option("--config <file>", "resource file (repeatable)")
      .argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value])
      .makeOptionMandatory(),
  )
  .option("--node-id <n>", "this node's id (default: the node named after this host)")
  .option("--admin-socket <path>", "admin socket (default /run/mirra/mirra.sock)")
  .option(
    "--metrics <[host:]port>",
    "serve Prometheus metrics with drbd-reactor's names (its port is 9942; default: off)",
  )
  .action((options: Parameters<typeof nodeRun>[0]) => nodeRun(options));

const admCommand = program
  .command("adm")
  .description("administer resources of the running node daemon (like drbdadm)");
const admHelp: Record<AdminCommandName, string> = {
  up: "attach the resource's volumes and start replicating",
  down: "stop exports, demote, detach and disconnect",
  primary: "promote (--force: without UpToDate data or quorum)",
  secondary: "demote",
  connect: "connect to all peers or one (--peer), optionally --discard-my-data",
  disconnect: "go StandAlone towards all peers or one (--peer)",
  verify: "online verify against all connected peers or one (--peer)",
  invalidate: "discard local data: full resync from a peer",
  resize: "grow the volume online after its backing devices grew (--size, --assume-clean)",
  status: "show roles, disk, connection and replication states (--json)",
};
for (const name of adminCommands) {
  const sub = admCommand
    .command(name)
    .description(admHelp[name])
    .argument(name === "status" ? "[resource]" : "<resource>", "resource name")
    .option("--socket <path>", "admin socket of the daemon (default /run/mirra/mirra.sock)")
    .option("--timeout <seconds>", "how long to wait for the answer (default 60)");
  if (name === "status")
    sub.option("--json", "machine-readable output").option("--no-color", "no colored states");
  if (name === "primary") sub.option("--force", "promote without UpToDate data or quorum");
  if (name === "connect" || name === "disconnect" || name === "verify")
    sub.option("--peer <node>", "one peer, by node name or node id");
  if (name === "connect") sub.option("--discard-my-data", "resolve a split brain as its victim");
  if (name === "resize")
    sub
      .option("--size <size>", "new size (e.g. 2G); file-backed disks are extended to hold it")
      .option("--assume-clean", "the new area is identical on every node: do not resync it");
  sub.action((resource: string | undefined, options: AdmOptions) => adm(name, resource, options));
}

addBenchOptions(
  program
    .command("bench")
    .description(
      "measure mirra against raw, nbdkit, QEMU quorum and Ceph with fio (docs BENCH.md method)",
    ),
).action(async (options: RawBenchOptions) => {
  // Loaded on demand: the bench pulls in fio runners and the chart rasteriser.
  const { runBenchCommand } = await import("../bench/command.js");
  process.exitCode = await runBenchCommand(options);
});

program
  .command("status")
  .description("roles, disk, connection and replication states, like drbdadm status")
  .argument("[resource]", "one resource (default: all)")
  .option("--socket <path>", "admin socket of the daemon (default /run/mirra/mirra.sock)")
  .option("--json", "machine-readable output")
  .option("--no-color", "no colored states")
  .option("--watch", "refresh every second, with a progress bar (rate, ETA) for each resync")
  .option("--data <dir>", "without --socket: the `mirra up` data directory whose daemons to ask")
  .action(async (resource: string | undefined, options: AdmOptions & { data?: string }) => {
    if (!options.watch) {
      const { statusLocal } = await import("./status_local.js");
      return statusLocal(resource, options);
    }
    const { watchStatus } = await import("./status_watch.js");
    await watchStatus(resource, options);
  });

program
  .command("events")
  .description("state changes as they happen, like drbdsetup events2 (--json: raw lines)")
  .option("--socket <path>", "admin socket of the daemon (default /run/mirra/mirra.sock)")
  .option("--json", "the daemon's JSON lines")
  .option("--data <dir>", "without --socket: the `mirra up` data directory whose daemons to follow")
  .action(async (options: AdmOptions & { data?: string }) => {
    const { events } = await import("./events.js");
    await events(options);
  });

registerLinstorCommands(program, node);

/**
 * Exit codes: 1 for operating errors an operator can fix, 2 for usage errors, 70 for bugs;
 * the LINSTOR-style commands use python-linstor's codes (10 API error, 20 no controller...).
 */
function exitCodeFor(err: unknown): number {
  if (err instanceof LinstorCliError) return err.exitCode;
  if (err instanceof MirraError) return err.code === "MIRRA_E_CONFIG" ? 2 : 1;
  return 70;
}

program.parseAsync(process.argv).catch((err: unknown) => {
  // The controller's messages were printed by the command already.
  if (err instanceof LinstorCliError && err.reported) process.exit(err.exitCode);
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`mirra: ${message}\n`);
  if (
    !(err instanceof MirraError || err instanceof LinstorCliError) &&
    err instanceof Error &&
    err.stack
  )
    process.stderr.write(err.stack + "\n");
  process.exit(exitCodeFor(err));
});
