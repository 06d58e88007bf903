//! Auto-placement over REST: `POST /v1/resource-definitions/{rd}/autoplace` places replicas of
//! an existing definition; `POST /v1/resource-groups/{rg}/spawn` creates a definition and its
//! volume definitions from a group, then places it. The decision is `placement.ts`'s; this
//! file gathers its input from the store, creates the resources it names, and answers with
//! LINSTOR's ApiCallRc entries. Each request is one transaction: all or nothing.

import { nothingObserved, type ObservedState } from "./observed_state.js";
import { apiError, parseError, retCode, type ApiCallRc } from "./api_call_rc.js";
import {
  checkName,
  checkProps,
  found,
  inheritedProps,
  okRc,
  param,
  rcReply,
  readLayerStack,
  type ApiContext,
  type ApiReply,
  type ApiRequest,
  type Route,
} from "./api_common.js";
import {
  definitionOr404,
  insertResourceDefinition,
  insertVolumeDefinition,
} from "./api_definitions.js";
import { readSelectFilter } from "./api_groups.js";
import { createOne, hasDiskful } from "./api_resources.js";
import { ObjectReader } from "./input.js";
import { placeResource, type PlacementFailure, type PlacementInput } from "./placement.js";
import type {
  AutoSelectFilter,
  ResourceDefinitionRecord,
  StoreReader,
  StoreWriter,
} from "./store/store.js";

/** 1 KiB to 1 PiB, as for a volume definition. */
const sizeKibMax = 2 ** 40;

/**
 * Whether placement may add a diskless tie-breaker. LINSTOR's property
 * `DrbdOptions/auto-add-quorum-tiebreaker` (default true), looked up on the definition, its
 * group, then the controller; quorum turned off (`DrbdOptions/Resource/quorum=off`) needs none.
 */
function tiebreakerWanted(tx: StoreReader, rd: ResourceDefinitionRecord): boolean {
  const props = inheritedProps(tx, rd);
  const quorum = props["DrbdOptions/Resource/quorum"]?.toLowerCase();
  const auto = props["DrbdOptions/auto-add-quorum-tiebreaker"]?.toLowerCase();
  return quorum !== "off" && auto !== "false";
}

/**
 * Placement's view of the store, with each pool's capacity as its satellite last reported it
 * (unknown until it has: see `poolHasRoom`).
 */
function placementInput(
  tx: StoreReader,
  rd: ResourceDefinitionRecord,
  filter: AutoSelectFilter,
  observed: ObservedState,
): PlacementInput {
  return {
    resourceDefinition: rd.name,
    nodes: tx.nodes().map((n) => ({
      name: n.name,
      type: n.type,
      flags: n.flags,
      props: n.props,
      netInterfaces: n.netInterfaces.map((i) => i.name),
    })),
    pools: tx.storagePools().map((p) => {
      // Capacity is what the pool's satellite last reported; unknown until it has.
      const c = observed.poolCapacity(p.node, p.name);
      return {
        node: p.node,
        name: p.name,
        providerKind: p.providerKind,
        freeCapacityKib: c?.freeKib ?? null,
        totalCapacityKib: c?.totalKib ?? null,
      };
    }),
    resources: tx.resources().map((r) => ({
      resourceDefinition: r.resourceDefinition,
      node: r.node,
      storagePool: r.storagePool,
      flags: r.flags,
    })),
    filter,
    volumeSizesKib: tx.volumeDefinitions(rd.name).map((v) => v.sizeKib),
    autoTiebreaker: tiebreakerWanted(tx, rd),
  };
}

function placementError(f: PlacementFailure, rd: string): Error {
  if (f.reason === "invalidFilter") return parseError(f.message);
  return apiError(
    f.reason === "undecidable" ? "FAIL_UNDECIDABLE_AUTOPLACMENT" : "FAIL_NOT_ENOUGH_NODES",
    "resource",
    "create",
    f.message,
    {
      cause: `Rule '${f.constraint}' left ${f.candidates} candidate node(s); ${f.needed} needed.`,
      details: f.details,
      correction: "Add nodes or storage pools, or relax the select filter.",
      objRefs: { RscDfn: rd },
    },
  );
}

const flagsOf = {
  diskful: [],
  diskless: ["DISKLESS", "DRBD_DISKLESS"],
  tiebreaker: ["DISKLESS", "DRBD_DISKLESS", "TIE_BREAKER"],
} as const;

/** Places `rd` with `filter` and creates the resources, inside the caller's write. */
function autoplaceInTx(
  ctx: ApiContext,
  tx: StoreWriter,
  rd: ResourceDefinitionRecord,
  filter: AutoSelectFilter,
): ApiCallRc[] {
  const result = placeResource(placementInput(tx, rd, filter, ctx.observed ?? nothingObserved));
  if (!result.ok) throw placementError(result.failure, rd.name);
  const d = result.decision;
  const objRefs = { RscDfn: rd.name };
  if (d.placements.length === 0 && !d.tiebreakerMissing) {
    return [
      {
        retCode: retCode("warn", "WARN_RSC_ALREADY_DEPLOYED", "resource", "create"),
        message: `Resource '${rd.name}' was already deployed on ${d.existingDiskful.length} nodes. Skipping.`,
        details: `Used nodes: '${d.existingDiskful.join("', '")}'`,
        objRefs,
      },
    ];
  }
  const rcs: ApiCallRc[] = [];
  const joins = hasDiskful(tx, rd.name);
  for (const p of d.placements) {
    rcs.push(
      createOne(
        ctx,
        tx,
        rd.name,
        {
          node: p.node,
          props: { StorPoolName: p.storagePool },
          flags: [...flagsOf[p.kind]],
          nodeId: undefined,
        },
        joins,
      ),
    );
  }
  const diskful = d.placements.filter((p) => p.kind === "diskful");
  if (diskful.length > 0) {
    const pools = [...new Set(diskful.map((p) => p.storagePool))];
    rcs.push({
      ...okRc(
        "CREATED",
        "resource",
        "create",
        `Resource '${rd.name}' successfully autoplaced on ${diskful.length} nodes`,
        objRefs,
      ),
      details:
        `Used storage pool: '${pools.join("', '")}'\n` +
        `Used nodes: '${diskful.map((p) => p.node).join("', '")}'`,
    });
  }
  for (const p of d.placements.filter((x) => x.kind === "tiebreaker")) {
    rcs.push({
      retCode: retCode("info", "INFO_TIE_BREAKER_CREATED", "resource", "create"),
      message: `Tie breaker resource '${rd.name}' created on node '${p.node}'.`,
      objRefs: { RscDfn: rd.name, Node: p.node },
    });
  }
  if (d.tiebreakerMissing) {
    rcs.push({
      retCode: retCode("warn", "WARN_NOT_ENOUGH_NODES_FOR_TIE_BREAKER", "resource", "create"),
      message: `No node is left for a tie-breaker of resource '${rd.name}'.`,
      details: "Two diskful replicas without a third vote lose quorum when either fails.",
      objRefs,
    });
  }
  return rcs;
}

/** The group's filter with the request's fields laid over it, field by field. */
function mergeFilter(base: AutoSelectFilter, over: AutoSelectFilter): AutoSelectFilter {
  return { ...base, ...over };
}

async function autoplace(ctx: ApiContext, req: ApiRequest): Promise<ApiReply> {
  const body = ObjectReader.body(req.body);
  const request = readSelectFilter(body.objReq("select_filter"), "create");
  const disklessOnRemaining = body.bool("diskless_on_remaining");
  readLayerStack(body, "create");
  const rcs = await ctx.store.write((tx) => {
    const rd = definitionOr404(tx, param(req, "rd"), "create");
    const group = tx.resourceGroup(rd.resourceGroup)?.selectFilter ?? {};
    // The top-level flag wins when given; the python client sends it as null otherwise.
    const filter = mergeFilter(group, {
      ...request,
      ...(disklessOnRemaining === true ? { diskless_on_remaining: true } : {}),
    });
    return autoplaceInTx(ctx, tx, rd, filter);
  });
  return rcReply(ctx, rcs, 201);
}

function readVolumeSizes(body: ObjectReader): number[] {
  return (body.strList("volume_sizes") ?? []).map((s, i) => {
    const n = /^\s*-?\d+\s*$/.test(s) ? Number(s) : NaN;
    if (!Number.isSafeInteger(n)) {
      throw parseError(`The field 'volume_sizes[${i}]' must be an integer, not '${s}'.`);
    }
    if (n < 1 || n > sizeKibMax) {
      throw apiError(
        "FAIL_INVLD_VLM_SIZE",
        "volumeDefinition",
        "create",
        `The volume size ${n} KiB is out of range.`,
        { correction: `Use 1 to ${sizeKibMax} KiB.` },
      );
    }
    return n;
  });
}

async function spawn(ctx: ApiContext, req: ApiRequest): Promise<ApiReply> {
  const body = ObjectReader.body(req.body);
  const name = checkName(
    body.strReq("resource_definition_name"),
    "FAIL_INVLD_RSC_NAME",
    "resourceDefinition",
    "create",
    "resource definition",
  );
  const externalName = body.str("resource_definition_external_name") ?? null;
  const sizes = readVolumeSizes(body);
  const partial = body.bool("partial") ?? false;
  const definitionsOnly = body.bool("definitions_only") ?? false;
  const filterBody = body.obj("select_filter");
  const overrides = filterBody === undefined ? {} : readSelectFilter(filterBody, "create");
  const peerSlots = body.int("peer_slots", 1, 31);
  const props = checkProps(
    body.props("resource_definition_props") ?? {},
    "resourceDefinition",
    "create",
  );
  const rcs = await ctx.store.write((tx) => {
    const group = found(
      tx.resourceGroup(param(req, "rg")),
      "FAIL_NOT_FOUND_RSC_GRP",
      "resourceGroup",
      "create",
      `Resource group '${param(req, "rg")}' not found.`,
    );
    const vgs = tx.volumeGroups(group.name);
    // A group without volume groups takes any sizes (mirra's choice; see docs/controller.md).
    if (!partial && vgs.length > 0 && sizes.length !== vgs.length) {
      throw apiError(
        "FAIL_INVLD_VLM_SIZES",
        "resourceGroup",
        "create",
        `Resource group '${group.name}' has ${vgs.length} volume group(s), but ` +
          `${sizes.length} volume size(s) were given.`,
        { correction: "Give one size per volume group, or set 'partial'." },
      );
    }
    const rd = insertResourceDefinition(ctx, tx, {
      name,
      externalName,
      groupName: group.name,
      props,
      port: undefined,
      secret: undefined,
      peerSlots: peerSlots ?? group.peerSlots,
      transport: "IP",
    });
    const out: ApiCallRc[] = [
      okRc(
        "CREATED",
        "resourceDefinition",
        "create",
        `New resource definition '${name}' created.`,
        {
          RscDfn: name,
        },
      ),
    ];
    // Sizes pair with volume groups in order; extra sizes become plain volume definitions.
    sizes.forEach((sizeKib, i) => {
      const vg = vgs[i];
      const vd = insertVolumeDefinition(ctx, tx, rd.name, {
        requested: vg?.volumeNumber,
        sizeKib,
        props: { ...(vg?.props ?? {}) },
        flags: [...(vg?.flags ?? [])],
        minor: undefined,
      });
      out.push(
        okRc(
          "CREATED",
          "volumeDefinition",
          "create",
          `New volume definition with number '${vd.volumeNumber}' of resource definition '${rd.name}' created.`,
          { RscDfn: rd.name, VlmNr: String(vd.volumeNumber) },
        ),
      );
    });
    if (definitionsOnly) return out;
    return [...out, ...autoplaceInTx(ctx, tx, rd, mergeFilter(group.selectFilter, overrides))];
  });
  return rcReply(ctx, rcs, 201);
}

export const placementRoutes: Route[] = [
  { method: "POST", url: "/v1/resource-definitions/:rd/autoplace", handler: autoplace },
  { method: "POST", url: "/v1/resource-groups/:rg/spawn", handler: spawn },
];
