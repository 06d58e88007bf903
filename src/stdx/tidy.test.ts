// mirra's tidy check, after TigerBeetle's: the lint rule that keeps the pure folders
// deterministic must really fire, or the simulator's replays stop being exact.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { ESLint } from "eslint";

const root = fileURLToPath(new URL("../../../", import.meta.url));

async function lint(code: string, filePath: string): Promise<string[]> {
  const eslint = new ESLint({ cwd: root });
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).map((m) => m.ruleId ?? m.message);
}

test("tidy: pure folders may not use Node I/O, timers, clocks or randomness", async () => {
  const bad = [
    'import * as fs from "node:fs";',
    'import { Socket } from "net";',
    "setTimeout(() => undefined, 1);",
    "export const t = Date.now();",
    "export const r = Math.random();",
    "export const d = new Date();",
  ];
  for (const folder of ["src/engine/x.ts", "src/nbd/protocol/x.ts", "src/controller/domain/x.ts"]) {
    for (const line of bad) {
      const rules = await lint(`${line}\nexport {};\n`, `${root}${folder}`);
      assert.ok(
        rules.some((r) => r.startsWith("no-restricted")),
        `${folder}: "${line}" should be refused, got ${rules.join(", ") || "nothing"}`,
      );
    }
  }
});

test("tidy: the I/O shell may use them", async () => {
  const rules = await lint(
    'import * as fs from "node:fs";\nexport const t = Date.now() + fs.constants.O_RDONLY;\n',
    `${root}src/io/x.ts`,
  );
  assert.deepEqual(
    rules.filter((r) => r.startsWith("no-restricted")),
    [],
  );
});
