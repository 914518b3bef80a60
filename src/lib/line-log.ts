/**
 * A structured logger for a process that must stay small (the agent: every VM pays
 * for what it loads, and pino adds about 6 MiB). One JSON line per entry on stdout, in
 * pino's shape (`level` as a number, `time`, `pid`, `name`, the bindings, the fields,
 * `msg`), so the agent's lines read like the control plane's. pino's loggers satisfy
 * `LineLogger` too (tests hand the agent a silent one).
 */

export interface LogMethod {
  (fields: object, msg?: string): void;
  (msg: string): void;
}

export interface LineLogger {
  debug: LogMethod;
  info: LogMethod;
  warn: LogMethod;
  error: LogMethod;
  child(bindings: Record<string, unknown>): LineLogger;
}

const LEVELS = { debug: 20, info: 30, warn: 40, error: 50 } as const;
type Level = keyof typeof LEVELS;

/** Fields as JSON would have them: an Error's message and stack, not `{}`. */
function plain(value: unknown): unknown {
  return value instanceof Error ? { type: value.name, message: value.message, stack: value.stack } : value;
}

export function createLineLogger(
  name: string,
  level = process.env.ZONAL_LOG_LEVEL ?? "info",
  write: (line: string) => void = (line) => process.stdout.write(line),
): LineLogger {
  const min = LEVELS[level as Level] ?? (level === "silent" ? Infinity : LEVELS.info);
  const make = (bindings: Record<string, unknown>): LineLogger => {
    const at =
      (l: Level): LogMethod =>
      (a: object | string, msg?: string) => {
        if (LEVELS[l] < min) return;
        const fields =
          typeof a === "string"
            ? { msg: a }
            : {
                ...Object.fromEntries(Object.entries(a).map(([k, v]) => [k, plain(v)])),
                ...(msg === undefined ? {} : { msg }),
              };
        const entry = {
          level: LEVELS[l],
          time: new Date().toISOString(),
          pid: process.pid,
          name,
          ...bindings,
          ...fields,
        };
        write(`${JSON.stringify(entry)}\n`);
      };
    return {
      debug: at("debug"),
      info: at("info"),
      warn: at("warn"),
      error: at("error"),
      child: (more) => make({ ...bindings, ...more }),
    };
  };
  return make({});
}
