//! Nodes, their network interfaces, and their storage pools (`/v1/nodes/...`,
//! `/v1/view/storage-pools`). Without satellites yet, every node is OFFLINE and pools report no
//! capacity; the desired state is complete.

import { isIP } from "node:net";
import { apiError, type ApiCallRc } from "./api_call_rc.js";
import {
  checkName,
  checkProps,
  found,
  json,
  modifyProps,
  okRc,
  param,
  providerKinds,
  rcReply,
  type ApiContext,
  type ApiRequest,
  type ApiReply,
  type Route,
} from "./api_common.js";
import { matchesProps, nameFilter, ObjectReader, paginate } from "./input.js";
import type { JsonValue } from "./json.js";
import {
  defaultDisklessPool,
  type EncryptionType,
  type NetInterfaceRecord,
  type NodeRecord,
  type NodeType,
  type ProviderKind,
  type StoragePoolRecord,
  type StoreReader,
} from "./store/store.js";

const nodeTypes: readonly NodeType[] = ["CONTROLLER", "SATELLITE", "COMBINED", "AUXILIARY"];
const encryptionTypes: readonly EncryptionType[] = ["PLAIN", "SSL"];
const thinKinds: ReadonlySet<ProviderKind> = new Set(["LVM_THIN", "ZFS_THIN", "FILE_THIN"]);
const snapshotKinds: ReadonlySet<ProviderKind> = new Set([
  "LVM_THIN",
  "ZFS",
  "ZFS_THIN",
  "FILE_THIN",
]);

const satellitePortDefault: Record<EncryptionType, number> = { PLAIN: 3366, SSL: 3367 };

export function netInterfaceJson(n: NetInterfaceRecord): JsonValue {
  return {
    name: n.name,
    address: n.address,
    satellite_port: n.satellitePort ?? undefined,
    satellite_encryption_type: n.encryptionType,
    is_active: n.isActive,
    uuid: n.uuid,
  };
}

export function nodeJson(n: NodeRecord): JsonValue {
  return {
    name: n.name,
    type: n.type,
    flags: n.flags,
    props: n.props,
    net_interfaces: n.netInterfaces.map(netInterfaceJson),
    // No satellite connections yet: the controller has never heard from any node.
    connection_status: "OFFLINE",
    uuid: n.uuid,
    storage_providers: [],
    resource_layers: [],
  };
}

export function storagePoolJson(p: StoragePoolRecord): JsonValue {
  return {
    storage_pool_name: p.name,
    node_name: p.node,
    provider_kind: p.providerKind,
    props: p.props,
    static_traits: {
      Provisioning: thinKinds.has(p.providerKind) ? "Thin" : "Fat",
      SupportsSnapshots: String(snapshotKinds.has(p.providerKind)),
    },
    free_space_mgr_name: `${p.node};${p.name}`,
    uuid: p.uuid,
    reports: [],
    supports_snapshots: snapshotKinds.has(p.providerKind),
    shared_space: p.sharedSpace ?? undefined,
    external_locking: p.externalLocking,
  };
}

function nodeOr404(
  tx: StoreReader,
  name: string,
  operation: "create" | "modify" | "delete" | "none",
): NodeRecord {
  return found(
    tx.node(name),
    "FAIL_NOT_FOUND_NODE",
    "node",
    operation,
    `Node '${name}' not found.`,
  );
}

/** Reads one NetInterface object; `first` picks defaults for a node's first interface. */
function readNetInterface(
  ctx: ApiContext,
  r: ObjectReader,
  operation: "create" | "modify",
  first: boolean,
): NetInterfaceRecord {
  const name = checkName(
    r.strReq("name"),
    "FAIL_INVLD_NET_NAME",
    "netInterface",
    operation,
    "network interface",
  );
  const address = r.strReq("address").trim();
  if (isIP(address) === 0) {
    throw apiError(
      "FAIL_INVLD_NET_ADDR",
      "netInterface",
      operation,
      `The address '${address}' is not an IP address.`,
    );
  }
  const encryptionType =
    r.enumOf("satellite_encryption_type", encryptionTypes, {
      code: "FAIL_INVLD_ENCRYPT_TYPE",
      object: "netInterface",
      operation,
    }) ?? "PLAIN";
  const port = r.int("satellite_port", 1, 65535);
  return {
    name,
    address,
    satellitePort: port ?? (first ? satellitePortDefault[encryptionType] : null),
    encryptionType,
    isActive: r.bool("is_active") ?? first,
    uuid: ctx.newUuid(),
  };
}

function listNodes(ctx: ApiContext, req: ApiRequest): ApiReply {
  const wanted = nameFilter(req.query, "nodes");
  const nodes = ctx.store
    .read((tx) => tx.nodes())
    .filter((n) => wanted(n.name) && matchesProps(n.props, req.query));
  return json(200, paginate(nodes, req.query).map(nodeJson));
}

function getNode(ctx: ApiContext, req: ApiRequest): ApiReply {
  return json(200, nodeJson(ctx.store.read((tx) => nodeOr404(tx, param(req, "node"), "none"))));
}

async function createNode(ctx: ApiContext, req: ApiRequest): Promise<ApiReply> {
  const body = ObjectReader.body(req.body);
  const name = checkName(body.strReq("name"), "FAIL_INVLD_NODE_NAME", "node", "create", "node");
  const type = body.enumOf("type", nodeTypes, {
    code: "FAIL_INVLD_NODE_TYPE",
    object: "node",
    operation: "create",
  });
  if (type === undefined)
    throw apiError("FAIL_INVLD_NODE_TYPE", "node", "create", "The field 'type' is required.");
  const props = checkProps(body.props("props") ?? {}, "node", "create");
  const nifs = (body.objList("net_interfaces") ?? []).map((r, i) =>
    readNetInterface(ctx, r, "create", i === 0),
  );
  if (new Set(nifs.map((n) => n.name.toLowerCase())).size !== nifs.length) {
    throw apiError(
      "FAIL_EXISTS_NET_IF",
      "netInterface",
      "create",
      "Two network interfaces have the same name.",
    );
  }
  const active = nifs.find((n) => n.isActive);
  if (active !== undefined) props["CurStltConnName"] ??= active.name;
  const node: NodeRecord = {
    name,
    type,
    flags: [],
    props,
    netInterfaces: nifs,
    uuid: ctx.newUuid(),
  };
  await ctx.store.write((tx) => {
    if (tx.node(name) !== undefined) {
      throw apiError("FAIL_EXISTS_NODE", "node", "create", `Node '${name}' already exists.`);
    }
    tx.putNode(node);
    // LINSTOR gives every node a pool for diskless resources.
    tx.putStoragePool({
      node: name,
      name: defaultDisklessPool,
      providerKind: "DISKLESS",
      props: {},
      sharedSpace: null,
      externalLocking: false,
      uuid: ctx.newUuid(),
    });
  });
  return rcReply(
    ctx,
    [okRc("CREATED", "node", "create", `New node '${name}' registered.`, { Node: name })],
    201,
  );
}

async function modifyNode(ctx: ApiContext, req: ApiRequest): Promise<ApiReply> {
  const body = ObjectReader.body(req.body);
  const type = body.enumOf("node_type", nodeTypes, {
    code: "FAIL_INVLD_NODE_TYPE",
    object: "node",
    operation: "modify",
  });
  let warnings: ApiCallRc[] = [];
  const name = await ctx.store.write((tx) => {
    const node = nodeOr404(tx, param(req, "node"), "modify");
    const m = modifyProps(node.props, body, "node");
    warnings = m.warnings;
    tx.putNode({ ...node, type: type ?? node.type, props: m.props });
    return node.name;
  });
  return rcReply(
    ctx,
    [okRc("MODIFIED", "node", "modify", `Node '${name}' modified.`, { Node: name }), ...warnings],
    200,
  );
}

async function deleteNode(ctx: ApiContext, req: ApiRequest): Promise<ApiReply> {
  const name = await ctx.store.write((tx) => {
    const node = nodeOr404(tx, param(req, "node"), "delete");
    const used = tx.resources({ node: node.name });
    if (used.length > 0) {
      throw apiError("FAIL_IN_USE", "node", "delete", `Node '${node.name}' still has resources.`, {
        details: `Resources: ${used.map((r) => r.resourceDefinition).join(", ")}.`,
        correction: "Delete the resources on the node first.",
      });
    }
    tx.deleteNode(node.name);
    return node.name;
  });
  return rcReply(
    ctx,
    [okRc("DELETED", "node", "delete", `Node '${name}' deleted.`, { Node: name })],
    200,
  );
}

function netInterfaceOr404(
  node: NodeRecord,
  name: string,
  operation: "modify" | "delete" | "none",
): NetInterfaceRecord {
  return found(
    node.netInterfaces.find((n) => n.name.toLowerCase() === name.toLowerCase()),
    "FAIL_NOT_FOUND_NET_IF",
    "netInterface",
    operation,
    `Network interface '${name}' of node '${node.name}' not found.`,
  );
}

function listNetInterfaces(ctx: ApiContext, req: ApiRequest): ApiReply {
  const node = ctx.store.read((tx) => nodeOr404(tx, param(req, "node"), "none"));
  return json(200, node.netInterfaces.map(netInterfaceJson));
}

function getNetInterface(ctx: ApiContext, req: ApiRequest): ApiReply {
  const node = ctx.store.read((tx) => nodeOr404(tx, param(req, "node"), "none"));
  return json(200, netInterfaceJson(netInterfaceOr404(node, param(req, "nif"), "none")));
}

async function createNetInterface(ctx: ApiContext, req: ApiRequest): Promise<ApiReply> {
  const nif = readNetInterface(ctx, ObjectReader.body(req.body), "create", false);
  const node = await ctx.store.write((tx) => {
    const n = nodeOr404(tx, param(req, "node"), "create");
    if (n.netInterfaces.some((x) => x.name.toLowerCase() === nif.name.toLowerCase())) {
      throw apiError(
        "FAIL_EXISTS_NET_IF",
        "netInterface",
        "create",
        `Network interface '${nif.name}' of node '${n.name}' already exists.`,
      );
    }
    tx.putNode({ ...n, netInterfaces: [...n.netInterfaces, nif] });
    return n.name;
  });
  return rcReply(
    ctx,
    [
      okRc(
        "CREATED",
        "netInterface",
        "create",
        `New network interface '${nif.name}' on node '${node}' created.`,
        { Node: node, NetIf: nif.name },
      ),
    ],
    201,
  );
}

async function modifyNetInterface(ctx: ApiContext, req: ApiRequest): Promise<ApiReply> {
  const body = ObjectReader.body(req.body);
  const result = await ctx.store.write((tx) => {
    const n = nodeOr404(tx, param(req, "node"), "modify");
    const old = netInterfaceOr404(n, param(req, "nif"), "modify");
    // The path names the interface; a body without a name keeps it.
    const merged = ObjectReader.of(
      {
        name: old.name,
        address: body.raw("address") ?? old.address,
        satellite_port: body.raw("satellite_port") ?? old.satellitePort,
        satellite_encryption_type: body.raw("satellite_encryption_type") ?? old.encryptionType,
        is_active: body.raw("is_active") ?? old.isActive,
      },
      "request body",
      "",
    );
    const nif = { ...readNetInterface(ctx, merged, "modify", false), uuid: old.uuid };
    // One interface carries the satellite connection: activating one moves it there.
    const others = n.netInterfaces.map((x) => (nif.isActive ? { ...x, isActive: false } : x));
    const props = nif.isActive ? { ...n.props, CurStltConnName: nif.name } : n.props;
    tx.putNode({ ...n, props, netInterfaces: others.map((x) => (x.uuid === old.uuid ? nif : x)) });
    return { node: n.name, nif: old.name };
  });
  return rcReply(
    ctx,
    [
      okRc(
        "MODIFIED",
        "netInterface",
        "modify",
        `Network interface '${result.nif}' on node '${result.node}' modified.`,
        { Node: result.node, NetIf: result.nif },
      ),
    ],
    200,
  );
}

async function deleteNetInterface(ctx: ApiContext, req: ApiRequest): Promise<ApiReply> {
  const result = await ctx.store.write((tx) => {
    const n = nodeOr404(tx, param(req, "node"), "delete");
    const nif = netInterfaceOr404(n, param(req, "nif"), "delete");
    if (nif.isActive) {
      throw apiError(
        "FAIL_IN_USE",
        "netInterface",
        "delete",
        `Network interface '${nif.name}' is the active satellite connection of node '${n.name}'.`,
      );
    }
    tx.putNode({ ...n, netInterfaces: n.netInterfaces.filter((x) => x !== nif) });
    return { node: n.name, nif: nif.name };
  });
  return rcReply(
    ctx,
    [
      okRc(
        "DELETED",
        "netInterface",
        "delete",
        `Network interface '${result.nif}' on node '${result.node}' deleted.`,
        { Node: result.node, NetIf: result.nif },
      ),
    ],
    200,
  );
}

function poolOr404(
  tx: StoreReader,
  node: string,
  name: string,
  operation: "modify" | "delete" | "none",
): StoragePoolRecord {
  return found(
    tx.storagePool(node, name),
    "FAIL_NOT_FOUND_STOR_POOL",
    "storagePool",
    operation,
    `Storage pool '${name}' on node '${node}' not found.`,
  );
}

function filterPools(pools: StoragePoolRecord[], req: ApiRequest): JsonValue {
  const nodes = nameFilter(req.query, "nodes");
  const names = nameFilter(req.query, "storage_pools");
  const kept = pools.filter(
    (p) => nodes(p.node) && names(p.name) && matchesProps(p.props, req.query),
  );
  return paginate(kept, req.query).map(storagePoolJson);
}

function listNodePools(ctx: ApiContext, req: ApiRequest): ApiReply {
  const pools = ctx.store.read((tx) =>
    tx.storagePools(nodeOr404(tx, param(req, "node"), "none").name),
  );
  return json(200, filterPools(pools, req));
}

function viewPools(ctx: ApiContext, req: ApiRequest): ApiReply {
  return json(
    200,
    filterPools(
      ctx.store.read((tx) => tx.storagePools()),
      req,
    ),
  );
}

function getPool(ctx: ApiContext, req: ApiRequest): ApiReply {
  return json(
    200,
    storagePoolJson(
      ctx.store.read((tx) =>
        poolOr404(tx, nodeOr404(tx, param(req, "node"), "none").name, param(req, "pool"), "none"),
      ),
    ),
  );
}

async function createPool(ctx: ApiContext, req: ApiRequest): Promise<ApiReply> {
  const body = ObjectReader.body(req.body);
  const name = checkName(
    body.strReq("storage_pool_name"),
    "FAIL_INVLD_STOR_POOL_NAME",
    "storagePool",
    "create",
    "storage pool",
  );
  const kind = body.enumOf("provider_kind", providerKinds, {
    code: "FAIL_INVLD_PROVIDER",
    object: "storagePool",
    operation: "create",
  });
  if (kind === undefined)
    throw apiError(
      "FAIL_INVLD_PROVIDER",
      "storagePool",
      "create",
      "The field 'provider_kind' is required.",
    );
  const props = checkProps(body.props("props") ?? {}, "storagePool", "create");
  const sharedSpace = body.str("shared_space") ?? null;
  const externalLocking = body.bool("external_locking") ?? false;
  const node = await ctx.store.write((tx) => {
    const n = found(
      tx.node(param(req, "node")),
      "FAIL_NOT_FOUND_NODE",
      "storagePool",
      "create",
      `Node '${param(req, "node")}' not found.`,
    );
    if (tx.storagePool(n.name, name) !== undefined) {
      throw apiError(
        "FAIL_EXISTS_STOR_POOL",
        "storagePool",
        "create",
        `Storage pool '${name}' on node '${n.name}' already exists.`,
      );
    }
    tx.putStoragePool({
      node: n.name,
      name,
      providerKind: kind,
      props,
      sharedSpace,
      externalLocking,
      uuid: ctx.newUuid(),
    });
    return n.name;
  });
  return rcReply(
    ctx,
    [
      okRc(
        "CREATED",
        "storagePool",
        "create",
        `New storage pool '${name}' on node '${node}' registered.`,
        { Node: node, StorPool: name },
      ),
    ],
    201,
  );
}

async function modifyPool(ctx: ApiContext, req: ApiRequest): Promise<ApiReply> {
  const body = ObjectReader.body(req.body);
  let warnings: ApiCallRc[] = [];
  const p = await ctx.store.write((tx) => {
    const pool = poolOr404(
      tx,
      nodeOr404(tx, param(req, "node"), "modify").name,
      param(req, "pool"),
      "modify",
    );
    const m = modifyProps(pool.props, body, "storagePool");
    warnings = m.warnings;
    tx.putStoragePool({ ...pool, props: m.props });
    return pool;
  });
  return rcReply(
    ctx,
    [
      okRc(
        "MODIFIED",
        "storagePool",
        "modify",
        `Storage pool '${p.name}' on node '${p.node}' modified.`,
        { Node: p.node, StorPool: p.name },
      ),
      ...warnings,
    ],
    200,
  );
}

async function deletePool(ctx: ApiContext, req: ApiRequest): Promise<ApiReply> {
  const p = await ctx.store.write((tx) => {
    const pool = poolOr404(
      tx,
      nodeOr404(tx, param(req, "node"), "delete").name,
      param(req, "pool"),
      "delete",
    );
    const used = tx.resources({ node: pool.node, storagePool: pool.name });
    if (used.length > 0) {
      throw apiError(
        "FAIL_IN_USE",
        "storagePool",
        "delete",
        `Storage pool '${pool.name}' on node '${pool.node}' is in use.`,
        {
          details: `Resources: ${used.map((r) => r.resourceDefinition).join(", ")}.`,
        },
      );
    }
    tx.deleteStoragePool(pool.node, pool.name);
    return pool;
  });
  return rcReply(
    ctx,
    [
      okRc(
        "DELETED",
        "storagePool",
        "delete",
        `Storage pool '${p.name}' on node '${p.node}' deleted.`,
        { Node: p.node, StorPool: p.name },
      ),
    ],
    200,
  );
}

export const nodeRoutes: Route[] = [
  { method: "GET", url: "/v1/nodes", handler: listNodes },
  { method: "POST", url: "/v1/nodes", handler: createNode },
  { method: "GET", url: "/v1/nodes/:node", handler: getNode },
  { method: "PUT", url: "/v1/nodes/:node", handler: modifyNode },
  { method: "DELETE", url: "/v1/nodes/:node", handler: deleteNode },
  { method: "GET", url: "/v1/nodes/:node/net-interfaces", handler: listNetInterfaces },
  { method: "POST", url: "/v1/nodes/:node/net-interfaces", handler: createNetInterface },
  { method: "GET", url: "/v1/nodes/:node/net-interfaces/:nif", handler: getNetInterface },
  { method: "PUT", url: "/v1/nodes/:node/net-interfaces/:nif", handler: modifyNetInterface },
  { method: "DELETE", url: "/v1/nodes/:node/net-interfaces/:nif", handler: deleteNetInterface },
  { method: "GET", url: "/v1/nodes/:node/storage-pools", handler: listNodePools },
  { method: "POST", url: "/v1/nodes/:node/storage-pools", handler: createPool },
  { method: "GET", url: "/v1/nodes/:node/storage-pools/:pool", handler: getPool },
  { method: "PUT", url: "/v1/nodes/:node/storage-pools/:pool", handler: modifyPool },
  { method: "DELETE", url: "/v1/nodes/:node/storage-pools/:pool", handler: deletePool },
  { method: "GET", url: "/v1/view/storage-pools", handler: viewPools },
];
