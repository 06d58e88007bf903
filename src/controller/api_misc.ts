//! The controller itself (version, properties), the key-value store that the CSI driver keeps
//! its own state in.

import {
  checkName,
  checkProps,
  found,
  json,
  modifyProps,
  okRc,
  param,
  rcReply,
  type ApiContext,
  type ApiReply,
  type ApiRequest,
  type Route,
} from "./api_common.js";
import { ObjectReader } from "./input.js";
import type { KeyValueStoreRecord } from "./store/store.js";

/** The REST API version this controller speaks; clients gate features on it. */
export const restApiVersion = "1.28.0";

export function versionRoute(version: string): Route {
  return {
    method: "GET",
    url: "/v1/controller/version",
    handler: () =>
      json(200, { version, git_hash: "", build_time: "", rest_api_version: restApiVersion }),
  };
}

function getControllerProps(ctx: ApiContext): ApiReply {
  return json(
    200,
    ctx.store.read((tx) => tx.controllerProps()),
  );
}

async function setControllerProps(ctx: ApiContext, req: ApiRequest): Promise<ApiReply> {
  const body = ObjectReader.body(req.body);
  const warnings = await ctx.store.write((tx) => {
    const m = modifyProps(tx.controllerProps(), body, "controllerConfig");
    tx.setControllerProps(m.props);
    return m.warnings;
  });
  return rcReply(
    ctx,
    [
      okRc("MODIFIED", "controllerConfig", "modify", "Controller properties modified."),
      ...warnings,
    ],
    200,
  );
}

/** Deleting a key that is not set is a warning, as with `delete_props`. */
async function deleteControllerProp(ctx: ApiContext, req: ApiRequest): Promise<ApiReply> {
  const key = param(req, "*");
  const body = ObjectReader.of({ delete_props: [key] }, "request", "");
  const warnings = await ctx.store.write((tx) => {
    const m = modifyProps(tx.controllerProps(), body, "controllerConfig");
    tx.setControllerProps(m.props);
    return m.warnings;
  });
  return rcReply(
    ctx,
    [
      okRc("DELETED", "controllerConfig", "delete", `Controller property '${key}' deleted.`),
      ...warnings,
    ],
    200,
  );
}

function kvsJson(k: KeyValueStoreRecord): { name: string; props: Record<string, string> } {
  return { name: k.name, props: k.props };
}

function listKvs(ctx: ApiContext): ApiReply {
  return json(
    200,
    ctx.store.read((tx) => tx.keyValueStores().map(kvsJson)),
  );
}

/** LINSTOR answers a one-element list here, not the bare object. */
function getKvs(ctx: ApiContext, req: ApiRequest): ApiReply {
  const name = param(req, "instance");
  const kvs = ctx.store.read((tx) => tx.keyValueStore(name));
  const k = found(
    kvs,
    "FAIL_NOT_FOUND_KVS",
    "keyValueStore",
    "none",
    `Could not find key value store instance '${name}'.`,
  );
  return json(200, [kvsJson(k)]);
}

/** PUT creates the instance when it is missing (golinstor's CreateOrModify). */
async function modifyKvs(ctx: ApiContext, req: ApiRequest): Promise<ApiReply> {
  const body = ObjectReader.body(req.body);
  checkProps(body.props("override_props") ?? {}, "keyValueStore", "modify");
  const wanted = checkName(
    param(req, "instance"),
    "FAIL_INVLD_KVS_NAME",
    "keyValueStore",
    "modify",
    "key-value store",
  );
  const { name, warnings } = await ctx.store.write((tx) => {
    const old = tx.keyValueStore(wanted) ?? { name: wanted, props: {} };
    const m = modifyProps(old.props, body, "keyValueStore");
    tx.putKeyValueStore({ name: old.name, props: m.props });
    return { name: old.name, warnings: m.warnings };
  });
  return rcReply(
    ctx,
    [
      okRc("MODIFIED", "keyValueStore", "modify", `Key-value store '${name}' modified.`, {
        KVS: name,
      }),
      ...warnings,
    ],
    200,
  );
}

async function deleteKvs(ctx: ApiContext, req: ApiRequest): Promise<ApiReply> {
  const wanted = param(req, "instance");
  const name = await ctx.store.write((tx) => {
    const k = found(
      tx.keyValueStore(wanted),
      "FAIL_NOT_FOUND_KVS",
      "keyValueStore",
      "delete",
      `Could not find key value store instance '${wanted}'.`,
    );
    tx.deleteKeyValueStore(k.name);
    return k.name;
  });
  return rcReply(
    ctx,
    [
      okRc("DELETED", "keyValueStore", "delete", `Key-value store '${name}' deleted.`, {
        KVS: name,
      }),
    ],
    200,
  );
}

export const miscRoutes: Route[] = [
  { method: "GET", url: "/v1/controller/properties", handler: getControllerProps },
  { method: "POST", url: "/v1/controller/properties", handler: setControllerProps },
  { method: "DELETE", url: "/v1/controller/properties/*", handler: deleteControllerProp },
  { method: "GET", url: "/v1/key-value-store", handler: listKvs },
  { method: "GET", url: "/v1/key-value-store/:instance", handler: getKvs },
  { method: "PUT", url: "/v1/key-value-store/:instance", handler: modifyKvs },
  { method: "DELETE", url: "/v1/key-value-store/:instance", handler: deleteKvs },
];
