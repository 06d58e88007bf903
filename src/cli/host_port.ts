import { ConfigError } from "../stdx/errors.js";

/** "HOST:PORT", "[V6]:PORT", ":PORT" or "PORT" (host default 127.0.0.1). */
export function parseHostPort(text: string, option = "--listen"): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(text) ?? /^()()(\d+)$/.exec(text);
  if (!m) throw new ConfigError(`bad ${option} "${text}": use HOST:PORT`);
  const port = Number(m[3]);
  if (port > 65535) throw new ConfigError(`bad port ${port}`);
  return { host: m[1] || m[2] || "127.0.0.1", port };
}
