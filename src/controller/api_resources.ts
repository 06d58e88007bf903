//! Resources (a resource definition placed on a node), their volumes, and the resources view.
//! Creating a resource resolves its storage pool and allocates its replication node-id, the
//! two things a satellite needs from the controller. Volumes are derived: one per volume
//! definition, on the resource's pool. Observed state (disk and replication states, device
//! paths) arrives with the satellites; until then volumes carry an empty `state`.

import { createHash } from "node:crypto";
import { assert } from "../stdx/assert.js";
import { apiError, parseError, type ApiCallRc } from "./api_call_rc.js";
import {
  checkProps,
  found,
  json,
  lowestFree,
  modifyProps,
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
import { matchesProps, nameFilter, ObjectReader, paginate, parseBody } from "./input.js";
import type { JsonValue } from "./json.js";
import {
  defaultDisklessPool,
  defaultStoragePool,
  type Props,
  type ResourceDefinitionRecord,
  type ResourceRecord,
  type StoreReader,
  type StoreWriter,
  type VolumeDefinitionRecord,
} from "./store/store.js";

const nodeIdMax = 31;
const resourceFlags = ["DISKLESS", "DRBD_DISKLESS", "NVME_INITIATOR", "INACTIVE", "TIE_BREAKER"];

/** A stable per-volume uuid: volumes are derived objects, so their id is derived too. */
function volumeUuid(resourceUuid: string, volumeNumber: number): string {
  const h = createHash("sha1").update(`${resourceUuid}/${volumeNumber}`).digest("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function volumeJson(tx: StoreReader, r: ResourceRecord, v: VolumeDefinitionRecord): JsonValue {
  const pool = tx.storagePool(r.node, r.storagePool);
  return {
    volume_number: v.volumeNumber,
    storage_pool_name: r.storagePool,
    provider_kind: pool?.providerKind ?? "DISKLESS",
    props: {},
    flags: [],
    state: {},
    layer_data_list: [
      {
        type: "DRBD",
        data: {
          drbd_volume_definition: {
            resource_name_suffix: "",
            volume_number: v.volumeNumber,
            minor_number: v.minorNumber,
          },
        },
      },
      { type: "STORAGE", data: { volume_number: v.volumeNumber } },
    ],
    uuid: volumeUuid(r.uuid, v.volumeNumber),
    reports: [],
  };
}

function resourceJson(tx: StoreReader, r: ResourceRecord, withVolumes: boolean): JsonValue {
  const rd = tx.resourceDefinition(r.resourceDefinition);
  assert(rd !== undefined, `resource ${r.resourceDefinition}@${r.node} without its definition`);
  const vds = tx.volumeDefinitions(rd.name);
  return {
    name: rd.name,
    node_name: r.node,
    props: r.props,
    flags: r.flags,
    layer_object: {
      type: "DRBD",
      resource_name_suffix: "",
      drbd: {
        drbd_resource_definition: {
          resource_name_suffix: "",
          peer_slots: rd.peerSlots ?? 7,
          al_stripes: 1,
          al_stripe_size_kib: 32,
          port: rd.port,
          transport_type: rd.transportType,
          secret: rd.secret,
          down: false,
        },
        node_id: r.nodeId,
        tcp_ports: [rd.port],
        peer_slots: rd.peerSlots ?? 7,
        al_stripes: 1,
        al_size: 32,
        flags: r.flags.includes("DISKLESS") ? ["DISKLESS"] : [],
      },
      children: [{ type: "STORAGE", resource_name_suffix: "", storage: { storage_volumes: [] } }],
    },
    uuid: r.uuid,
    create_timestamp: r.createTimestampMs,
    volumes: withVolumes ? vds.map((v) => volumeJson(tx, r, v)) : undefined,
  };
}

export interface ResourceCreate {
  node: string;
  props: Props;
  flags: string[];
  nodeId: number | undefined;
}

/** Reads one ResourceCreate; the node comes from the path when the URL names one. */
function readResourceCreate(body: ObjectReader, pathNode: string | undefined): ResourceCreate {
  const rsc = body.obj("resource") ?? ObjectReader.of({}, "field 'resource'", "resource.");
  const node = pathNode ?? rsc.strReq("node_name");
  const flags = new Set(
    (rsc.strList("flags") ?? []).map((f) => {
      const v = f.trim().toUpperCase();
      if (!resourceFlags.includes(v)) {
        throw parseError(`Unknown resource flag '${f}'.`, `Use ${resourceFlags.join(", ")}.`);
      }
      return v;
    }),
  );
  if (body.bool("drbd_client") === true) flags.add("DRBD_DISKLESS");
  if (flags.has("DRBD_DISKLESS") || flags.has("NVME_INITIATOR")) flags.add("DISKLESS");
  readLayerStack(body, "create");
  return {
    node,
    props: checkProps(rsc.props("props") ?? {}, "resource", "create"),
    flags: [...flags].sort(),
    nodeId: body.int("drbd_node_id", 0, nodeIdMax),
  };
}

/** Picks the pool: the resource's StorPoolName, then the group's, then LINSTOR's default. */
function resolvePool(
  tx: StoreReader,
  rd: ResourceDefinitionRecord,
  c: ResourceCreate,
  node: string,
): string {
  const diskless = c.flags.includes("DISKLESS");
  const filter = tx.resourceGroup(rd.resourceGroup)?.selectFilter ?? {};
  const named =
    c.props["StorPoolName"] ??
    (diskless ? undefined : (filter.storage_pool ?? filter.storage_pool_list?.[0]));
  const name = named ?? (diskless ? defaultDisklessPool : defaultStoragePool);
  const pool = tx.storagePool(node, name);
  if (pool === undefined) {
    throw apiError(
      named === undefined && !diskless
        ? "FAIL_NOT_FOUND_DFLT_STOR_POOL"
        : "FAIL_NOT_FOUND_STOR_POOL",
      "resource",
      "create",
      `Storage pool '${name}' on node '${node}' not found.`,
      { correction: "Create the storage pool, or name another with the property StorPoolName." },
    );
  }
  if ((pool.providerKind === "DISKLESS") !== diskless) {
    throw apiError(
      "FAIL_INVLD_STOR_POOL_NAME",
      "resource",
      "create",
      diskless
        ? `A diskless resource cannot use the ${pool.providerKind} pool '${pool.name}'.`
        : `A diskful resource cannot use the diskless pool '${pool.name}'.`,
    );
  }
  return pool.name;
}

/**
 * Creates one resource. `joinsData`: the definition had diskful replicas before this call,
 * so a new disk must full-sync from them (its satellite creates its metadata Inconsistent)
 * rather than start as the day-0 twin of disks created together with it.
 */
export function createOne(
  ctx: ApiContext,
  tx: StoreWriter,
  rdName: string,
  c: ResourceCreate,
  joinsData = false,
): ApiCallRc {
  const rd = definitionOr404(tx, rdName, "create");
  const node = found(
    tx.node(c.node),
    "FAIL_NOT_FOUND_NODE",
    "resource",
    "create",
    `Node '${c.node}' not found.`,
  );
  if (tx.resource(rd.name, node.name) !== undefined) {
    throw apiError(
      "FAIL_EXISTS_RSC",
      "resource",
      "create",
      `Resource '${rd.name}' on node '${node.name}' already exists.`,
      {
        objRefs: { RscDfn: rd.name, Node: node.name },
      },
    );
  }
  const storagePool = resolvePool(tx, rd, c, node.name);
  const used = tx.resources({ resourceDefinition: rd.name }).map((r) => r.nodeId);
  if (c.nodeId !== undefined && used.includes(c.nodeId)) {
    throw apiError(
      "FAIL_INVLD_NODE_ID",
      "resource",
      "create",
      `Node-id ${c.nodeId} is already used in resource '${rd.name}'.`,
    );
  }
  const nodeId = c.nodeId ?? lowestFree(used, 0, nodeIdMax);
  if (nodeId === undefined) {
    throw apiError(
      "FAIL_POOL_EXHAUSTED_NODE_ID",
      "resource",
      "create",
      `Resource '${rd.name}' has no free node-id.`,
    );
  }
  const joining = joinsData && !c.flags.includes("DISKLESS");
  tx.putResource({
    resourceDefinition: rd.name,
    node: node.name,
    props: joining ? { ...c.props, [joiningProp]: "true" } : c.props,
    flags: c.flags,
    storagePool,
    nodeId,
    createTimestampMs: ctx.nowMs(),
    uuid: ctx.newUuid(),
  });
  return okRc(
    "CREATED",
    "resource",
    "create",
    `New resource '${rd.name}' on node '${node.name}' registered.`,
    {
      RscDfn: rd.name,
      Node: node.name,
    },
  );
}

/** Whether `rd` has a diskful replica already (whose data a new disk must sync from). */
export function hasDiskful(tx: StoreReader, rd: string): boolean {
  return tx.resources({ resourceDefinition: rd }).some((r) => !r.flags.includes("DISKLESS"));
}

const rank = (c: ResourceCreate): number => (c.nodeId === undefined ? 1 : 0);

/** POST a list (the CLI): all are created in one transaction, or none. */
async function createList(ctx: ApiContext, req: ApiRequest): Promise<ApiReply> {
  const raw = parseBody(req.body);
  if (!Array.isArray(raw) || raw.length === 0) {
    throw parseError("The request body must be a non-empty JSON array of ResourceCreate objects.");
  }
  const creates = raw.map((item, i) =>
    readResourceCreate(ObjectReader.of(item, `element [${i}]`, `[${i}].`), undefined),
  );
  // Requested node-ids are taken before any is allocated, so that an automatic pick never
  // steals one that a later entry of the same list asks for. Answers keep the list's order.
  const order = creates.map((c, i) => ({ c, i })).sort((a, b) => rank(a.c) - rank(b.c));
  const rcs = await ctx.store.write((tx) => {
    const out: ApiCallRc[] = new Array<ApiCallRc>(creates.length);
    const joins = hasDiskful(tx, param(req, "rd"));
    for (const { c, i } of order) out[i] = createOne(ctx, tx, param(req, "rd"), c, joins);
    return out;
  });
  return rcReply(ctx, rcs, 201);
}

/** POST one (golinstor, CSI): the node comes from the path. */
async function createSingle(ctx: ApiContext, req: ApiRequest): Promise<ApiReply> {
  const c = readResourceCreate(ObjectReader.body(req.body, true), param(req, "node"));
  const rc = await ctx.store.write((tx) =>
    createOne(ctx, tx, param(req, "rd"), c, hasDiskful(tx, param(req, "rd"))),
  );
  return rcReply(ctx, [rc], 201);
}

function resourceOr404(
  tx: StoreReader,
  req: ApiRequest,
  operation: "modify" | "delete" | "none",
): ResourceRecord {
  const rd = definitionOr404(tx, param(req, "rd"), operation);
  const node = param(req, "node");
  return found(
    tx.resource(rd.name, node),
    "FAIL_NOT_FOUND_RSC",
    "resource",
    operation,
    `Resource '${rd.name}' on node '${node}' not found.`,
  );
}

function listResources(ctx: ApiContext, req: ApiRequest): ApiReply {
  const nodes = nameFilter(req.query, "nodes");
  return json(
    200,
    ctx.store.read((tx) => {
      const rd = definitionOr404(tx, param(req, "rd"), "none");
      const rs = tx
        .resources({ resourceDefinition: rd.name })
        .filter((r) => nodes(r.node) && matchesProps(r.props, req.query));
      return paginate(rs, req.query).map((r) => resourceJson(tx, r, false));
    }),
  );
}

function getResource(ctx: ApiContext, req: ApiRequest): ApiReply {
  return json(
    200,
    ctx.store.read((tx) => resourceJson(tx, resourceOr404(tx, req, "none"), false)),
  );
}

function viewResources(ctx: ApiContext, req: ApiRequest): ApiReply {
  const nodes = nameFilter(req.query, "nodes");
  const rds = nameFilter(req.query, "resources");
  const pools = nameFilter(req.query, "storage_pools");
  return json(
    200,
    ctx.store.read((tx) => {
      const rs = tx
        .resources()
        .filter(
          (r) =>
            nodes(r.node) &&
            rds(r.resourceDefinition) &&
            pools(r.storagePool) &&
            matchesProps(r.props, req.query),
        );
      return paginate(rs, req.query).map((r) => resourceJson(tx, r, true));
    }),
  );
}

function listVolumes(ctx: ApiContext, req: ApiRequest): ApiReply {
  return json(
    200,
    ctx.store.read((tx) => {
      const r = resourceOr404(tx, req, "none");
      return paginate(tx.volumeDefinitions(r.resourceDefinition), req.query).map((v) =>
        volumeJson(tx, r, v),
      );
    }),
  );
}

function getVolume(ctx: ApiContext, req: ApiRequest): ApiReply {
  return json(
    200,
    ctx.store.read((tx) => {
      const r = resourceOr404(tx, req, "none");
      const s = param(req, "nr");
      const v = /^\d{1,5}$/.test(s)
        ? tx.volumeDefinition(r.resourceDefinition, Number(s))
        : undefined;
      return volumeJson(
        tx,
        r,
        found(
          v,
          "FAIL_NOT_FOUND_VLM",
          "volume",
          "none",
          `Volume ${s} of resource '${r.resourceDefinition}' on node '${r.node}' not found.`,
        ),
      );
    }),
  );
}

async function modifyResource(ctx: ApiContext, req: ApiRequest): Promise<ApiReply> {
  const body = ObjectReader.body(req.body);
  const { r, warnings } = await ctx.store.write((tx) => {
    const old = resourceOr404(tx, req, "modify");
    const m = modifyProps(old.props, body, "resource");
    tx.putResource({ ...old, props: m.props });
    return { r: old, warnings: m.warnings };
  });
  return rcReply(
    ctx,
    [
      okRc(
        "MODIFIED",
        "resource",
        "modify",
        `Resource '${r.resourceDefinition}' on node '${r.node}' modified.`,
        { RscDfn: r.resourceDefinition, Node: r.node },
      ),
      ...warnings,
    ],
    200,
  );
}

async function deleteResource(ctx: ApiContext, req: ApiRequest): Promise<ApiReply> {
  const r = await ctx.store.write((tx) => {
    const old = resourceOr404(tx, req, "delete");
    tx.deleteResource(old.resourceDefinition, old.node);
    return old;
  });
  return rcReply(
    ctx,
    [
      okRc(
        "DELETED",
        "resource",
        "delete",
        `Resource '${r.resourceDefinition}' on node '${r.node}' deleted.`,
        { RscDfn: r.resourceDefinition, Node: r.node },
      ),
    ],
    200,
  );
}

export const resourceRoutes: Route[] = [
  { method: "GET", url: "/v1/resource-definitions/:rd/resources", handler: listResources },
  { method: "POST", url: "/v1/resource-definitions/:rd/resources", handler: createList },
  { method: "GET", url: "/v1/resource-definitions/:rd/resources/:node", handler: getResource },
  { method: "POST", url: "/v1/resource-definitions/:rd/resources/:node", handler: createSingle },
  { method: "PUT", url: "/v1/resource-definitions/:rd/resources/:node", handler: modifyResource },
  {
    method: "DELETE",
    url: "/v1/resource-definitions/:rd/resources/:node",
    handler: deleteResource,
  },
  {
    method: "GET",
    url: "/v1/resource-definitions/:rd/resources/:node/volumes",
    handler: listVolumes,
  },
  {
    method: "GET",
    url: "/v1/resource-definitions/:rd/resources/:node/volumes/:nr",
    handler: getVolume,
  },
  { method: "GET", url: "/v1/view/resources", handler: viewResources },
];
