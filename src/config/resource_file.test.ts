import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  ResourceFileError,
  engineConfigOf,
  localNode,
  parseResourceFile,
  volumeWireName,
  type ResourceFile,
} from "./resource_file.js";

type Doc = Record<string, unknown>;

function valid(): Doc {
  return {
    resource: "r0",
    "shared-secret": "s3cret",
    protocol: "B",
    options: {
      quorum: "majority",
      "on-no-quorum": "io-error",
      "al-extents": 257,
      "ping-int": 2,
      "ping-timeout": 7,
      timeout: 15,
      "connect-int": 3,
      "c-max-rate": 4096,
      "verify-alg": "crc32c",
      "after-sb-0pri": "discard-node-beta",
    },
    volumes: [{ volume: 0, size: "64M" }],
    nodes: [
      {
        name: "alpha",
        "node-id": 0,
        address: "10.0.0.1:7789",
        volumes: [{ volume: 0, disk: "/dev/vg/r0", "meta-disk": "internal", nbd: "0.0.0.0:10809" }],
      },
      {
        name: "beta",
        "node-id": 1,
        address: "[fd00::2]:7789",
        volumes: [{ volume: 0, disk: "/var/lib/mirra/r0.img", "meta-disk": "/dev/pmem0" }],
      },
      {
        name: "gamma",
        "node-id": 5,
        address: "10.0.0.3:7789",
        volumes: [{ volume: 0, disk: "none", nbd: "unix:/run/mirra/r0.sock" }],
      },
    ],
  };
}

function parse(doc: unknown): ResourceFile {
  return parseResourceFile(JSON.stringify(doc), "test.json");
}

/** The problems of an invalid document, as "path: message" lines. */
function problems(doc: unknown): string[] {
  try {
    parse(doc);
  } catch (err) {
    assert.ok(err instanceof ResourceFileError, String(err));
    assert.equal(err.code, "MIRRA_E_CONFIG");
    return err.problems.map((p) => `${p.path}: ${p.message}`);
  }
  assert.fail("expected the document to be refused");
}

function edit(change: (d: Doc & { options: Doc; nodes: Doc[]; volumes: Doc[] }) => void): Doc {
  const d = valid() as Doc & { options: Doc; nodes: Doc[]; volumes: Doc[] };
  change(d);
  return d;
}

describe("resource file", () => {
  test("a full file parses into engine options in ticks", () => {
    const f = parse(valid());
    assert.equal(f.resource, "r0");
    assert.equal(f.sharedSecret, "s3cret");
    assert.equal(f.protocol, "B");
    assert.equal(f.engineOptions.quorum, "majority");
    assert.equal(f.engineOptions.onNoQuorum, "io-error");
    assert.equal(f.engineOptions.alExtents, 257);
    assert.equal(f.engineOptions.pingIntTicks, 20); // 2 s at 100 ms per tick
    assert.equal(f.engineOptions.pingTimeoutTicks, 7); // 0.7 s
    assert.equal(f.engineOptions.timeoutTicks, 15);
    assert.equal(f.engineOptions.cMaxRateKiBps, 4096);
    assert.equal(f.engineOptions.verifyAlg, true);
    assert.deepEqual(f.engineOptions.afterSb0pri, { discardNode: "beta" });
    assert.deepEqual(f.link, {
      connectIntMs: 3000,
      pingIntMs: 2000,
      pingTimeoutMs: 700,
      tls: undefined,
    });
    assert.deepEqual(f.volumes, [{ volume: 0, sizeBytes: 64 * 1024 * 1024 }]);
    assert.deepEqual(f.nodes[1]!.address, { host: "fd00::2", port: 7789 });
    assert.deepEqual(f.nodes[1]!.volumes[0]!.metaDisk, { path: "/dev/pmem0" });
    assert.equal(f.nodes[1]!.volumes[0]!.nbd, undefined);
    assert.deepEqual(f.nodes[0]!.volumes[0]!.nbd, { kind: "tcp", host: "0.0.0.0", port: 10809 });
    assert.deepEqual(f.nodes[2]!.volumes[0]!.nbd, { kind: "unix", path: "/run/mirra/r0.sock" });
    assert.equal(f.nodes[2]!.volumes[0]!.disk, undefined);
  });

  test("defaults: protocol C, DRBD's link timings, internal metadata", () => {
    const f = parse(
      edit((d) => {
        delete d["protocol"];
        delete d["shared-secret"];
        d.options = {};
        delete (d.nodes[1]!["volumes"] as Doc[])[0]!["meta-disk"];
      }),
    );
    assert.equal(f.protocol, "C");
    assert.equal(f.sharedSecret, undefined);
    assert.deepEqual(f.link, {
      connectIntMs: 10000,
      pingIntMs: 10000,
      pingTimeoutMs: 500,
      tls: undefined,
    });
    assert.equal(f.nodes[1]!.volumes[0]!.metaDisk, "internal");
  });

  test("engine config: node disks per volume, wire name, size in blocks", () => {
    const f = parse(valid());
    const c = engineConfigOf(f, 0, { alExtentBlocks: 1024 });
    assert.equal(c.name, "r0");
    assert.equal(c.sizeBlocks, 16384);
    assert.equal(c.protocol, "B");
    assert.deepEqual(
      c.nodes.map((n) => [n.id, n.name, n.disk]),
      [
        [0, "alpha", "diskful"],
        [1, "beta", "diskful"],
        [5, "gamma", "diskless"],
      ],
    );
    assert.equal(c.options?.alExtentBlocks, 1024);
    assert.equal(c.options?.tickMs, 100);
    const two = parse(
      edit((d) => {
        d.volumes.push({ volume: 1, size: 4096 });
        for (const n of d.nodes) (n["volumes"] as Doc[]).push({ volume: 1, disk: "none" });
      }),
    );
    assert.equal(volumeWireName(two, 0), "r0/0");
    assert.equal(volumeWireName(two, 1), "r0/1");
  });

  test("the local node: by node id, else by host name", () => {
    const f = parse(valid());
    assert.equal(localNode(f, 5, "whatever").name, "gamma");
    assert.equal(localNode(f, undefined, "beta.example.com").nodeId, 1);
    assert.throws(
      () => localNode(f, 7, "x"),
      /no node with node-id 7 \(its nodes: alpha=0, beta=1, gamma=5\)/,
    );
    assert.throws(() => localNode(f, undefined, "delta"), /no node named "delta": give --node-id/);
  });

  test("not JSON, not an object", () => {
    assert.throws(
      () => parseResourceFile("{", "bad.json"),
      /resource file bad.json is not valid:\n {2}\(file\): not JSON/,
    );
    assert.deepEqual(problems([]), [": must be a JSON object"]);
  });

  test("missing required fields are each named by path", () => {
    assert.deepEqual(problems({}), [
      "resource: is required",
      "volumes: is required (a list of { volume, size })",
      "nodes: is required (a list of nodes)",
    ]);
  });

  test("unknown fields and options are refused with the known names", () => {
    const p = problems(
      edit((d) => {
        d["colour"] = "blue";
        d.options["on-io-error"] = "detach";
        (d.nodes[0]!["volumes"] as Doc[])[0]!["dsik"] = "/x";
      }),
    );
    assert.equal(p.length, 3);
    assert.match(p[0]!, /^colour: unknown field; known fields here: resource, shared-secret/);
    assert.match(
      p[1]!,
      /^options.on-io-error: unknown option; known options: protocol, allow-two-primaries/,
    );
    assert.match(p[2]!, /^nodes\[0\]\.volumes\[0\]\.dsik: unknown field/);
  });

  test("option values are checked against DRBD's ranges and enums", () => {
    const p = problems(
      edit((d) => {
        d["protocol"] = "D";
        d.options["quorum"] = "most";
        d.options["al-extents"] = 3;
        d.options["ping-int"] = 0;
        d.options["csums-alg"] = "sha1";
        d.options["after-sb-1pri"] = "violently";
        d.options["auto-promote"] = "maybe";
      }),
    );
    assert.deepEqual(p, [
      "protocol: must be one of A, B, C",
      "options.quorum: must be off, majority, all or a number of nodes 1..32",
      "options.al-extents: must be a whole number in 7..65534",
      "options.ping-int: must be a whole number in 1..120",
      'options.csums-alg: must be "crc32c" (the only digest the engine computes)',
      "options.after-sb-1pri: must be one of disconnect, consensus, discard-secondary, call-pri-lost-after-sb",
      "options.auto-promote: must be yes or no (or true or false)",
    ]);
  });

  test("DRBD's timing rule: timeout below ping-int and connect-int", () => {
    const p = problems(edit((d) => (d.options["timeout"] = 25)));
    assert.deepEqual(p, ["options.timeout: must be less than ping-int (DRBD's rule)"]);
  });

  test("quorum N cannot exceed the node count", () => {
    assert.deepEqual(problems(edit((d) => (d.options["quorum"] = 4))), [
      "options.quorum: 4 is more than the resource's 3 nodes",
    ]);
  });

  test("tls needs its three files", () => {
    assert.deepEqual(problems(edit((d) => (d.options["tls"] = "yes"))), [
      "options.tls-certificate: is required with tls yes",
      "options.tls-privkey: is required with tls yes",
      "options.tls-ca: is required with tls yes",
    ]);
    const f = parse(
      edit((d) => {
        d.options["tls"] = true;
        d.options["tls-certificate"] = "/etc/mirra/node.crt";
        d.options["tls-privkey"] = "/etc/mirra/node.key";
        d.options["tls-ca"] = "/etc/mirra/ca.crt";
      }),
    );
    assert.deepEqual(f.link.tls, {
      certificate: "/etc/mirra/node.crt",
      privateKey: "/etc/mirra/node.key",
      ca: "/etc/mirra/ca.crt",
    });
  });

  test("sizes: units, 4 KiB multiples, the 16 TiB limit", () => {
    assert.equal(
      parse(edit((d) => (d.volumes[0]!["size"] = 1048576))).volumes[0]!.sizeBytes,
      1048576,
    );
    assert.deepEqual(problems(edit((d) => (d.volumes[0]!["size"] = "1000"))), [
      "volumes[0].size: 1000 bytes is not a positive multiple of 4 KiB",
    ]);
    assert.deepEqual(problems(edit((d) => (d.volumes[0]!["size"] = "lots"))), [
      'volumes[0].size: bad size "lots": use a number with an optional unit (K, M, G, T)',
    ]);
    assert.deepEqual(problems(edit((d) => (d.volumes[0]!["size"] = "32T"))), [
      "volumes[0].size: is larger than 16 TiB, the metadata format's limit",
    ]);
    assert.deepEqual(problems(edit((d) => delete d.volumes[0]!["size"])), [
      'volumes[0].size: is required (bytes, or a size such as "64M")',
    ]);
  });

  test("nodes: unique names, ids and addresses; ids 0..31; HOST:PORT", () => {
    const p = problems(
      edit((d) => {
        d.nodes[1]!["name"] = "alpha";
        d.nodes[2]!["node-id"] = 0;
        d.nodes[2]!["address"] = "10.0.0.1:7789";
      }),
    );
    assert.deepEqual(p, [
      'nodes[1].name: node name "alpha" is used twice',
      "nodes[2].node-id: node id 0 is used twice",
      "nodes[2].address: address 10.0.0.1:7789 is used by two nodes",
    ]);
    assert.deepEqual(problems(edit((d) => (d.nodes[0]!["node-id"] = 32))), [
      "nodes[0].node-id: must be a whole number in 0..31",
    ]);
    assert.deepEqual(problems(edit((d) => (d.nodes[0]!["address"] = "10.0.0.1"))), [
      'nodes[0].address: "10.0.0.1" is not HOST:PORT',
    ]);
    assert.deepEqual(problems(edit((d) => (d.nodes[0]!["address"] = "h:70000"))), [
      "nodes[0].address: port 70000 is outside 1..65535",
    ]);
  });

  test("node volumes: every volume once, absolute paths, diskless without metadata", () => {
    assert.deepEqual(problems(edit((d) => (d.nodes[0]!["volumes"] = []))), [
      'nodes[0].volumes: has no entry for volume 0 (use "disk": "none" for diskless)',
    ]);
    const p = problems(
      edit((d) => {
        d.nodes[0]!["volumes"] = [
          { volume: 0, disk: "relative.img", "meta-disk": "meta.img", nbd: "nowhere" },
          { volume: 0, disk: "/a" },
          { volume: 3, disk: "/b" },
        ];
        d.nodes[2]!["volumes"] = [{ volume: 0, disk: "none", "meta-disk": "internal" }];
      }),
    );
    assert.deepEqual(p, [
      'nodes[0].volumes[0].disk: must be an absolute path (or "none" for a diskless volume)',
      'nodes[0].volumes[0].meta-disk: must be "internal" or an absolute path',
      'nodes[0].volumes[0].nbd: "nowhere" is not HOST:PORT (or unix:/path)',
      "nodes[0].volumes[1].volume: volume 0 is listed twice for this node",
      "nodes[0].volumes[2].volume: volume 3 is not in the resource's volumes",
      "nodes[2].volumes[0].meta-disk: a diskless volume has no metadata",
    ]);
  });

  test("the error message lists every problem with its path", () => {
    try {
      parse({ resource: "bad name!", volumes: [], nodes: "x" });
      assert.fail("refused");
    } catch (err) {
      assert.ok(err instanceof ResourceFileError);
      assert.equal(
        err.message,
        [
          "resource file test.json is not valid:",
          "  resource: must be 1..64 letters, digits, '_', '.' or '-', starting alphanumeric",
          "  volumes: must be a non-empty list of { volume, size }",
          "  nodes: must be a list of 1..32 nodes",
        ].join("\n"),
      );
    }
  });
});
