/**
 * What every zonal daemon does with its data dir: claim it (one daemon per dir,
 * by PID and start time), keep a bearer token in it, and publish where it listens.
 */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Conflict, InvalidInput } from "./errors.js";
import { isAlive, readStat } from "./proc.js";

/** Claims `dir` for this process; Conflict when a live daemon holds it. */
export function claimDataDir(dir: string, what: string): void {
  const pidFile = join(dir, "daemon.pid");
  if (existsSync(pidFile)) {
    const [pid, start] = readFileSync(pidFile, "utf8").trim().split(" ").map(Number);
    if (pid && pid !== process.pid && isAlive(pid, start)) {
      throw new Conflict(`a ${what} (pid ${pid}) already runs on ${dir}`);
    }
  }
  writeFileSync(pidFile, `${process.pid} ${readStat(process.pid)?.startTime ?? 0}\n`);
}

/** The token in `dir/name`, created (random, 0600) the first time. */
export function readOrCreateToken(dir: string, name: string): string {
  const path = join(dir, name);
  if (existsSync(path)) return readFileSync(path, "utf8").trim();
  const token = randomBytes(24).toString("hex");
  writeFileSync(path, token + "\n", { mode: 0o600 });
  return token;
}

/** `{ url, token, pid }` in `dir/endpoint.json`: how clients on this machine find a daemon. */
export interface Endpoint {
  url: string;
  token: string;
  pid: number;
  /** The CA (PEM) to trust for an https `url` whose certificate no public CA vouches for. */
  ca?: string;
}

export const ENDPOINT_FILE = "endpoint.json";

/** "HOST:PORT" for a daemon's --listen flag; port 0 picks a free one. */
export function parseListen(listen: string, flag = "--listen"): { host: string; port: number } {
  const m = /^([^:]+):(\d{1,5})$/.exec(listen);
  if (!m || Number(m[2]) > 65535) {
    throw new InvalidInput(`${flag}: expected HOST:PORT such as 127.0.0.1:25550, got "${listen}"`);
  }
  return { host: m[1]!, port: Number(m[2]) };
}
