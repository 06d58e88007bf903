import { test } from "node:test";
import assert from "node:assert/strict";

import { cpuIdleFacts } from "./machine.js";

test("bench machine facts: the cpuidle driver, and haltpoll's poll time", () => {
  const files = (m: Record<string, string>) => (path: string) => m[path];
  const driver = "/sys/devices/system/cpu/cpuidle/current_driver";
  const poll = "/sys/module/haltpoll/parameters/guest_halt_poll_ns";
  assert.equal(cpuIdleFacts(files({})), "unknown");
  assert.equal(cpuIdleFacts(files({ [driver]: "intel_idle" })), "intel_idle");
  assert.equal(cpuIdleFacts(files({ [driver]: "haltpoll" })), "haltpoll");
  assert.equal(
    cpuIdleFacts(files({ [driver]: "haltpoll", [poll]: "200000" })),
    "haltpoll, guest_halt_poll_ns 200000",
  );
  assert.match(cpuIdleFacts(files({ [driver]: "haltpoll", [poll]: "0" })), /halts at once/);
});
