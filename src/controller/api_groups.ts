//! Resource groups and their volume groups: the templates that resource definitions are made
//! from. A group's select filter is kept in LINSTOR's wire shape, for placement to read later.

import { apiError } from "./api_call_rc.js";
import {
  checkName,
  checkProps,
  found,
  json,
  layerTypes,
  providerKinds,
  lowestFree,
  modifyFlags,
  modifyProps,
  okRc,
  param,
  pathVolumeNumber,
  rcReply,
  volumeNumberMax,
  type ApiContext,
  type ApiReply,
  type ApiRequest,
  type Route,
} from "./api_common.js";
import { matchesProps, nameFilter, ObjectReader, paginate } from "./input.js";
import type { JsonValue } from "./json.js";
import {
  defaultResourceGroup,
  type AutoSelectFilter,
  type ResourceGroupRecord,
  type StoreReader,
  type VolumeGroupRecord,
} from "./store/store.js";

type Op = "create" | "modify";

/** Reads an AutoSelectFilter: lists stay lists, kinds are checked and answered uppercase. */
export function readSelectFilter(r: ObjectReader, operation: Op): AutoSelectFilter {
  const upperList = (
    key: string,
    allowed: readonly string[],
    code: "FAIL_INVLD_LAYER_KIND" | "FAIL_INVLD_PROVIDER",
  ) =>
    r.strList(key)?.map((s) => {
      const v = s.trim().toUpperCase();
      if (!allowed.includes(v)) {
        throw apiError(
          code,
          "resourceGroup",
          operation,
          `The value '${s}' of '${key}' is not valid.`,
          {
            correction: `Use one of: ${allowed.join(", ")}.`,
          },
        );
      }
      return v;
    });
  const f: AutoSelectFilter = {
    place_count: r.int("place_count", 1, 32),
    additional_place_count: r.int("additional_place_count", 0, 32),
    node_name_list: r.strList("node_name_list"),
    storage_pool: r.str("storage_pool"),
    storage_pool_list: r.strList("storage_pool_list"),
    storage_pool_diskless_list: r.strList("storage_pool_diskless_list"),
    not_place_with_rsc: r.strList("not_place_with_rsc"),
    not_place_with_rsc_regex: r.str("not_place_with_rsc_regex"),
    replicas_on_same: r.strList("replicas_on_same"),
    replicas_on_different: r.strList("replicas_on_different"),
    x_replicas_on_different_map: r.intMap("x_replicas_on_different_map"),
    layer_stack: upperList("layer_stack", layerTypes, "FAIL_INVLD_LAYER_KIND"),
    provider_list: upperList("provider_list", providerKinds, "FAIL_INVLD_PROVIDER"),
    diskless_on_remaining: r.bool("diskless_on_remaining"),
    diskless_type: r.str("diskless_type"),
    overprovision: r.num("overprovision"),
    port_count: r.int("port_count", 1, 65535),
  };
  // Keep only what was given, so that a modify merges field by field.
  return Object.fromEntries(
    Object.entries(f).filter(([, v]) => v !== undefined),
  ) as AutoSelectFilter;
}

export function resourceGroupJson(g: ResourceGroupRecord): JsonValue {
  return {
    name: g.name,
    description: g.description,
    props: g.props,
    select_filter: g.selectFilter as JsonValue,
    uuid: g.uuid,
    peer_slots: g.peerSlots ?? undefined,
  };
}

function volumeGroupJson(g: VolumeGroupRecord): JsonValue {
  return { volume_number: g.volumeNumber, props: g.props, flags: g.flags, uuid: g.uuid };
}

function groupOr404(
  tx: StoreReader,
  name: string,
  operation: Op | "delete" | "none",
): ResourceGroupRecord {
  return found(
    tx.resourceGroup(name),
    "FAIL_NOT_FOUND_RSC_GRP",
    "resourceGroup",
    operation,
    `Resource group '${name}' not found.`,
  );
}

// ---- resource groups ----

function listGroups(ctx: ApiContext, req: ApiRequest): ApiReply {
  const wanted = nameFilter(req.query, "resource_groups");
  const groups = ctx.store
    .read((tx) => tx.resourceGroups())
    .filter((g) => wanted(g.name) && matchesProps(g.props, req.query));
  return json(200, paginate(groups, req.query).map(resourceGroupJson));
}

function getGroup(ctx: ApiContext, req: ApiRequest): ApiReply {
  return json(
    200,
    resourceGroupJson(ctx.store.read((tx) => groupOr404(tx, param(req, "rg"), "none"))),
  );
}

async function createGroup(ctx: ApiContext, req: ApiRequest): Promise<ApiReply> {
  const body = ObjectReader.body(req.body);
  const name = checkName(
    body.strReq("name"),
    "FAIL_INVLD_RSC_NAME",
    "resourceGroup",
    "create",
    "resource group",
  );
  const group: ResourceGroupRecord = {
    name,
    description: body.str("description") ?? "",
    props: checkProps(body.props("props") ?? {}, "resourceGroup", "create"),
    selectFilter: readSelectFilter(
      body.obj("select_filter") ?? ObjectReader.of({}, "", ""),
      "create",
    ),
    peerSlots: body.int("peer_slots", 1, 31) ?? null,
    uuid: ctx.newUuid(),
  };
  await ctx.store.write((tx) => {
    if (tx.resourceGroup(name) !== undefined) {
      throw apiError(
        "FAIL_EXISTS_RSC_GRP",
        "resourceGroup",
        "create",
        `Resource group '${name}' already exists.`,
      );
    }
    tx.putResourceGroup(group);
  });
  return rcReply(
    ctx,
    [
      okRc("CREATED", "resourceGroup", "create", `New resource group '${name}' created.`, {
        RscGrp: name,
      }),
    ],
    201,
  );
}

async function modifyGroup(ctx: ApiContext, req: ApiRequest): Promise<ApiReply> {
  const body = ObjectReader.body(req.body);
  const description = body.str("description");
  const filter = body.obj("select_filter");
  const changes = filter === undefined ? {} : readSelectFilter(filter, "modify");
  const peerSlots = body.int("peer_slots", 1, 31);
  const { name, warnings } = await ctx.store.write((tx) => {
    const g = groupOr404(tx, param(req, "rg"), "modify");
    const m = modifyProps(g.props, body, "resourceGroup");
    tx.putResourceGroup({
      ...g,
      description: description ?? g.description,
      props: m.props,
      selectFilter: { ...g.selectFilter, ...changes },
      peerSlots: peerSlots ?? g.peerSlots,
    });
    return { name: g.name, warnings: m.warnings };
  });
  return rcReply(
    ctx,
    [
      okRc("MODIFIED", "resourceGroup", "modify", `Resource group '${name}' modified.`, {
        RscGrp: name,
      }),
      ...warnings,
    ],
    200,
  );
}

async function deleteGroup(ctx: ApiContext, req: ApiRequest): Promise<ApiReply> {
  const name = await ctx.store.write((tx) => {
    const g = groupOr404(tx, param(req, "rg"), "delete");
    if (g.name === defaultResourceGroup) {
      throw apiError(
        "FAIL_IN_USE",
        "resourceGroup",
        "delete",
        `The default resource group '${g.name}' cannot be deleted.`,
      );
    }
    const used = tx.resourceDefinitions(g.name);
    if (used.length > 0) {
      throw apiError(
        "FAIL_IN_USE",
        "resourceGroup",
        "delete",
        `Resource group '${g.name}' still has resource definitions.`,
        {
          details: `Resource definitions: ${used.map((d) => d.name).join(", ")}.`,
        },
      );
    }
    tx.deleteResourceGroup(g.name);
    return g.name;
  });
  return rcReply(
    ctx,
    [
      okRc("DELETED", "resourceGroup", "delete", `Resource group '${name}' deleted.`, {
        RscGrp: name,
      }),
    ],
    200,
  );
}

// ---- volume groups ----

function listVolumeGroups(ctx: ApiContext, req: ApiRequest): ApiReply {
  const vgs = ctx.store.read((tx) =>
    tx.volumeGroups(groupOr404(tx, param(req, "rg"), "none").name),
  );
  return json(200, paginate(vgs, req.query).map(volumeGroupJson));
}

function volumeGroupOr404(
  tx: StoreReader,
  req: ApiRequest,
  operation: Op | "delete" | "none",
): VolumeGroupRecord {
  const g = groupOr404(tx, param(req, "rg"), operation);
  const nr = pathVolumeNumber(req, "volumeGroup", operation);
  return found(
    tx.volumeGroup(g.name, nr),
    "FAIL_NOT_FOUND_VLM_GRP",
    "volumeGroup",
    operation,
    `Volume group ${nr} of resource group '${g.name}' not found.`,
  );
}

function getVolumeGroup(ctx: ApiContext, req: ApiRequest): ApiReply {
  return json(200, volumeGroupJson(ctx.store.read((tx) => volumeGroupOr404(tx, req, "none"))));
}

async function createVolumeGroup(ctx: ApiContext, req: ApiRequest): Promise<ApiReply> {
  const body = ObjectReader.body(req.body, true);
  const requested = body.int("volume_number", 0, volumeNumberMax);
  const props = checkProps(body.props("props") ?? {}, "volumeGroup", "create");
  const flags = modifyFlags([], body.strList("flags"));
  const vg = await ctx.store.write((tx) => {
    const g = groupOr404(tx, param(req, "rg"), "create");
    const used = tx.volumeGroups(g.name).map((v) => v.volumeNumber);
    const nr = requested ?? lowestFree(used, 0, volumeNumberMax);
    if (nr === undefined)
      throw apiError(
        "FAIL_POOL_EXHAUSTED_VLM_NR",
        "volumeGroup",
        "create",
        "No free volume number.",
      );
    if (used.includes(nr)) {
      throw apiError(
        "FAIL_EXISTS_VLM_GRP",
        "volumeGroup",
        "create",
        `Volume group ${nr} of resource group '${g.name}' already exists.`,
      );
    }
    const rec = { resourceGroup: g.name, volumeNumber: nr, props, flags, uuid: ctx.newUuid() };
    tx.putVolumeGroup(rec);
    return rec;
  });
  return rcReply(
    ctx,
    [
      okRc(
        "CREATED",
        "volumeGroup",
        "create",
        `New volume group with number '${vg.volumeNumber}' of resource group '${vg.resourceGroup}' created.`,
        { RscGrp: vg.resourceGroup, VlmNr: String(vg.volumeNumber) },
      ),
    ],
    201,
  );
}

async function modifyVolumeGroup(ctx: ApiContext, req: ApiRequest): Promise<ApiReply> {
  const body = ObjectReader.body(req.body);
  const edits = body.strList("flags");
  const { vg, warnings } = await ctx.store.write((tx) => {
    const old = volumeGroupOr404(tx, req, "modify");
    const m = modifyProps(old.props, body, "volumeGroup");
    const rec = { ...old, props: m.props, flags: modifyFlags(old.flags, edits) };
    tx.putVolumeGroup(rec);
    return { vg: rec, warnings: m.warnings };
  });
  return rcReply(
    ctx,
    [
      okRc(
        "MODIFIED",
        "volumeGroup",
        "modify",
        `Volume group '${vg.volumeNumber}' of resource group '${vg.resourceGroup}' modified.`,
        { RscGrp: vg.resourceGroup, VlmNr: String(vg.volumeNumber) },
      ),
      ...warnings,
    ],
    200,
  );
}

async function deleteVolumeGroup(ctx: ApiContext, req: ApiRequest): Promise<ApiReply> {
  const vg = await ctx.store.write((tx) => {
    const old = volumeGroupOr404(tx, req, "delete");
    tx.deleteVolumeGroup(old.resourceGroup, old.volumeNumber);
    return old;
  });
  return rcReply(
    ctx,
    [
      okRc(
        "DELETED",
        "volumeGroup",
        "delete",
        `Volume group '${vg.volumeNumber}' of resource group '${vg.resourceGroup}' deleted.`,
        { RscGrp: vg.resourceGroup, VlmNr: String(vg.volumeNumber) },
      ),
    ],
    200,
  );
}

export const groupRoutes: Route[] = [
  { method: "GET", url: "/v1/resource-groups", handler: listGroups },
  { method: "POST", url: "/v1/resource-groups", handler: createGroup },
  { method: "GET", url: "/v1/resource-groups/:rg", handler: getGroup },
  { method: "PUT", url: "/v1/resource-groups/:rg", handler: modifyGroup },
  { method: "DELETE", url: "/v1/resource-groups/:rg", handler: deleteGroup },
  { method: "GET", url: "/v1/resource-groups/:rg/volume-groups", handler: listVolumeGroups },
  { method: "POST", url: "/v1/resource-groups/:rg/volume-groups", handler: createVolumeGroup },
  { method: "GET", url: "/v1/resource-groups/:rg/volume-groups/:nr", handler: getVolumeGroup },
  { method: "PUT", url: "/v1/resource-groups/:rg/volume-groups/:nr", handler: modifyVolumeGroup },
  {
    method: "DELETE",
    url: "/v1/resource-groups/:rg/volume-groups/:nr",
    handler: deleteVolumeGroup,
  },
];
