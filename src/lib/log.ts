/** The structured logger (pino). Components log JSON lines; the CLI prints sentences. */
import { pino, type Logger } from "pino";

export type { Logger };

export function createLogger(name: string, level = process.env.ZONAL_LOG_LEVEL ?? "info"): Logger {
  return pino({ name, level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
}

/** A logger that writes nothing, for tests and library use. */
export const silentLogger: Logger = pino({ level: "silent" });
