//! mirra's logger: one line per event on stderr, JSON when stderr is not a terminal (so log
//! collectors can parse it) and readable text when it is. Fields such as resource, volume,
//! peer or export ride on every line that concerns them.

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, string | number | boolean | undefined>;

const levelRank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line. */
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  level?: LogLevel;
  json?: boolean;
  write?: (line: string) => void;
}

export function createLogger(options: LoggerOptions = {}, base: LogFields = {}): Logger {
  const envLevel = process.env["MIRRA_LOG_LEVEL"] as LogLevel | undefined;
  const min = levelRank[options.level ?? (envLevel && envLevel in levelRank ? envLevel : "info")];
  const json =
    options.json ?? (process.env["MIRRA_LOG_FORMAT"] === "json" || !process.stderr.isTTY);
  const write = options.write ?? ((line: string) => process.stderr.write(line + "\n"));
  const emit = (level: LogLevel, msg: string, fields?: LogFields): void => {
    if (levelRank[level] < min) return;
    const all = { ...base, ...fields };
    if (json) {
      write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...all }));
    } else {
      const extra = Object.entries(all)
        .filter(([, v]) => v !== undefined)
        .map(
          ([k, v]) =>
            `${k}=${typeof v === "string" && /\s/.test(v) ? JSON.stringify(v) : String(v)}`,
        )
        .join(" ");
      write(
        `${new Date().toISOString().slice(11, 23)} ${level.toUpperCase().padEnd(5)} ${msg}${extra ? " " + extra : ""}`,
      );
    }
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (fields) =>
      createLogger(
        {
          ...options,
          level: (Object.entries(levelRank).find(([, r]) => r === min)?.[0] ?? "info") as LogLevel,
          json,
          write,
        },
        { ...base, ...fields },
      ),
  };
}
