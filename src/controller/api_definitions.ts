//! Resource definitions and their volume definitions. The controller allocates what replicas
//! must agree on here: a definition's TCP port (7000..7999, LINSTOR's default range) and
//! shared secret, and each volume's device minor (from 1000).

import { apiError, parseError } from "./api_call_rc.js";
import {
  checkName,
  checkProps,
  found,
  json,
  lowestFree,
  modifyFlags,
  modifyProps,
  okRc,
  param,
  pathVolumeNumber,
  rcReply,
  readLayerStack,
  volumeNumberMax,
  type ApiContext,
  type ApiReply,
  type ApiRequest,
  type Route,
} from "./api_common.js";
import { matchesProps, nameFilter, ObjectReader, paginate, queryBool } from "./input.js";
import type { JsonValue } from "./json.js";
import {
  defaultResourceGroup,
  type Props,
  type ResourceDefinitionRecord,
  type StoreReader,
  type StoreWriter,
  type VolumeDefinitionRecord,
} from "./store/store.js";

const transportTypes = ["IP", "RDMA", "TCP"] as const;

export const portMin = 7000;
export const portMax = 7999;
export const minorMin = 1000;
export const minorMax = 49999;
/** 1 KiB to 1 PiB: the sizes a volume definition may have. */
const sizeKibMax = 2 ** 40;
const peerSlotsDefault = 7;

type Op = "create" | "modify";

export function volumeDefinitionJson(v: VolumeDefinitionRecord): JsonValue {
  return {
    volume_number: v.volumeNumber,
    size_kib: v.sizeKib,
    props: v.props,
    flags: v.flags,
    layer_data: [
      {
        type: "DRBD",
        data: {
          resource_name_suffix: "",
          volume_number: v.volumeNumber,
          minor_number: v.minorNumber,
        },
      },
      { type: "STORAGE" },
    ],
    uuid: v.uuid,
  };
}

export function resourceDefinitionJson(
  d: ResourceDefinitionRecord,
  vds?: VolumeDefinitionRecord[],
): JsonValue {
  return {
    name: d.name,
    external_name: d.externalName ?? undefined,
    props: d.props,
    flags: d.flags,
    layer_data: [
      {
        type: "DRBD",
        data: {
          resource_name_suffix: "",
          peer_slots: d.peerSlots ?? peerSlotsDefault,
          al_stripes: 1,
          al_stripe_size_kib: 32,
          port: d.port,
          transport_type: d.transportType,
          secret: d.secret,
          down: false,
        },
      },
      { type: "STORAGE" },
    ],
    uuid: d.uuid,
    resource_group_name: d.resourceGroup,
    volume_definitions: vds?.map(volumeDefinitionJson),
  };
}

export function definitionOr404(
  tx: StoreReader,
  name: string,
  operation: Op | "delete" | "none",
): ResourceDefinitionRecord {
  return found(
    tx.resourceDefinition(name),
    "FAIL_NOT_FOUND_RSC_DFN",
    "resourceDefinition",
    operation,
    `Resource definition '${name}' not found.`,
  );
}

// ---- resource definitions ----

function listDefinitions(ctx: ApiContext, req: ApiRequest): ApiReply {
  const wanted = nameFilter(req.query, "resource_definitions");
  const withVds = queryBool(req.query, "with_volume_definitions");
  const body = ctx.store.read((tx) => {
    const rds = tx
      .resourceDefinitions()
      .filter((d) => wanted(d.name) && matchesProps(d.props, req.query));
    return paginate(rds, req.query).map((d) =>
      resourceDefinitionJson(d, withVds ? tx.volumeDefinitions(d.name) : undefined),
    );
  });
  return json(200, body);
}

function getDefinition(ctx: ApiContext, req: ApiRequest): ApiReply {
  return json(
    200,
    resourceDefinitionJson(ctx.store.read((tx) => definitionOr404(tx, param(req, "rd"), "none"))),
  );
}

function checkPort(tx: StoreReader, port: number, self: string | undefined, operation: Op): void {
  const user = tx.resourceDefinitions().find((d) => d.port === port && d.name !== self);
  if (user !== undefined) {
    throw apiError(
      "FAIL_INVLD_RSC_PORT",
      "resourceDefinition",
      operation,
      `TCP port ${port} is already used by resource definition '${user.name}'.`,
    );
  }
}

export interface ResourceDefinitionSpec {
  name: string;
  externalName: string | null;
  groupName: string;
  props: Props;
  /** Requested TCP port; undefined picks the lowest free one. */
  port: number | undefined;
  /** Requested secret; undefined generates one. */
  secret: string | undefined;
  peerSlots: number | null;
  transport: string;
}

/** Creates a resource definition inside a write (create and spawn share it). */
export function insertResourceDefinition(
  ctx: ApiContext,
  tx: StoreWriter,
  spec: ResourceDefinitionSpec,
): ResourceDefinitionRecord {
  const { name, externalName, groupName, props, port, secret, peerSlots, transport } = spec;
  if (tx.resourceDefinition(name) !== undefined) {
    throw apiError(
      "FAIL_EXISTS_RSC_DFN",
      "resourceDefinition",
      "create",
      `Resource definition '${name}' already exists.`,
      { objRefs: { RscDfn: name } },
    );
  }
  const group = found(
    tx.resourceGroup(groupName),
    "FAIL_NOT_FOUND_RSC_GRP",
    "resourceDefinition",
    "create",
    `Resource group '${groupName}' not found.`,
  );
  if (
    externalName !== null &&
    tx.resourceDefinitions().some((d) => d.externalName === externalName)
  ) {
    throw apiError(
      "FAIL_EXISTS_EXT_NAME",
      "resourceDefinition",
      "create",
      `External name '${externalName}' is already used.`,
    );
  }
  if (port !== undefined) checkPort(tx, port, undefined, "create");
  const chosen =
    port ??
    lowestFree(
      tx.resourceDefinitions().map((d) => d.port),
      portMin,
      portMax,
    );
  if (chosen === undefined)
    throw apiError(
      "FAIL_POOL_EXHAUSTED_TCP_PORT",
      "resourceDefinition",
      "create",
      `No free TCP port in ${portMin}..${portMax}.`,
    );
  const rec: ResourceDefinitionRecord = {
    name,
    externalName,
    resourceGroup: group.name,
    props,
    flags: [],
    port: chosen,
    secret: secret ?? ctx.newSecret(),
    peerSlots,
    transportType: transport,
    uuid: ctx.newUuid(),
  };
  tx.putResourceDefinition(rec);
  return rec;
}

async function createDefinition(ctx: ApiContext, req: ApiRequest): Promise<ApiReply> {
  const body = ObjectReader.body(req.body);
  const rd = body.objReq("resource_definition");
  const name = checkName(
    rd.strReq("name"),
    "FAIL_INVLD_RSC_NAME",
    "resourceDefinition",
    "create",
    "resource definition",
  );
  const externalName = rd.str("external_name") ?? null;
  const props = checkProps(rd.props("props") ?? {}, "resourceDefinition", "create");
  const groupName = rd.str("resource_group_name") ?? defaultResourceGroup;
  const port = body.int("drbd_port", 1, 65535);
  const secret = body.str("drbd_secret");
  if (secret !== undefined && (secret.length === 0 || secret.length > 64)) {
    throw parseError("The field 'drbd_secret' must be 1 to 64 characters.");
  }
  const peerSlots = body.int("drbd_peer_slots", 1, 31) ?? null;
  const transport =
    body.enumOf("drbd_transport_type", transportTypes, {
      code: "FAIL_INVLD_TRANSPORT_TYPE",
      object: "resourceDefinition",
      operation: "create",
    }) ?? "IP";
  await ctx.store.write((tx) =>
    insertResourceDefinition(ctx, tx, {
      name,
      externalName,
      groupName,
      props,
      port,
      secret,
      peerSlots,
      transport,
    }),
  );
  return rcReply(
    ctx,
    [
      okRc(
        "CREATED",
        "resourceDefinition",
        "create",
        `New resource definition '${name}' created.`,
        { RscDfn: name },
      ),
    ],
    201,
  );
}

async function modifyDefinition(ctx: ApiContext, req: ApiRequest): Promise<ApiReply> {
  const body = ObjectReader.body(req.body);
  const port = body.int("drbd_port", 1, 65535);
  const peerSlots = body.int("drbd_peer_slots", 1, 31);
  const groupName = body.str("resource_group");
  readLayerStack(body, "modify");
  const { name, warnings } = await ctx.store.write((tx) => {
    const d = definitionOr404(tx, param(req, "rd"), "modify");
    const group =
      groupName === undefined
        ? undefined
        : found(
            tx.resourceGroup(groupName),
            "FAIL_NOT_FOUND_RSC_GRP",
            "resourceDefinition",
            "modify",
            `Resource group '${groupName}' not found.`,
          );
    if (port !== undefined) checkPort(tx, port, d.name, "modify");
    const m = modifyProps(d.props, body, "resourceDefinition");
    tx.putResourceDefinition({
      ...d,
      props: m.props,
      port: port ?? d.port,
      peerSlots: peerSlots ?? d.peerSlots,
      resourceGroup: group?.name ?? d.resourceGroup,
    });
    return { name: d.name, warnings: m.warnings };
  });
  return rcReply(
    ctx,
    [
      okRc("MODIFIED", "resourceDefinition", "modify", `Resource definition '${name}' modified.`, {
        RscDfn: name,
      }),
      ...warnings,
    ],
    200,
  );
}

async function deleteDefinition(ctx: ApiContext, req: ApiRequest): Promise<ApiReply> {
  const name = await ctx.store.write((tx) => {
    const d = definitionOr404(tx, param(req, "rd"), "delete");
    tx.deleteResourceDefinition(d.name);
    return d.name;
  });
  return rcReply(
    ctx,
    [
      okRc("DELETED", "resourceDefinition", "delete", `Resource definition '${name}' deleted.`, {
        RscDfn: name,
      }),
    ],
    200,
  );
}

// ---- volume definitions ----

function volumeDefinitionOr404(
  tx: StoreReader,
  req: ApiRequest,
  operation: Op | "delete" | "none",
): VolumeDefinitionRecord {
  const d = definitionOr404(tx, param(req, "rd"), operation);
  const nr = pathVolumeNumber(req, "volumeDefinition", operation);
  return found(
    tx.volumeDefinition(d.name, nr),
    "FAIL_NOT_FOUND_VLM_DFN",
    "volumeDefinition",
    operation,
    `Volume definition ${nr} of resource definition '${d.name}' not found.`,
  );
}

function listVolumeDefinitions(ctx: ApiContext, req: ApiRequest): ApiReply {
  const vds = ctx.store.read((tx) =>
    tx.volumeDefinitions(definitionOr404(tx, param(req, "rd"), "none").name),
  );
  return json(200, paginate(vds, req.query).map(volumeDefinitionJson));
}

function getVolumeDefinition(ctx: ApiContext, req: ApiRequest): ApiReply {
  return json(
    200,
    volumeDefinitionJson(ctx.store.read((tx) => volumeDefinitionOr404(tx, req, "none"))),
  );
}

export function readSizeKib(r: ObjectReader, operation: Op, required: boolean): number | undefined {
  const size = required
    ? r.intReq("size_kib", Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)
    : r.int("size_kib", Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  if (size !== undefined && (size < 1 || size > sizeKibMax)) {
    throw apiError(
      "FAIL_INVLD_VLM_SIZE",
      "volumeDefinition",
      operation,
      `The volume size ${size} KiB is out of range.`,
      { correction: `Use 1 to ${sizeKibMax} KiB.` },
    );
  }
  return size;
}

export interface VolumeDefinitionSpec {
  /** Requested volume number; undefined picks the lowest free one. */
  requested: number | undefined;
  sizeKib: number;
  props: Props;
  flags: string[];
  /** Requested device minor; undefined picks the lowest free one. */
  minor: number | undefined;
}

/** Creates a volume definition inside a write (create and spawn share it). */
export function insertVolumeDefinition(
  ctx: ApiContext,
  tx: StoreWriter,
  rdName: string,
  spec: VolumeDefinitionSpec,
): VolumeDefinitionRecord {
  const d = definitionOr404(tx, rdName, "create");
  const { requested, sizeKib, props, flags, minor } = spec;
  const used = tx.volumeDefinitions(d.name).map((v) => v.volumeNumber);
  const nr = requested ?? lowestFree(used, 0, volumeNumberMax);
  if (nr === undefined)
    throw apiError(
      "FAIL_POOL_EXHAUSTED_VLM_NR",
      "volumeDefinition",
      "create",
      "No free volume number.",
    );
  if (used.includes(nr)) {
    throw apiError(
      "FAIL_EXISTS_VLM_DFN",
      "volumeDefinition",
      "create",
      `Volume definition ${nr} of resource definition '${d.name}' already exists.`,
    );
  }
  const minors = tx.volumeDefinitions().map((v) => v.minorNumber);
  if (minor !== undefined && minors.includes(minor)) {
    throw apiError(
      "FAIL_INVLD_MINOR_NR",
      "volumeDefinition",
      "create",
      `Minor number ${minor} is already in use.`,
    );
  }
  const chosen = minor ?? lowestFree(minors, minorMin, minorMax);
  if (chosen === undefined)
    throw apiError(
      "FAIL_POOL_EXHAUSTED_MINOR_NR",
      "volumeDefinition",
      "create",
      "No free minor number.",
    );
  const v: VolumeDefinitionRecord = {
    resourceDefinition: d.name,
    volumeNumber: nr,
    sizeKib,
    props,
    flags,
    minorNumber: chosen,
    uuid: ctx.newUuid(),
  };
  tx.putVolumeDefinition(v);
  return v;
}

async function createVolumeDefinition(ctx: ApiContext, req: ApiRequest): Promise<ApiReply> {
  const body = ObjectReader.body(req.body);
  const vd = body.objReq("volume_definition");
  const requested = vd.int("volume_number", Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  if (requested !== undefined && (requested < 0 || requested > volumeNumberMax)) {
    throw apiError(
      "FAIL_INVLD_VLM_NR",
      "volumeDefinition",
      "create",
      `Volume number ${requested} is out of range 0..${volumeNumberMax}.`,
    );
  }
  const sizeKib = readSizeKib(vd, "create", true) as number;
  const props = checkProps(vd.props("props") ?? {}, "volumeDefinition", "create");
  const flags = modifyFlags([], vd.strList("flags"));
  const minor = body.int("drbd_minor_number", Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  if (minor !== undefined && (minor < 0 || minor > 1048575)) {
    throw apiError(
      "FAIL_INVLD_MINOR_NR",
      "volumeDefinition",
      "create",
      `Minor number ${minor} is out of range.`,
    );
  }
  const rec = await ctx.store.write((tx) =>
    insertVolumeDefinition(ctx, tx, param(req, "rd"), { requested, sizeKib, props, flags, minor }),
  );
  return rcReply(
    ctx,
    [
      okRc(
        "CREATED",
        "volumeDefinition",
        "create",
        `New volume definition with number '${rec.volumeNumber}' of resource definition '${rec.resourceDefinition}' created.`,
        { RscDfn: rec.resourceDefinition, VlmNr: String(rec.volumeNumber) },
      ),
    ],
    201,
  );
}

async function modifyVolumeDefinition(ctx: ApiContext, req: ApiRequest): Promise<ApiReply> {
  const body = ObjectReader.body(req.body);
  const sizeKib = readSizeKib(body, "modify", false);
  const edits = body.strList("flags");
  const { v, warnings } = await ctx.store.write((tx) => {
    const old = volumeDefinitionOr404(tx, req, "modify");
    // Shrinking deployed replicas would cut off data the file system may still use.
    if (
      sizeKib !== undefined &&
      sizeKib < old.sizeKib &&
      tx.resources({ resourceDefinition: old.resourceDefinition }).length > 0
    ) {
      throw apiError(
        "FAIL_INVLD_VLM_SIZE",
        "volumeDefinition",
        "modify",
        `Volume definition ${old.volumeNumber} of '${old.resourceDefinition}' has resources and cannot shrink.`,
        {
          correction: "Delete the resources first, or choose a size of at least the current one.",
        },
      );
    }
    const m = modifyProps(old.props, body, "volumeDefinition");
    const rec = {
      ...old,
      sizeKib: sizeKib ?? old.sizeKib,
      props: m.props,
      flags: modifyFlags(old.flags, edits),
    };
    tx.putVolumeDefinition(rec);
    return { v: rec, warnings: m.warnings };
  });
  return rcReply(
    ctx,
    [
      okRc(
        "MODIFIED",
        "volumeDefinition",
        "modify",
        `Volume definition with number '${v.volumeNumber}' of resource definition '${v.resourceDefinition}' modified.`,
        { RscDfn: v.resourceDefinition, VlmNr: String(v.volumeNumber) },
      ),
      ...warnings,
    ],
    200,
  );
}

async function deleteVolumeDefinition(ctx: ApiContext, req: ApiRequest): Promise<ApiReply> {
  const v = await ctx.store.write((tx) => {
    const old = volumeDefinitionOr404(tx, req, "delete");
    tx.deleteVolumeDefinition(old.resourceDefinition, old.volumeNumber);
    return old;
  });
  return rcReply(
    ctx,
    [
      okRc(
        "DELETED",
        "volumeDefinition",
        "delete",
        `Volume definition with number '${v.volumeNumber}' of resource definition '${v.resourceDefinition}' deleted.`,
        { RscDfn: v.resourceDefinition, VlmNr: String(v.volumeNumber) },
      ),
    ],
    200,
  );
}

export const definitionRoutes: Route[] = [
  { method: "GET", url: "/v1/resource-definitions", handler: listDefinitions },
  { method: "POST", url: "/v1/resource-definitions", handler: createDefinition },
  { method: "GET", url: "/v1/resource-definitions/:rd", handler: getDefinition },
  { method: "PUT", url: "/v1/resource-definitions/:rd", handler: modifyDefinition },
  { method: "DELETE", url: "/v1/resource-definitions/:rd", handler: deleteDefinition },
  {
    method: "GET",
    url: "/v1/resource-definitions/:rd/volume-definitions",
    handler: listVolumeDefinitions,
  },
  {
    method: "POST",
    url: "/v1/resource-definitions/:rd/volume-definitions",
    handler: createVolumeDefinition,
  },
  {
    method: "GET",
    url: "/v1/resource-definitions/:rd/volume-definitions/:nr",
    handler: getVolumeDefinition,
  },
  {
    method: "PUT",
    url: "/v1/resource-definitions/:rd/volume-definitions/:nr",
    handler: modifyVolumeDefinition,
  },
  {
    method: "DELETE",
    url: "/v1/resource-definitions/:rd/volume-definitions/:nr",
    handler: deleteVolumeDefinition,
  },
];
