#!/usr/bin/env node
// The `mirra` executable. A CommonJS shim so that it runs before Node's ES module loader has
// started libuv's thread pool: the pool's size is read once, at its start, and file IO with many
// requests in flight needs more than the default four workers.
"use strict";
if (!process.env.UV_THREADPOOL_SIZE) process.env.UV_THREADPOOL_SIZE = "16";
import("../dist/src/cli/main.js").catch((err) => {
  process.stderr.write(`mirra: cannot start: ${err && err.message}\n(run npm run build first)\n`);
  process.exit(70);
});
