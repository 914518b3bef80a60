/**
 * `zonal cloud serve`: runs the local cloud daemon in the foreground.
 *
 * Data dir layout:
 *   state.json     hosts' faults, VMs, disks (see state.ts)
 *   admin-token    the API's bearer token (created once, 0600)
 *   endpoint.json  where the running daemon listens, with the token (0600)
 *   daemon.pid     the running daemon; a second daemon on the same dir refuses to start
 *   vms/ID/        one VM: settings.json, console.log, ephemeral/, disks/ (attached disks)
 *   disks/ID/      one persistent disk
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { Conflict, InvalidInput } from "../../lib/errors.js";
import { writeFileAtomic } from "../../lib/files.js";
import { createLogger } from "../../lib/log.js";
import { isAlive, readStat } from "../../lib/proc.js";
import { buildCloudApi } from "./api.js";
import { ENDPOINT_FILE, type CloudEndpoint } from "./client.js";
import { loadCloudConfig } from "./config.js";
import { LocalCloudService } from "./service.js";

export interface DaemonOptions {
  configPath: string;
  dataDir: string;
  /** host:port; port 0 picks a free one (see endpoint.json). */
  listen: string;
}

export interface RunningDaemon {
  endpoint: CloudEndpoint;
  close(): Promise<void>;
}

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^([^:]+):(\d{1,5})$/.exec(listen);
  if (!m || Number(m[2]) > 65535) {
    throw new InvalidInput(`--listen: expected HOST:PORT such as 127.0.0.1:25550, got "${listen}"`);
  }
  return { host: m[1]!, port: Number(m[2]) };
}

function claimDataDir(dataDir: string): void {
  const pidFile = join(dataDir, "daemon.pid");
  if (existsSync(pidFile)) {
    const [pid, start] = readFileSync(pidFile, "utf8").trim().split(" ").map(Number);
    if (pid && pid !== process.pid && isAlive(pid, start)) {
      throw new Conflict(`a local cloud daemon (pid ${pid}) already runs on ${dataDir}`);
    }
  }
  writeFileSync(pidFile, `${process.pid} ${readStat(process.pid)?.startTime ?? 0}\n`);
}

function adminToken(dataDir: string): string {
  const path = join(dataDir, "admin-token");
  if (existsSync(path)) return readFileSync(path, "utf8").trim();
  const token = randomBytes(24).toString("hex");
  writeFileSync(path, token + "\n", { mode: 0o600 });
  return token;
}

export async function startDaemon(opts: DaemonOptions): Promise<RunningDaemon> {
  const { host, port } = parseListen(opts.listen);
  const config = loadCloudConfig(opts.configPath);
  const dataDir = resolve(opts.dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  claimDataDir(dataDir);
  const log = createLogger("cloud");
  const service = new LocalCloudService({ config, dataDir, log });
  for (const sentence of await service.start()) log.info(sentence);
  const token = adminToken(dataDir);
  const app = buildCloudApi(service, token);
  await app.listen({ host, port });
  const address = app.server.address();
  const actualPort = typeof address === "object" && address ? address.port : port;
  const endpoint: CloudEndpoint = { url: `http://${host}:${actualPort}`, token, pid: process.pid };
  writeFileAtomic(join(dataDir, ENDPOINT_FILE), JSON.stringify(endpoint) + "\n", 0o600);
  log.info({ url: endpoint.url, dataDir }, "local cloud listening");
  return {
    endpoint,
    async close() {
      await app.close();
      await service.stop();
      rmSync(join(dataDir, ENDPOINT_FILE), { force: true });
      rmSync(join(dataDir, "daemon.pid"), { force: true });
      log.info("local cloud stopped; its VMs keep running");
    },
  };
}
