//! Unit tests of the packet simulator (packet_simulator.ts): FIFO per connection, resets,
//! stale generations, partitions, crashes, and determinism under one seed.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Prng } from "../stdx/prng.js";
import {
  PacketSimulator,
  packetSimulatorOptionsQuiet,
  type PacketSimulatorHost,
  type PacketSimulatorOptions,
} from "./packet_simulator.js";

interface Event {
  tick: number;
  kind: "deliver" | "up" | "down";
  node: number;
  peer: number;
  generation: number;
  message?: number;
}

function make(
  options: PacketSimulatorOptions,
  seed = 1,
): { sim: PacketSimulator<number>; events: Event[] } {
  const events: Event[] = [];
  const holder: { sim: PacketSimulator<number> | null } = { sim: null };
  const now = (): number => holder.sim!.tickNow;
  const host: PacketSimulatorHost<number> = {
    deliver: (node, peer, message, generation) =>
      events.push({ tick: now(), kind: "deliver", node, peer, generation, message }),
    connectionUp: (node, peer, generation) =>
      events.push({ tick: now(), kind: "up", node, peer, generation }),
    connectionDown: (node, peer, generation) =>
      events.push({ tick: now(), kind: "down", node, peer, generation }),
    connectAllowed: () => true,
  };
  holder.sim = new PacketSimulator<number>(options, new Prng(seed), host);
  return { sim: holder.sim, events };
}

function runUntilConnected(sim: PacketSimulator<number>, a: number, b: number): void {
  for (let i = 0; i < 100 && !sim.isConnected(a, b); i++) sim.tick();
  assert.ok(sim.isConnected(a, b));
}

test("packet sim: connections come up and deliver in order, with delays", () => {
  const o = { ...packetSimulatorOptionsQuiet(3), oneWayDelayTicksMean: 10 };
  const { sim, events } = make(o);
  runUntilConnected(sim, 0, 1);
  const ups = events.filter((e) => e.kind === "up");
  assert.equal(ups.length, 6, "3 connections, each end hears of it");
  for (let i = 0; i < 200; i++) assert.ok(sim.send(0, 1, i));
  for (let i = 0; i < 2000; i++) sim.tick();
  const delivered = events.filter((e) => e.kind === "deliver").map((e) => e.message);
  assert.deepEqual(
    delivered,
    Array.from({ length: 200 }, (_, i) => i),
  );
  assert.ok(events.filter((e) => e.kind === "deliver").every((e) => e.node === 1 && e.peer === 0));
});

test("packet sim: FIFO per connection for any seed and delay (property)", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 1 << 30 }),
      fc.integer({ min: 0, max: 50 }),
      (seed, mean) => {
        const { sim, events } = make(
          { ...packetSimulatorOptionsQuiet(2), oneWayDelayTicksMean: mean },
          seed,
        );
        runUntilConnected(sim, 0, 1);
        for (let i = 0; i < 50; i++) {
          sim.send(0, 1, i);
          sim.send(1, 0, 1000 + i);
          sim.tick();
        }
        for (let i = 0; i < 2000; i++) sim.tick();
        const to1 = events
          .filter((e) => e.kind === "deliver" && e.node === 1)
          .map((e) => e.message);
        const to0 = events
          .filter((e) => e.kind === "deliver" && e.node === 0)
          .map((e) => e.message);
        assert.deepEqual(
          to1,
          Array.from({ length: 50 }, (_, i) => i),
        );
        assert.deepEqual(
          to0,
          Array.from({ length: 50 }, (_, i) => 1000 + i),
        );
      },
    ),
    { numRuns: 50 },
  );
});

test("packet sim: reset loses in-flight messages, both ends see down, then a new generation", () => {
  const { sim, events } = make({ ...packetSimulatorOptionsQuiet(2), oneWayDelayTicksMin: 5 });
  runUntilConnected(sim, 0, 1);
  const gen = sim.generation(0, 1);
  sim.send(0, 1, 7);
  sim.disconnect(0, 1);
  const downs = events.filter((e) => e.kind === "down");
  assert.equal(downs.length, 2);
  assert.ok(!sim.send(0, 1, 8), "no connection: dropped");
  for (let i = 0; i < 100; i++) sim.tick();
  assert.ok(sim.isConnected(0, 1));
  assert.equal(sim.generation(0, 1), gen + 1);
  assert.equal(
    events.filter((e) => e.kind === "deliver").length,
    0,
    "the in-flight message was lost",
  );
  assert.equal(sim.stats.lostInFlight, 1);
});

test("packet sim: stale messages of an old generation arrive after reconnect, tagged", () => {
  const o = {
    ...packetSimulatorOptionsQuiet(2),
    oneWayDelayTicksMin: 5,
    staleDeliveryProbability: 1,
  };
  const { sim, events } = make(o);
  runUntilConnected(sim, 0, 1);
  const gen = sim.generation(0, 1);
  sim.send(0, 1, 42);
  sim.disconnect(0, 1);
  for (let i = 0; i < 100; i++) sim.tick();
  const d = events.filter((e) => e.kind === "deliver");
  assert.equal(d.length, 1);
  assert.equal(d[0]!.message, 42);
  assert.equal(d[0]!.generation, gen, "carries its old generation");
  assert.ok(sim.generation(0, 1) > gen);
});

test("packet sim: symmetric partition holds messages, then resets after the timeout", () => {
  const o = { ...packetSimulatorOptionsQuiet(3), connectionTimeoutTicks: 20 };
  const { sim, events } = make(o);
  runUntilConnected(sim, 0, 1);
  runUntilConnected(sim, 0, 2);
  sim.partition([0], [1, 2]);
  sim.send(0, 1, 1);
  for (let i = 0; i < 10; i++) sim.tick();
  assert.ok(sim.isConnected(0, 1), "held, not yet timed out");
  sim.heal();
  for (let i = 0; i < 10; i++) sim.tick();
  assert.equal(
    events.filter((e) => e.kind === "deliver").length,
    1,
    "delivered after a short partition",
  );
  sim.partition([0], [1, 2]);
  for (let i = 0; i < 200; i++) sim.tick();
  assert.ok(!sim.isConnected(0, 1) && !sim.isConnected(0, 2));
  assert.ok(sim.isConnected(1, 2), "the majority side stays connected");
  sim.heal();
  for (let i = 0; i < 200; i++) sim.tick();
  assert.ok(sim.isConnected(0, 1) && sim.isConnected(0, 2));
});

test("packet sim: asymmetric partition blocks one way and prevents reconnect", () => {
  const o = { ...packetSimulatorOptionsQuiet(2), connectionTimeoutTicks: 10 };
  const { sim, events } = make(o);
  runUntilConnected(sim, 0, 1);
  sim.partition([0], [1], "asymmetric");
  assert.ok(sim.isBlocked(0, 1) && !sim.isBlocked(1, 0));
  sim.send(1, 0, 5);
  for (let i = 0; i < 5; i++) sim.tick();
  assert.equal(events.filter((e) => e.kind === "deliver").length, 1, "the open direction delivers");
  for (let i = 0; i < 200; i++) sim.tick();
  assert.ok(!sim.isConnected(0, 1), "reset by the blocked direction; no handshake possible");
});

test("packet sim: a crashed node's sent messages still arrive, then the survivor sees down", () => {
  const o = { ...packetSimulatorOptionsQuiet(2), oneWayDelayTicksMin: 5 };
  const { sim, events } = make(o);
  runUntilConnected(sim, 0, 1);
  sim.send(0, 1, 1);
  sim.send(1, 0, 2);
  sim.crashNode(0);
  for (let i = 0; i < 50; i++) sim.tick();
  const after = events.filter((e) => e.kind !== "up");
  assert.deepEqual(
    after.map((e) => [e.kind, e.node, e.message ?? null]),
    [
      ["deliver", 1, 1],
      ["down", 1, null],
    ],
  );
  assert.ok(!sim.isConnected(0, 1));
  sim.restartNode(0);
  for (let i = 0; i < 50; i++) sim.tick();
  assert.ok(sim.isConnected(0, 1));
});

test("packet sim: same seed, same history (determinism under random faults)", () => {
  const o: PacketSimulatorOptions = {
    ...packetSimulatorOptionsQuiet(4),
    oneWayDelayTicksMean: 3,
    connectionResetProbability: 0.01,
    partitionMode: "uniformSize",
    partitionSymmetry: "asymmetric",
    partitionProbability: 0.02,
    unpartitionProbability: 0.05,
    pathClogProbability: 0.01,
    pathClogDurationTicksMean: 10,
    staleDeliveryProbability: 0.2,
    replayProbability: 0.05,
  };
  const run = (): string => {
    const { sim, events } = make(o, 99);
    for (let i = 0; i < 3000; i++) {
      if (i % 3 === 0) sim.send(i % 4, (i + 1) % 4, i);
      sim.tick();
    }
    return JSON.stringify(events);
  };
  assert.equal(run(), run());
});
