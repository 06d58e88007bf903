// Lint rules. The "pure folders" rule is mirra's tidy check: the replication engine, the NBD
// protocol codecs, the satellite's reconcile step and the controller's domain logic must stay
// deterministic, so they may not reach for Node's I/O modules, timers, clocks or randomness.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

const pureFolders = [
  "src/engine/**/*.ts",
  "src/nbd/protocol/**/*.ts",
  "src/satellite/reconcile*.ts",
  "src/controller/domain/**/*.ts",
  "src/controller/placement.ts",
  "src/metrics/drbd_reactor.ts",
];

const why = "pure folders are deterministic: inject it from src/io instead";

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "native/build/**", "docs/bench/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { console: "readonly", process: "readonly" } },
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_" },
      ],
    },
  },
  {
    files: pureFolders,
    ignores: ["**/*.test.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            { group: ["node:*"], message: why },
            {
              regex:
                "^(fs|net|tls|dgram|child_process|timers|worker_threads|os|crypto|http|https|dns|cluster|perf_hooks)(/.*)?$",
              message: why,
            },
          ],
        },
      ],
      "no-restricted-globals": [
        "error",
        ...[
          "setTimeout",
          "setInterval",
          "setImmediate",
          "clearTimeout",
          "clearInterval",
          "clearImmediate",
          "performance",
          "queueMicrotask",
          "process",
          "Date",
        ].map((name) => ({ name, message: why })),
      ],
      "no-restricted-properties": [
        "error",
        { object: "Math", property: "random", message: why },
        { object: "Date", property: "now", message: why },
      ],
    },
  },
);
