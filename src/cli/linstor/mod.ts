//! The LINSTOR-style CLI: LINSTOR's nouns and verbs against the controller's REST API. Each
//! noun is a file; this one adds them, and the global options they read, to `mirra`.

import { Option, type Command } from "commander";
import { registerNodeVerbs } from "./node.js";
import { registerStoragePool } from "./storage_pool.js";
import { registerResourceGroup } from "./resource_group.js";
import { registerResourceDefinition, registerVolumeDefinition } from "./resource_definition.js";
import { registerResource, registerVolume } from "./resource.js";
import { registerErrorReports } from "./error_report.js";

export { LinstorCliError } from "./errors.js";

/** Adds the global options and every noun; `node` exists already (it holds `run`). */
export function registerLinstorCommands(program: Command, node: Command): void {
  program
    .addOption(
      new Option(
        "--controllers <urls>",
        "controller URLs, comma-separated (default: $LS_CONTROLLERS, else http://127.0.0.1:3370)",
      ),
    )
    .option("-m, --machine-readable", "print the API's JSON")
    .option("--no-color", "no ANSI colors");
  registerNodeVerbs(node);
  registerStoragePool(program);
  registerResourceGroup(program);
  registerResourceDefinition(program);
  registerVolumeDefinition(program);
  registerResource(program);
  registerVolume(program);
  registerErrorReports(program);
}
