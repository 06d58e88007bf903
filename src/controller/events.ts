//! The controller's in-process event bus, and the store wrapper that feeds it.
//!
//! Events are published only after the transaction that caused them has committed: a
//! request that fails publishes nothing, and a listener never sees a state that the store does
//! not hold. Node events come from the store wrapper (`publishingStore`), so every handler that
//! writes a node, today's and tomorrow's, publishes without knowing about the bus. Events
//! that no store write causes (may-promote changes, connection changes) are published by
//! whoever observes them, through `EventBus.publish`.

import type { ControllerStore, NodeRecord, StoreWriter } from "./store/store.js";

export type ControllerEvent =
  | { kind: "node-create"; node: NodeRecord }
  | { kind: "node-delete"; node: NodeRecord }
  | { kind: "node-modified"; oldNode: NodeRecord; newNode: NodeRecord }
  | { kind: "may-promote-change"; resource: string; node: string; mayPromote: boolean };

export type EventListener = (event: ControllerEvent) => void;

export class EventBus {
  private readonly listeners = new Set<EventListener>();

  /** @param onListenerError called when a listener throws; the other listeners still run. */
  constructor(private readonly onListenerError: (err: unknown) => void) {}

  /** Adds a listener; the returned function removes it. */
  subscribe(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  publish(event: ControllerEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }

  get listenerCount(): number {
    return this.listeners.size;
  }
}

/** What one transaction did to nodes: the first old and the last new record of each. */
class NodeChanges {
  private readonly byName = new Map<string, { old?: NodeRecord; now?: NodeRecord }>();

  record(name: string, old: NodeRecord | undefined, now: NodeRecord | undefined): void {
    const key = name.toLowerCase();
    const seen = this.byName.get(key);
    if (seen === undefined) this.byName.set(key, { old, now });
    else seen.now = now;
  }

  events(): ControllerEvent[] {
    const out: ControllerEvent[] = [];
    for (const { old, now } of this.byName.values()) {
      if (old === undefined && now !== undefined) out.push({ kind: "node-create", node: now });
      else if (old !== undefined && now === undefined) out.push({ kind: "node-delete", node: old });
      else if (old !== undefined && now !== undefined)
        out.push({ kind: "node-modified", oldNode: old, newNode: now });
    }
    return out;
  }
}

/**
 * Wraps `store` so that node writes publish node-create, node-delete and node-modified on
 * `bus` once their transaction has committed. Everything else passes through unchanged.
 */
export function publishingStore(store: ControllerStore, bus: EventBus): ControllerStore {
  return {
    read: (fn) => store.read(fn),
    close: () => store.close(),
    async write(fn) {
      const changes = new NodeChanges();
      const result = await store.write((tx) => fn(recordingWriter(tx, changes)));
      for (const event of changes.events()) bus.publish(event);
      return result;
    },
  };
}

/** The transaction with putNode and deleteNode noting the node before and after. */
function recordingWriter(tx: StoreWriter, changes: NodeChanges): StoreWriter {
  return new Proxy(tx, {
    get(target, prop) {
      if (prop === "putNode") {
        return (node: NodeRecord): void => {
          const old = target.node(node.name);
          target.putNode(node);
          changes.record(node.name, old, target.node(node.name));
        };
      }
      if (prop === "deleteNode") {
        return (name: string): void => {
          const old = target.node(name);
          target.deleteNode(name);
          changes.record(name, old, undefined);
        };
      }
      const value: unknown = Reflect.get(target, prop);
      return typeof value === "function" ? (value as () => unknown).bind(target) : value;
    },
  });
}
