//! A small typed client for the controller's REST API (LINSTOR v1), on Node's fetch. It tries
//! the controllers of `--controllers` in order and sticks to the first that answers, as
//! LINSTOR's clients do, and reads every reply with the BigInt-safe parser.

import { ConfigError } from "../../stdx/errors.js";
import { ControllerUnreachableError, UnexpectedReplyError } from "./errors.js";
import { parseJson, type Json } from "./json.js";

export const controllersDefault = "http://127.0.0.1:3370";
/** LINSTOR's client waits this long too: a mutation returns once satellites applied it. */
export const requestTimeoutMsDefault = 300_000;

export type Method = "GET" | "POST" | "PUT" | "DELETE" | "PATCH";

export interface RestReply {
  status: number;
  body: Json;
}

/**
 * Reads `--controllers` (or LS_CONTROLLERS): comma-separated URLs; a bare host gets
 * `http://` and port 3370, as `linstor --controllers host` does.
 */
export function parseControllers(text: string): string[] {
  const urls = text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => {
      const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(s) ? s : `http://${s}`;
      let url: URL;
      try {
        url = new URL(withScheme.replace(/^linstor:\/\//i, "http://"));
      } catch {
        throw new ConfigError(`bad controller address "${s}": use http://HOST:PORT`);
      }
      if (url.protocol !== "http:")
        throw new ConfigError(`controller "${s}": only http:// is supported`);
      if (url.port === "") url.port = "3370";
      return url.origin;
    });
  if (urls.length === 0) throw new ConfigError("--controllers names no controller");
  return urls;
}

export class RestClient {
  private readonly urls: string[];
  private readonly timeoutMs: number;

  constructor(urls: readonly string[], timeoutMs = requestTimeoutMsDefault) {
    this.urls = [...urls];
    this.timeoutMs = timeoutMs;
  }

  /** Sends one request; any HTTP status is a reply, only a missing controller throws. */
  async request(method: Method, path: string, body?: Json): Promise<RestReply> {
    const failures: string[] = [];
    let timedOut = false;
    for (const [index, base] of this.urls.entries()) {
      let response: Response;
      try {
        response = await fetch(base + path, {
          method,
          headers: body === undefined ? {} : { "content-type": "application/json" },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(this.timeoutMs),
        });
      } catch (err) {
        // Connection refused, unknown host or timeout: try the next controller.
        const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause;
        if ((err as { name?: unknown }).name === "TimeoutError") timedOut = true;
        const why = typeof cause?.code === "string" ? cause.code : cause?.message;
        failures.push(`${base}: ${typeof why === "string" && why !== "" ? why : String(err)}`);
        continue;
      }
      // Stick to the controller that answered for the rest of this command.
      if (index > 0) this.urls.unshift(...this.urls.splice(index, 1));
      const text = await response.text();
      try {
        return { status: response.status, body: parseJson(text) };
      } catch (err) {
        throw new UnexpectedReplyError(
          `${method} ${base}${path}: HTTP ${response.status} with a body that is not JSON: ` +
            JSON.stringify(text.slice(0, 200)),
          { cause: err },
        );
      }
    }
    throw new ControllerUnreachableError(
      `cannot reach a controller (${failures.join("; ")}); ` +
        "start one with `mirra controller` or point --controllers (or LS_CONTROLLERS) at it",
      timedOut,
    );
  }
}
