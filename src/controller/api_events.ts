//! Server-sent event streams (`Content-Type: text/event-stream`), as LINSTOR serves them:
//!
//! * `GET /v1/events/nodes`: `node-create`, `node-delete` (`{"node": Node}`) and `node-modified`
//!   (`{"old_node": Node, "new_node": Node}`), published after each committed change. mirra
//!   has no evacuate, evict or restore yet, so `node-evacuate`, `node-evicted` and
//!   `node-restored` cannot happen and are never sent.
//! * `GET /v1/events/drbd/promotion`: `may-promote-change` frames
//!   (`{"resource_name", "node_name", "may_promote"}`). `Last-Event-ID: current` first replays
//!   the current value of every resource whose may_promote is known. Only satellites know it:
//!   until one reports, nothing is known and no frame is sent (the stream stays open with
//!   keep-alives), rather than a guess.
//!
//! A comment line (`: keep-alive`) goes out every `keepAliveMs` so that proxies and clients
//! do not time the stream out. A client that disconnects is unsubscribed at once; one that
//! stops reading is dropped once a megabyte is queued for it. A stream that cannot be set up
//! gets one `event: error` frame with an ApiCallRc list and is closed.

import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { apiCallRcJson, type ApiCallRc } from "./api_call_rc.js";
import { nodeJson } from "./api_nodes.js";
import type { ControllerEvent, EventBus } from "./events.js";
import { toJson, type JsonValue } from "./json.js";
import type { ObservedState } from "./observed_state.js";
import type { ControllerStore } from "./store/store.js";

/** A client that has not read this much is dropped rather than buffered without bound. */
const queuedBytesMax = 1024 * 1024;
export const keepAliveMsDefault = 15_000;

export interface EventRoutesOptions {
  bus: EventBus;
  store: ControllerStore;
  observed: ObservedState;
  keepAliveMs: number;
  nowMs: () => number;
  /** The ApiCallRc list (with an error report) for an unexpected failure. */
  failure: (err: unknown, request: FastifyRequest) => Promise<ApiCallRc[]>;
}

/** One SSE frame; `data` is one line of JSON. */
export function sseFrame(event: string, data: JsonValue): string {
  return `event: ${event}\ndata: ${toJson(data)}\n\n`;
}

interface Stream {
  send(event: string, data: JsonValue): void;
  close(): void;
}

type Framer = (event: ControllerEvent) => [string, JsonValue] | undefined;

const nodeFrames: Framer = (e) => {
  switch (e.kind) {
    case "node-create":
    case "node-delete":
      return [e.kind, { node: nodeJson(e.node) }];
    case "node-modified":
      return [e.kind, { old_node: nodeJson(e.oldNode), new_node: nodeJson(e.newNode) }];
    default:
      return undefined;
  }
};

const promotionFrames: Framer = (e) =>
  e.kind === "may-promote-change"
    ? [
        "may-promote-change",
        { resource_name: e.resource, node_name: e.node, may_promote: e.mayPromote },
      ]
    : undefined;

export function registerEventRoutes(app: FastifyInstance, options: EventRoutesOptions): void {
  const open = new Set<Stream>();
  // Streams never end by themselves: end them so that closing the server does not wait.
  app.addHook("preClose", (done) => {
    for (const s of [...open]) s.close();
    done();
  });

  const serve = async (
    request: FastifyRequest,
    reply: FastifyReply,
    framer: Framer,
    replay: (send: (event: string, data: JsonValue) => void) => void,
  ): Promise<void> => {
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-cache",
      connection: "keep-alive",
    });
    // Headers go out now, not with the first frame: the client knows the stream is open.
    raw.flushHeaders();
    // Set once the stream is live: what cleanup undoes.
    const live: { unsubscribe?: () => void; timer?: NodeJS.Timeout } = {};
    const stream: Stream = {
      send(event, data) {
        if (raw.destroyed || raw.writableEnded) return;
        raw.write(sseFrame(event, data));
        if (raw.writableLength > queuedBytesMax) stream.close();
      },
      close() {
        cleanup();
        if (!raw.writableEnded) raw.end();
      },
    };
    const cleanup = (): void => {
      live.unsubscribe?.();
      clearInterval(live.timer);
      open.delete(stream);
    };
    open.add(stream);
    raw.on("close", cleanup);
    try {
      replay((event, data) => stream.send(event, data));
    } catch (err) {
      const rcs = await options.failure(err, request);
      const at = new Date(options.nowMs()).toISOString();
      stream.send(
        "error",
        rcs.map((rc) => apiCallRcJson(rc, at)),
      );
      stream.close();
      return;
    }
    // A client that left before this point has fired its "close" already: nothing to keep.
    if (raw.destroyed) {
      cleanup();
      return;
    }
    // Subscribing in the same tick as the replay: no event can fall between the two.
    live.unsubscribe = options.bus.subscribe((e) => {
      const frame = framer(e);
      if (frame !== undefined) stream.send(frame[0], frame[1]);
    });
    live.timer = setInterval(() => {
      if (!raw.destroyed && !raw.writableEnded) raw.write(": keep-alive\n\n");
    }, options.keepAliveMs);
    live.timer.unref();
  };

  // No HEAD twins: a HEAD request must not open a stream that never ends.
  const route = { exposeHeadRoute: false } as const;
  app.get("/v1/events/nodes", route, (request, reply) =>
    serve(request, reply, nodeFrames, () => undefined),
  );

  app.get("/v1/events/drbd/promotion", route, (request, reply) =>
    serve(request, reply, promotionFrames, (send) => {
      const lastEventId = request.headers["last-event-id"];
      if (typeof lastEventId !== "string" || lastEventId.toLowerCase() !== "current") return;
      const resources = options.store.read((tx) => tx.resources());
      for (const r of resources) {
        const mayPromote = options.observed.mayPromote(r.resourceDefinition, r.node);
        if (mayPromote === undefined) continue;
        send("may-promote-change", {
          resource_name: r.resourceDefinition,
          node_name: r.node,
          may_promote: mayPromote,
        });
      }
    }),
  );
}
