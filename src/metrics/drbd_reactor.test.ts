import assert from "node:assert/strict";
import { describe, test } from "node:test";

import type { ResourceStatus } from "../daemon/admin_protocol.js";
import {
  drbdConnectionStates,
  drbdDiskStates,
  drbdReactorMetrics,
  drbdRoles,
  escapeLabelValue,
} from "./drbd_reactor.js";

/** Node alpha, Primary, with one peer Connected and in sync and one still Connecting. */
function snapshot(): ResourceStatus[] {
  return [
    {
      resource: "r0",
      nodeId: 0,
      nodeName: "alpha",
      up: true,
      role: "Primary",
      volumes: [
        {
          volume: 0,
          sizeBytes: 1073741824,
          disk: "UpToDate",
          quorum: true,
          suspended: false,
          writesInFlight: 3,
          nbd: "nbd://127.0.0.1:10809/r0",
        },
      ],
      connections: [
        {
          nodeId: 1,
          name: "beta",
          connection: "Connected",
          role: "Secondary",
          volumes: [
            { volume: 0, replication: "Established", peerDisk: "UpToDate", outOfSyncKiB: 0 },
          ],
        },
        {
          nodeId: 2,
          name: "gamma",
          connection: "Connecting",
          role: "Unknown",
          volumes: [{ volume: 0, replication: "Off", peerDisk: "DUnknown", outOfSyncKiB: 8 }],
        },
      ],
    },
    {
      resource: "r1",
      nodeId: 0,
      nodeName: "alpha",
      up: false,
      role: "Unknown",
      volumes: [],
      connections: [],
    },
  ];
}

function oneHotLines(metric: string, values: readonly string[], labels: string, on: string) {
  return values.map((v) => `${metric}{${labels},${metric}="${v}"} ${v === on ? 1 : 0}`);
}

const golden = [
  "# TYPE drbdreactor_up gauge",
  "# HELP drbdreactor_up Boolean indicating whether or not drbdreactor is running. Always 1",
  "drbdreactor_up 1",
  "# TYPE drbd_resource_resources gauge",
  "# HELP drbd_resource_resources Number of resources",
  "drbd_resource_resources 1",
  "# TYPE drbd_resource_role gauge",
  "# HELP drbd_resource_role DRBD role of the resource",
  'drbd_resource_role{name="r0",drbd_resource_role="Unknown"} 0',
  'drbd_resource_role{name="r0",drbd_resource_role="Primary"} 1',
  'drbd_resource_role{name="r0",drbd_resource_role="Secondary"} 0',
  "# TYPE drbd_resource_suspended gauge",
  "# HELP drbd_resource_suspended Boolean whether the resource is suspended",
  'drbd_resource_suspended{name="r0"} 0',
  "# TYPE drbd_connection_state gauge",
  "# HELP drbd_connection_state DRBD connection state",
  'drbd_connection_state{name="r0",conn_name="beta",peer_node_id="1",drbd_connection_state="StandAlone"} 0',
  'drbd_connection_state{name="r0",conn_name="beta",peer_node_id="1",drbd_connection_state="Disconnecting"} 0',
  'drbd_connection_state{name="r0",conn_name="beta",peer_node_id="1",drbd_connection_state="Unconnected"} 0',
  'drbd_connection_state{name="r0",conn_name="beta",peer_node_id="1",drbd_connection_state="Timeout"} 0',
  'drbd_connection_state{name="r0",conn_name="beta",peer_node_id="1",drbd_connection_state="BrokenPipe"} 0',
  'drbd_connection_state{name="r0",conn_name="beta",peer_node_id="1",drbd_connection_state="NetworkFailure"} 0',
  'drbd_connection_state{name="r0",conn_name="beta",peer_node_id="1",drbd_connection_state="ProtocolError"} 0',
  'drbd_connection_state{name="r0",conn_name="beta",peer_node_id="1",drbd_connection_state="TearDown"} 0',
  'drbd_connection_state{name="r0",conn_name="beta",peer_node_id="1",drbd_connection_state="Connecting"} 0',
  'drbd_connection_state{name="r0",conn_name="beta",peer_node_id="1",drbd_connection_state="Connected"} 1',
  'drbd_connection_state{name="r0",conn_name="gamma",peer_node_id="2",drbd_connection_state="StandAlone"} 0',
  'drbd_connection_state{name="r0",conn_name="gamma",peer_node_id="2",drbd_connection_state="Disconnecting"} 0',
  'drbd_connection_state{name="r0",conn_name="gamma",peer_node_id="2",drbd_connection_state="Unconnected"} 0',
  'drbd_connection_state{name="r0",conn_name="gamma",peer_node_id="2",drbd_connection_state="Timeout"} 0',
  'drbd_connection_state{name="r0",conn_name="gamma",peer_node_id="2",drbd_connection_state="BrokenPipe"} 0',
  'drbd_connection_state{name="r0",conn_name="gamma",peer_node_id="2",drbd_connection_state="NetworkFailure"} 0',
  'drbd_connection_state{name="r0",conn_name="gamma",peer_node_id="2",drbd_connection_state="ProtocolError"} 0',
  'drbd_connection_state{name="r0",conn_name="gamma",peer_node_id="2",drbd_connection_state="TearDown"} 0',
  'drbd_connection_state{name="r0",conn_name="gamma",peer_node_id="2",drbd_connection_state="Connecting"} 1',
  'drbd_connection_state{name="r0",conn_name="gamma",peer_node_id="2",drbd_connection_state="Connected"} 0',
  "# TYPE drbd_peerdevice_outofsync_bytes gauge",
  "# HELP drbd_peerdevice_outofsync_bytes Number of bytes currently out of sync with this peer, according to the bitmap that DRBD has for it",
  'drbd_peerdevice_outofsync_bytes{name="r0",conn_name="beta",peer_node_id="1",volume="0"} 0',
  'drbd_peerdevice_outofsync_bytes{name="r0",conn_name="gamma",peer_node_id="2",volume="0"} 8192',
  "# TYPE drbd_device_state gauge",
  "# HELP drbd_device_state DRBD device state",
  'drbd_device_state{name="r0",volume="0",drbd_device_state="Diskless"} 0',
  'drbd_device_state{name="r0",volume="0",drbd_device_state="Attaching"} 0',
  'drbd_device_state{name="r0",volume="0",drbd_device_state="Detaching"} 0',
  'drbd_device_state{name="r0",volume="0",drbd_device_state="Failed"} 0',
  'drbd_device_state{name="r0",volume="0",drbd_device_state="Negotiating"} 0',
  'drbd_device_state{name="r0",volume="0",drbd_device_state="Inconsistent"} 0',
  'drbd_device_state{name="r0",volume="0",drbd_device_state="Outdated"} 0',
  'drbd_device_state{name="r0",volume="0",drbd_device_state="DUnknown"} 0',
  'drbd_device_state{name="r0",volume="0",drbd_device_state="Consistent"} 0',
  'drbd_device_state{name="r0",volume="0",drbd_device_state="UpToDate"} 1',
  "# TYPE drbd_device_client gauge",
  "# HELP drbd_device_client Boolean whether this device is a client (i.e., intentional diskless)",
  'drbd_device_client{name="r0",volume="0"} 0',
  "# TYPE drbd_device_unintentionaldiskless gauge",
  "# HELP drbd_device_unintentionaldiskless Boolean whether the devices is unintentional diskless",
  'drbd_device_unintentionaldiskless{name="r0",volume="0"} 0',
  "# TYPE drbd_device_quorum gauge",
  "# HELP drbd_device_quorum Boolean if this device has DRBD quorum",
  'drbd_device_quorum{name="r0",volume="0"} 1',
  "# TYPE drbd_device_size_bytes gauge",
  "# HELP drbd_device_size_bytes Device size in bytes",
  'drbd_device_size_bytes{name="r0",volume="0"} 1073741824',
  "",
].join("\n");

interface Sample {
  readonly name: string;
  readonly labels: ReadonlyMap<string, string>;
  readonly value: number;
}

const metricName = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const labelName = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/**
 * A small checker for the text exposition format 0.0.4, strict where mirra's output must be:
 * every line is a TYPE or HELP comment or a sample; a family's TYPE comes once, before its HELP
 * and its samples; a family's samples are contiguous; label values are properly escaped; no
 * series appears twice. Returns the samples.
 */
function parseExposition(text: string): Sample[] {
  assert.ok(text.endsWith("\n"), "text must end with a line feed");
  const samples: Sample[] = [];
  const typed = new Set<string>();
  const seen = new Set<string>();
  let current: string | undefined;
  for (const line of text.slice(0, -1).split("\n")) {
    const comment = /^# (TYPE|HELP) (\S+) (.*)$/.exec(line);
    if (comment !== null) {
      const [, kind, name, rest] = comment as unknown as [string, string, string, string];
      assert.match(name, metricName, line);
      if (kind === "TYPE") {
        assert.ok(!typed.has(name), `second TYPE for ${name}`);
        assert.ok(["gauge", "counter", "histogram", "summary", "untyped"].includes(rest), line);
        typed.add(name);
        current = name;
      } else {
        assert.equal(current, name, `HELP for ${name} must follow its TYPE`);
        assert.doesNotMatch(rest.replace(/\\[\\n]/g, ""), /\\/, `bad escape in ${line}`);
      }
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m !== null, `not a sample line: ${JSON.stringify(line)}`);
    const [, name, body, value] = m as unknown as [string, string, string | undefined, string];
    assert.equal(name, current, `sample ${name} outside its family`);
    const labels = new Map<string, string>();
    let rest = body ?? "";
    while (rest !== "") {
      const l = /^([^=]+)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/.exec(rest);
      assert.ok(l !== null, `bad labels in ${line}`);
      const [all, key, raw] = l as unknown as [string, string, string];
      assert.match(key, labelName, line);
      assert.ok(!labels.has(key), `label ${key} twice in ${line}`);
      const unescaped = raw.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
      labels.set(key, unescaped);
      rest = rest.slice(all.length);
    }
    const v = Number(value);
    assert.ok(!Number.isNaN(v) || value === "NaN", `bad value in ${line}`);
    const series = `${name}{${[...labels].map(([k, x]) => `${k}=${JSON.stringify(x)}`).join()}}`;
    assert.ok(!seen.has(series), `series twice: ${series}`);
    seen.add(series);
    samples.push({ name, labels, value: v });
  }
  return samples;
}

describe("drbdReactorMetrics", () => {
  test("a 2-peer snapshot gives drbd-reactor's exact text", () => {
    assert.equal(drbdReactorMetrics(snapshot(), { isClient: () => false }), golden);
  });

  test("the golden text itself is built as drbd-reactor builds enums", () => {
    const conn = 'name="r0",conn_name="gamma",peer_node_id="2"';
    const lines = oneHotLines("drbd_connection_state", drbdConnectionStates, conn, "Connecting");
    for (const l of lines) assert.ok(golden.includes(l + "\n"), l);
  });

  test("every line parses as exposition format", () => {
    const samples = parseExposition(drbdReactorMetrics(snapshot(), { isClient: () => false }));
    assert.equal(samples.length, 1 + 1 + 3 + 1 + 20 + 2 + 10 + 4);
    assert.deepEqual(parseExposition(drbdReactorMetrics([])).length, 2);
  });

  test("no resources: only the up and count families", () => {
    assert.equal(
      drbdReactorMetrics([]),
      [
        "# TYPE drbdreactor_up gauge",
        "# HELP drbdreactor_up Boolean indicating whether or not drbdreactor is running. Always 1",
        "drbdreactor_up 1",
        "# TYPE drbd_resource_resources gauge",
        "# HELP drbd_resource_resources Number of resources",
        "drbd_resource_resources 0",
        "",
      ].join("\n"),
    );
  });

  test("one-hot groups sum to 1 and cover every value", () => {
    const s = snapshot();
    const r0 = s[0]!;
    const more: ResourceStatus = {
      ...r0,
      resource: "r2",
      role: "Secondary",
      volumes: [
        { ...r0.volumes[0]!, volume: 0, disk: "Inconsistent" },
        { ...r0.volumes[0]!, volume: 1, disk: "Diskless" },
      ],
      connections: [{ ...r0.connections[1]!, connection: "StandAlone" }],
    };
    const samples = parseExposition(drbdReactorMetrics([...s, more]));
    const enums: Record<string, readonly string[]> = {
      drbd_resource_role: drbdRoles,
      drbd_connection_state: drbdConnectionStates,
      drbd_device_state: drbdDiskStates,
    };
    for (const [metric, values] of Object.entries(enums)) {
      const groups = new Map<string, { sum: number; states: string[] }>();
      for (const x of samples.filter((y) => y.name === metric)) {
        const key = [...x.labels]
          .filter(([k]) => k !== metric)
          .map(([k, v]) => `${k}=${v}`)
          .join();
        const g = groups.get(key) ?? { sum: 0, states: [] };
        assert.ok(x.value === 0 || x.value === 1);
        g.sum += x.value;
        g.states.push(x.labels.get(metric)!);
        groups.set(key, g);
      }
      assert.ok(groups.size >= 2, `${metric}: two groups at least`);
      for (const [key, g] of groups) {
        assert.equal(g.sum, 1, `${metric}{${key}}`);
        assert.deepEqual(g.states, [...values], `${metric}{${key}}`);
      }
    }
  });

  test("label values are escaped per the text format", () => {
    assert.equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
    const s = snapshot();
    const odd: ResourceStatus = {
      ...s[0]!,
      resource: 'r"0\\\n',
      connections: [{ ...s[0]!.connections[0]!, name: "be\nta" }],
    };
    const text = drbdReactorMetrics([odd]);
    assert.ok(text.includes('drbd_resource_suspended{name="r\\"0\\\\\\n"} 0\n'), text);
    assert.ok(text.includes('conn_name="be\\nta"'));
    const samples = parseExposition(text);
    const names = new Set(samples.map((x) => x.labels.get("name")).filter((n) => n !== undefined));
    assert.deepEqual([...names], ['r"0\\\n']);
    assert.ok(samples.some((x) => x.labels.get("conn_name") === "be\nta"));
  });

  test("client and unintentional diskless follow the resource file", () => {
    const s = snapshot();
    const r: ResourceStatus = {
      ...s[0]!,
      volumes: [
        { ...s[0]!.volumes[0]!, volume: 0, disk: "Diskless" },
        { ...s[0]!.volumes[0]!, volume: 1, disk: "Diskless" },
      ],
    };
    const text = drbdReactorMetrics([r], { isClient: (_res, volume) => volume === 1 });
    assert.ok(text.includes('drbd_device_client{name="r0",volume="0"} 0\n'));
    assert.ok(text.includes('drbd_device_client{name="r0",volume="1"} 1\n'));
    assert.ok(text.includes('drbd_device_unintentionaldiskless{name="r0",volume="0"} 1\n'));
    assert.ok(text.includes('drbd_device_unintentionaldiskless{name="r0",volume="1"} 0\n'));
    const unknown = drbdReactorMetrics([r]);
    assert.ok(!unknown.includes("drbd_device_client"));
    assert.ok(!unknown.includes("drbd_device_unintentionaldiskless"));
  });

  test("suspended if any volume is; down resources are left out", () => {
    const s = snapshot();
    const r: ResourceStatus = {
      ...s[0]!,
      volumes: [s[0]!.volumes[0]!, { ...s[0]!.volumes[0]!, volume: 1, suspended: true }],
    };
    const text = drbdReactorMetrics([r, s[1]!]);
    assert.ok(text.includes('drbd_resource_suspended{name="r0"} 1\n'));
    assert.ok(text.includes("drbd_resource_resources 1\n"));
    assert.ok(!text.includes('name="r1"'));
  });

  test("a state outside DRBD's list is refused, not exported without its 1", () => {
    const s = snapshot();
    assert.throws(
      () => drbdReactorMetrics([{ ...s[0]!, role: "Leader" }]),
      /drbd_resource_role: "Leader"/,
    );
    const bad: ResourceStatus = {
      ...s[0]!,
      volumes: [{ ...s[0]!.volumes[0]!, disk: "Sleepy" }],
    };
    assert.throws(() => drbdReactorMetrics([bad]), /drbd_device_state/);
  });

  test("the checker refuses what Prometheus would refuse", () => {
    const head = "# TYPE m gauge\n# HELP m h\n";
    const bad = [
      'm{a="x"} 1\n', // sample before its TYPE
      "# HELP m h\n# TYPE m gauge\nm 1\n", // HELP before TYPE
      head + 'm{a="x"y"} 1\n', // unescaped quote
      head + 'm{a="x\\t"} 1\n', // unknown escape
      head + 'm{a="x"} 1\nm{a="x"} 2\n', // the same series twice
      head + "m one\n", // not a number
      head + "m 1", // no final line feed
    ];
    for (const text of bad) assert.throws(() => parseExposition(text), text);
    assert.equal(parseExposition(head + 'm{a="x\\"\\\\\\n"} 1\n')[0]!.labels.get("a"), 'x"\\\n');
  });

  test("pure: the same snapshot gives the same text", () => {
    assert.equal(drbdReactorMetrics(snapshot()), drbdReactorMetrics(snapshot()));
  });
});
