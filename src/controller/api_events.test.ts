import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { request, type IncomingMessage, type ClientRequest } from "node:http";
import { EventBus, publishingStore } from "./events.js";
import { nothingObserved, type ObservedState } from "./observed_state.js";
import { openSqliteStore } from "./store/sqlite_store.js";
import type { ControllerStore } from "./store/store.js";
import { arr, obj, startTestController, type TestController } from "./test_client.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

interface Frame {
  event: string | undefined;
  data: unknown;
  comment: boolean;
}

/** An SSE client over a real HTTP connection: frames in arrival order. */
interface Sse {
  response: IncomingMessage;
  next(): Promise<Frame>;
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  close(): void;
}

function openSse(url: string, headers: Record<string, string> = {}): Promise<Sse> {
  return new Promise((resolve, reject) => {
    const req: ClientRequest = request(url, { headers }, (response) => {
      response.setEncoding("utf8");
      let buffer = "";
      const frames: Frame[] = [];
      const waiters: ((f: Frame) => void)[] = [];
      let endedResolve!: () => void;
      const ended = new Promise<void>((r) => (endedResolve = r));
      response.on("data", (chunk: string) => {
        buffer += chunk;
        let cut: number;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const lines = block.split("\n");
          const event = lines.find((l) => l.startsWith("event: "))?.slice(7);
          const data = lines.find((l) => l.startsWith("data: "))?.slice(6);
          const frame: Frame = {
            event,
            data: data === undefined ? undefined : JSON.parse(data),
            comment: lines.every((l) => l.startsWith(":")),
          };
          const w = waiters.shift();
          if (w) w(frame);
          else frames.push(frame);
        }
      });
      response.on("end", () => endedResolve());
      response.on("close", () => endedResolve());
      resolve({
        response,
        ended,
        next: () => {
          const f = frames.shift();
          if (f) return Promise.resolve(f);
          return new Promise((r) => waiters.push(r));
        },
        close: () => req.destroy(),
      });
    });
    req.on("error", reject);
    req.end();
  });
}

async function waitFor(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), "condition not reached in 2 s");
}

/** The next frame that is not a keep-alive comment. */
async function nextEvent(s: Sse): Promise<Frame> {
  for (;;) {
    const f = await s.next();
    if (!f.comment) return f;
  }
}

let t: TestController;
before(async () => {
  t = await startTestController({ eventKeepAliveMs: 50 });
});
after(() => t.close());

test("events/nodes: create, modify and delete arrive as frames after each commit", async () => {
  const s = await openSse(`${t.running.url}/v1/events/nodes`);
  try {
    assert.equal(s.response.statusCode, 200);
    assert.equal(s.response.headers["content-type"], "text/event-stream");
    await t.call("POST", "/v1/nodes", {
      name: "ev1",
      type: "satellite",
      net_interfaces: [{ name: "default", address: "10.0.0.1" }],
    });
    const created = await nextEvent(s);
    assert.equal(created.event, "node-create");
    assert.equal(obj(obj(created.data)["node"])["name"], "ev1");
    assert.equal(obj(obj(created.data)["node"])["type"], "SATELLITE");

    await t.call("PUT", "/v1/nodes/ev1", { override_props: { "Aux/rack": "r1" } });
    const modified = obj((await nextEvent(s)).data);
    assert.deepEqual(obj(obj(modified["old_node"])["props"])["Aux/rack"], undefined);
    assert.equal(obj(obj(modified["new_node"])["props"])["Aux/rack"], "r1");

    // A request that fails publishes nothing: the next frame is the delete.
    assert.equal(
      (await t.call("POST", "/v1/nodes", { name: "ev1", type: "satellite" })).status,
      500,
    );
    await t.call("DELETE", "/v1/nodes/ev1");
    const deleted = await nextEvent(s);
    assert.equal(deleted.event, "node-delete");
    assert.equal(obj(obj(deleted.data)["node"])["name"], "ev1");
  } finally {
    s.close();
  }
});

test("events: keep-alive comments flow, and a disconnected client is unsubscribed", async () => {
  const bus = t.running.events;
  await waitFor(() => bus.listenerCount === 0); // streams of earlier tests are gone
  const s = await openSse(`${t.running.url}/v1/events/nodes`);
  const f = await s.next();
  assert.equal(f.comment, true, "a keep-alive comment within the interval");
  assert.equal(bus.listenerCount, 1);
  s.close();
  await waitFor(() => bus.listenerCount === 0);
});

test("events/drbd/promotion: nothing known, nothing sent; published changes arrive", async () => {
  await t.call("POST", "/v1/nodes", { name: "pn1", type: "satellite" });
  await t.call("POST", "/v1/resource-definitions", { resource_definition: { name: "pr" } });
  await t.call("POST", "/v1/resource-definitions/pr/resources", [
    { resource: { node_name: "pn1", flags: ["DRBD_DISKLESS"] } },
  ]);
  const s = await openSse(`${t.running.url}/v1/events/drbd/promotion`, {
    "Last-Event-ID": "current",
  });
  try {
    t.running.events.publish({
      kind: "may-promote-change",
      resource: "pr",
      node: "pn1",
      mayPromote: true,
    });
    // The replay sent nothing (no satellite reported may_promote): the first event is this one.
    const f = await nextEvent(s);
    assert.equal(f.event, "may-promote-change");
    assert.deepEqual(f.data, { resource_name: "pr", node_name: "pn1", may_promote: true });
  } finally {
    s.close();
  }
});

test("events/drbd/promotion: Last-Event-ID current replays what is known", async () => {
  const observed: ObservedState = {
    ...nothingObserved,
    mayPromote: (rsc, node) => (rsc === "r1" && node === "n1" ? false : undefined),
  };
  const c = await startTestController({ observed });
  try {
    await c.call("POST", "/v1/nodes", { name: "n1", type: "satellite" });
    await c.call("POST", "/v1/nodes", { name: "n2", type: "satellite" });
    await c.call("POST", "/v1/resource-definitions", { resource_definition: { name: "r1" } });
    await c.call("POST", "/v1/resource-definitions/r1/resources", [
      { resource: { node_name: "n1", flags: ["DRBD_DISKLESS"] } },
      { resource: { node_name: "n2", flags: ["DRBD_DISKLESS"] } },
    ]);
    const s = await openSse(`${c.running.url}/v1/events/drbd/promotion`, {
      "last-event-id": "current",
    });
    const f = await nextEvent(s);
    assert.deepEqual(f.data, { resource_name: "r1", node_name: "n1", may_promote: false });
    s.close();
    // Without the header, no replay.
    const quiet = await openSse(`${c.running.url}/v1/events/drbd/promotion`);
    c.running.events.publish({
      kind: "node-delete",
      node: { name: "x", type: "SATELLITE", flags: [], props: {}, netInterfaces: [], uuid: "u" },
    });
    c.running.events.publish({
      kind: "may-promote-change",
      resource: "r1",
      node: "n2",
      mayPromote: true,
    });
    assert.equal(obj((await nextEvent(quiet)).data)["node_name"], "n2");
    quiet.close();
  } finally {
    await c.close();
  }
});

test("events: a stream that cannot be set up gets one error frame and is closed", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "mirra-ctrl-sse-"));
  const real = openSqliteStore({ dataDir });
  // Reading resources fails (a bug, not a database error); writing error reports works.
  const broken: ControllerStore = {
    read: (fn) =>
      real.read((tx) =>
        fn(
          new Proxy(tx, {
            get(target, prop) {
              if (prop === "resources")
                return () => {
                  throw new TypeError("resources exploded");
                };
              const v: unknown = Reflect.get(target, prop);
              return typeof v === "function" ? (v as () => unknown).bind(target) : v;
            },
          }),
        ),
      ),
    write: (fn) => real.write(fn),
    close: () => real.close(),
  };
  const c = await startTestController({ store: broken, hostname: "ctl-host" });
  try {
    const s = await openSse(`${c.running.url}/v1/events/drbd/promotion`, {
      "Last-Event-ID": "current",
    });
    const f = await s.next();
    assert.equal(f.event, "error");
    const rcs = arr(f.data).map(obj);
    assert.equal(rcs.length, 1);
    assert.equal(rcs[0]!["cause"], "resources exploded");
    const ids = arr(rcs[0]!["error_report_ids"]);
    assert.equal(ids.length, 1);
    await s.ended;
    const report = arr((await c.call("GET", `/v1/error-reports/${String(ids[0])}`)).body);
    assert.equal(obj(report[0])["exception"], "TypeError");
  } finally {
    await c.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test("events: closing the controller ends open streams", async () => {
  const c = await startTestController();
  const s = await openSse(`${c.running.url}/v1/events/nodes`);
  await c.close();
  await s.ended;
});

test("publishingStore: a transaction's changes publish once, after commit; a failed one none", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "mirra-ctrl-bus-"));
  const bus = new EventBus((err) => {
    throw err;
  });
  const store = publishingStore(openSqliteStore({ dataDir }), bus);
  const seen: string[] = [];
  const off = bus.subscribe((e) => seen.push(e.kind));
  const node = {
    name: "b1",
    type: "SATELLITE" as const,
    flags: [],
    props: {},
    netInterfaces: [],
    uuid: "u1",
  };
  try {
    await store.write((tx) => {
      tx.putNode(node);
      tx.putNode({ ...node, props: { a: "1" } });
      assert.deepEqual(seen, [], "nothing before commit");
    });
    assert.deepEqual(seen, ["node-create"]);
    await assert.rejects(
      store.write((tx) => {
        tx.deleteNode("b1");
        throw new Error("abort");
      }),
    );
    assert.deepEqual(seen, ["node-create"]);
    await store.write((tx) => tx.putNode({ ...node, props: { a: "2" } }));
    await store.write((tx) => tx.deleteNode("B1"));
    assert.deepEqual(seen, ["node-create", "node-modified", "node-delete"]);
    off();
    assert.equal(bus.listenerCount, 0);
  } finally {
    store.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
