//! Test support: a controller on an ephemeral loopback port over a temporary data directory,
//! and a small HTTP client that keeps ret codes exact (read from the raw text as BigInt).

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../io/log.js";
import { startController, type ControllerOptions, type RunningController } from "./server.js";

export interface Answer {
  status: number;
  text: string;
  /** The body parsed with JSON.parse; fine for everything but ret codes. */
  body: unknown;
  /** Every `ret_code` in the body, in order, exactly. */
  retCodes: bigint[];
  contentType: string | null;
}

export interface TestController {
  dataDir: string;
  running: RunningController;
  call(method: string, path: string, body?: unknown): Promise<Answer>;
  /** Stops the controller and starts a new one on the same data directory. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

/** A fixed clock: 2026-12-04T12:00:00.000Z, so timestamps in answers are predictable. */
export const testNowMs = Date.UTC(2026, 11, 4, 12, 0, 0);

const quiet = createLogger({ write: () => undefined });

/** `options` adds to or overrides the defaults (a store, observed state, a hostname...). */
export async function startTestController(
  options: Partial<ControllerOptions> = {},
): Promise<TestController> {
  const dataDir = mkdtempSync(join(tmpdir(), "mirra-ctrl-"));
  const start = () =>
    startController({
      dataDir,
      port: 0,
      host: "127.0.0.1",
      nowMs: () => testNowMs,
      logger: quiet,
      ...options,
    });
  let running = await start();
  return {
    dataDir,
    get running() {
      return running;
    },
    async call(method, path, body) {
      const init: RequestInit = { method };
      if (body !== undefined) {
        init.body = typeof body === "string" ? body : JSON.stringify(body);
        init.headers = { "content-type": "application/json" };
      }
      const res = await fetch(running.url + path, init);
      const text = await res.text();
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      const retCodes = [...text.matchAll(/"ret_code":(-?\d+)/g)].map((m) => BigInt(m[1]!));
      return {
        status: res.status,
        text,
        body: parsed,
        retCodes,
        contentType: res.headers.get("content-type"),
      };
    },
    async restart() {
      await running.close();
      running = await start();
    },
    async close() {
      await running.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Narrows an answer body for property access in assertions. */
export function obj(v: unknown): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v))
    throw new Error(`not an object: ${JSON.stringify(v)}`);
  return v as Record<string, unknown>;
}

export function arr(v: unknown): unknown[] {
  if (!Array.isArray(v)) throw new Error(`not an array: ${JSON.stringify(v)}`);
  return v;
}

/** ret_code = mask | op | object | code, computed independently of api_call_rc.ts. */
export function rc(
  severity: "error" | "warn" | "ok",
  object: number,
  op: number,
  code: number,
): bigint {
  const sev =
    severity === "error" ? 0xc000000000000000n : severity === "warn" ? 0x8000000000000000n : 0n;
  return BigInt.asIntN(64, sev | BigInt(op) | BigInt(object) | BigInt(code));
}

export const OBJ = {
  node: 0x3c0000,
  rd: 0x380000,
  rsc: 0x340000,
  vd: 0x300000,
  vlm: 0x2c0000,
  netIf: 0x1c0000,
  sp: 0x140000,
  ctrl: 0x100000,
  rg: 0x440000,
  vg: 0x480000,
  kvs: 0x400000,
  none: 0,
} as const;
export const OP = { none: 0, crt: 0x1000000, mod: 0x2000000, del: 0x3000000 } as const;
export const PARSE_ERROR = -3458764513820540931n;
