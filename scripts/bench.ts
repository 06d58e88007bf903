//! `npm run bench`: the same command as `mirra bench` (src/bench/command.ts), for a checkout
//! without the `mirra` executable on PATH. Options and exit statuses are documented there.

import { Command } from "commander";

import { addBenchOptions, type RawBenchOptions } from "../src/bench/options.js";
import { runBenchCommand } from "../src/bench/command.js";

const program = addBenchOptions(
  new Command("bench").description(
    "fio over NBD: mirra, its replicated configurations and peers, side by side in one run",
  ),
).showHelpAfterError();
program.parse(process.argv);
process.exitCode = await runBenchCommand(program.opts<RawBenchOptions>());
