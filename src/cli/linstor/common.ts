//! What every noun shares: the global options, the context built from them, and commander's
//! glue (aliases and the action wrapper that finds the context).

import type { Command } from "commander";
import { ConfigError } from "../../stdx/errors.js";
import { controllersDefault, parseControllers, RestClient } from "./client.js";
import type { CliContext } from "./output.js";

/** Options on the `mirra` program that every LINSTOR-style command reads. */
export interface GlobalOptions {
  controllers?: string;
  machineReadable?: boolean;
  color?: boolean;
}

export function contextOf(command: Command): CliContext {
  const g = command.optsWithGlobals<GlobalOptions>();
  const urls = parseControllers(
    g.controllers ?? process.env["LS_CONTROLLERS"] ?? controllersDefault,
  );
  // FORCE_COLOR, the convention of chalk and Node itself, colors output that is not a terminal.
  const force = process.env["FORCE_COLOR"];
  // NO_COLOR (no-color.org): set and not empty turns colors off.
  const noColor = (process.env["NO_COLOR"] ?? "") !== "";
  const forced = force !== undefined && force !== "0" && force !== "false";
  return {
    client: new RestClient(urls),
    machine: g.machineReadable === true,
    color: g.color !== false && !noColor && (process.stdout.isTTY || forced),
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
  };
}

/** Adds a verb with LINSTOR's aliases (`create` is also `c`, `list` also `l` and `ls`...). */
export function verb(parent: Command, name: string, aliases: readonly string[] = []): Command {
  return parent.command(name).aliases([...aliases]);
}

export const aliases = {
  create: ["c"],
  list: ["l", "ls"],
  delete: ["d"],
  modify: ["m"],
  setProperty: ["sp"],
} as const;

/** A whole number option such as `--place-count 2`; refused before any request is sent. */
export function parseCount(option: string, text: string, min = 0): number {
  if (!/^\d+$/.test(text) || Number(text) < min)
    throw new ConfigError(`bad ${option} "${text}": use a whole number of at least ${min}`);
  return Number(text);
}

/** Commander collects a repeatable option into a list with this. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}
