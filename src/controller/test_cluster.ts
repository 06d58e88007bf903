//! Test support: a small cluster in the store (desired_state.test.ts, satellite_link.test.ts).

import type { StoreWriter } from "./store/store.js";

/** n1 and n2 hold r1 on disk, n3 is its diskless tie-breaker; n3 also has an LVM pool. */
export function populateCluster(tx: StoreWriter): void {
  for (const [i, name] of ["n1", "n2", "n3"].entries()) {
    tx.putNode({
      name,
      type: "SATELLITE",
      flags: [],
      props: {},
      netInterfaces: [
        {
          name: "default",
          address: `127.0.0.${i + 1}`,
          satellitePort: 3366,
          encryptionType: "PLAIN",
          isActive: true,
          uuid: `u-nif-${name}`,
        },
      ],
      uuid: `u-${name}`,
    });
    tx.putStoragePool({
      node: name,
      name: "pool",
      providerKind: i === 0 ? "FILE" : "FILE_THIN",
      props: { "StorDriver/FileDir": `/srv/${name}` },
      sharedSpace: null,
      externalLocking: false,
      uuid: `u-sp-${name}`,
    });
  }
  tx.putStoragePool({
    node: "n3",
    name: "DfltDisklessStorPool",
    providerKind: "DISKLESS",
    props: {},
    sharedSpace: null,
    externalLocking: false,
    uuid: "u-dl",
  });
  tx.putStoragePool({
    node: "n3",
    name: "lvm",
    providerKind: "LVM",
    props: {},
    sharedSpace: null,
    externalLocking: false,
    uuid: "u-lvm",
  });
  tx.putResourceGroup({
    name: "rg",
    description: "",
    props: {},
    selectFilter: { place_count: 2 },
    peerSlots: null,
    uuid: "u-rg",
  });
  tx.putResourceDefinition({
    name: "r1",
    externalName: null,
    resourceGroup: "rg",
    props: {},
    flags: [],
    port: 7001,
    secret: "s3cret",
    peerSlots: null,
    transportType: "IP",
    uuid: "u-rd",
  });
  for (const [nr, minor, sizeKib] of [
    [0, 1000, 65536],
    [1, 1003, 1022],
  ] as const)
    tx.putVolumeDefinition({
      resourceDefinition: "r1",
      volumeNumber: nr,
      sizeKib,
      props: {},
      flags: [],
      minorNumber: minor,
      uuid: `u-vd${nr}`,
    });
  for (const [nodeId, node, flags, pool] of [
    [0, "n1", [], "pool"],
    [1, "n2", [], "pool"],
    [2, "n3", ["DISKLESS", "DRBD_DISKLESS", "TIE_BREAKER"], "DfltDisklessStorPool"],
  ] as const)
    tx.putResource({
      resourceDefinition: "r1",
      node,
      props: {},
      flags: [...flags],
      storagePool: pool,
      nodeId,
      createTimestampMs: 0,
      uuid: `u-r-${node}`,
    });
}
