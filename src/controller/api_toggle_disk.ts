//! toggle-disk: turns a diskful replica into a diskless one or back
//! (`PUT .../resources/{node}/toggle-disk` with a ToggleDiskRequest, and the deprecated
//! `.../toggle-disk/diskless[/{pool}]` and `.../toggle-disk/diskful[/{pool}]` that the 1.27 CLI
//! sends). The controller changes the desired state: the resource's flags, its pool (which every
//! volume uses) and its StorPoolName property; satellites then attach or drop the disks.
//!
//! LINSTOR's checks, in its order: toggling into the state the resource is in is a warning
//! and changes nothing; the last diskful replica cannot go diskless; the target pool must exist
//! on that node and be of the right kind (diskless for diskless, a real one for diskful).

import { ApiCallError, apiError, parseError, retCode, type ApiCallRc } from "./api_call_rc.js";
import {
  found,
  okRc,
  param,
  rcReply,
  readLayerStack,
  type ApiContext,
  type ApiReply,
  type ApiRequest,
  type Route,
} from "./api_common.js";
import { definitionOr404 } from "./api_definitions.js";
import { joiningProp } from "./desired_state.js";
import { ObjectReader } from "./input.js";
import {
  defaultDisklessPool,
  defaultStoragePool,
  type ResourceRecord,
  type StoreReader,
} from "./store/store.js";

const toggleOperations = ["INTO_DRBD_DISKFUL", "INTO_DRBD_CLIENT", "INTO_DRBD_DISKLESS"] as const;
/** Flags that make a replica diskless; going diskful clears all of them. */
const disklessFlags = ["DISKLESS", "DRBD_DISKLESS", "NVME_INITIATOR", "TIE_BREAKER"];

interface Toggle {
  intoDiskless: boolean;
  /** The target pool the request names, if any. */
  pool: string | undefined;
}

function isDiskless(r: ResourceRecord): boolean {
  return r.flags.includes("DISKLESS");
}

/** The pool a replica toggles into: the one named, else the defaults resource create uses. */
function targetPool(tx: StoreReader, r: ResourceRecord, rg: string, t: Toggle): string {
  const filter = tx.resourceGroup(rg)?.selectFilter ?? {};
  const named =
    t.pool ?? (t.intoDiskless ? undefined : (filter.storage_pool ?? filter.storage_pool_list?.[0]));
  const name = named ?? (t.intoDiskless ? defaultDisklessPool : defaultStoragePool);
  const pool = tx.storagePool(r.node, name);
  if (pool === undefined) {
    throw apiError(
      named === undefined && !t.intoDiskless
        ? "FAIL_NOT_FOUND_DFLT_STOR_POOL"
        : "FAIL_NOT_FOUND_STOR_POOL",
      "resource",
      "modify",
      `Storage pool '${name}' on node '${r.node}' not found.`,
      {
        correction: `Create the pool on node '${r.node}' (mirra sp c ...) or name an existing one.`,
        objRefs: { RscDfn: r.resourceDefinition, Node: r.node, StorPool: name },
      },
    );
  }
  if ((pool.providerKind === "DISKLESS") !== t.intoDiskless) {
    throw apiError(
      "FAIL_INVLD_STOR_POOL_NAME",
      "resource",
      "modify",
      t.intoDiskless
        ? `A diskless resource cannot use the ${pool.providerKind} pool '${pool.name}'.`
        : `A diskful resource cannot use the diskless pool '${pool.name}'.`,
      { correction: "Name a pool of the other kind." },
    );
  }
  return pool.name;
}

async function toggle(ctx: ApiContext, req: ApiRequest, t: Toggle): Promise<ApiReply> {
  const rcs = await ctx.store.write((tx): ApiCallRc[] => {
    const rd = definitionOr404(tx, param(req, "rd"), "modify");
    const node = param(req, "node");
    const r = found(
      tx.resource(rd.name, node),
      "FAIL_NOT_FOUND_RSC",
      "resource",
      "modify",
      `Resource '${rd.name}' on node '${node}' not found.`,
    );
    const objRefs = { RscDfn: rd.name, Node: r.node };
    if (t.intoDiskless === isDiskless(r)) {
      return [
        {
          retCode: retCode(
            "warn",
            t.intoDiskless ? "WARN_RSC_ALREADY_DISKLESS" : "WARN_RSC_ALREADY_HAS_DISK",
            "resource",
            "modify",
          ),
          message: t.intoDiskless ? "Resource already diskless" : "Resource already has disk",
          objRefs,
        },
      ];
    }
    if (t.intoDiskless) {
      const diskful = tx
        .resources({ resourceDefinition: rd.name })
        .filter((x) => !isDiskless(x) && !x.flags.includes("DELETE"));
      if (diskful.length <= 1) {
        throw apiError(
          "FAIL_INSUFFICIENT_REPLICA_COUNT",
          "resource",
          "modify",
          `Cannot remove the disk from the only resource of '${rd.name}' with a disk.`,
          {
            correction: "Add another diskful replica first, then toggle this one.",
            objRefs,
          },
        );
      }
    }
    const pool = targetPool(tx, r, rd.resourceGroup, t);
    const flags = t.intoDiskless
      ? [...new Set([...r.flags, "DISKLESS", "DRBD_DISKLESS"])].sort()
      : r.flags.filter((f) => !disklessFlags.includes(f));
    // A disk added to a resource whose peers hold data must sync from them in full.
    const { [joiningProp]: _joining, ...props } = r.props;
    tx.putResource({
      ...r,
      flags,
      storagePool: pool,
      props: { ...props, StorPoolName: pool, ...(t.intoDiskless ? {} : { [joiningProp]: "true" }) },
    });
    const action = t.intoDiskless ? "Removal of disk from" : "Addition of disk to";
    return [
      okRc(
        "MODIFIED",
        "resource",
        "modify",
        `${action} resource '${rd.name}' on node '${r.node}' registered.`,
        objRefs,
      ),
    ];
  });
  return rcReply(ctx, rcs, 200);
}

/** The 1.28 call: the body says which way and which pool. */
function toggleRequest(ctx: ApiContext, req: ApiRequest): Promise<ApiReply> {
  const body = ObjectReader.body(req.body);
  // An operation Jackson cannot map is a body it cannot read: a parse error, as in LINSTOR.
  const text = body.str("operation")?.trim().toUpperCase();
  const operation = toggleOperations.find((o) => o === text);
  if (operation === undefined) {
    throw parseError(
      text === undefined
        ? "The field 'operation' is required."
        : `The value '${text}' of 'operation' is not valid.`,
      `Use one of: ${toggleOperations.join(", ")}.`,
    );
  }
  readLayerStack(body, "modify");
  if (body.str("migrate_from") !== undefined) {
    // Deleting the source once the new disk has synced needs sync state from satellites.
    throw new ApiCallError(
      [
        {
          retCode: retCode("error", "FAIL_UNKNOWN_ERROR", "resource", "modify"),
          message: "toggle-disk with migrate_from is not supported yet.",
          correction: "Toggle the disk on, wait for the sync, then delete the old replica.",
        },
      ],
      501,
    );
  }
  const pool = body.str("storage_pool");
  return toggle(ctx, req, {
    intoDiskless: operation !== "INTO_DRBD_DISKFUL",
    pool: pool === undefined || pool === "" ? undefined : pool,
  });
}

/** The deprecated paths: the direction and the pool are in the URL. */
function togglePath(intoDiskless: boolean) {
  return (ctx: ApiContext, req: ApiRequest): Promise<ApiReply> => {
    // ToggleDiskDiskful{layer_list}: read so that a bad layer is refused, as for create.
    readLayerStack(ObjectReader.body(req.body, true), "modify");
    const pool = req.params["pool"];
    return toggle(ctx, req, {
      intoDiskless,
      pool: pool === undefined || pool === "" ? undefined : pool,
    });
  };
}

const base = "/v1/resource-definitions/:rd/resources/:node/toggle-disk";

export const toggleDiskRoutes: Route[] = [
  { method: "PUT", url: base, handler: toggleRequest },
  { method: "PUT", url: `${base}/diskless`, handler: togglePath(true) },
  { method: "PUT", url: `${base}/diskless/:pool`, handler: togglePath(true) },
  { method: "PUT", url: `${base}/diskful`, handler: togglePath(false) },
  { method: "PUT", url: `${base}/diskful/:pool`, handler: togglePath(false) },
];
