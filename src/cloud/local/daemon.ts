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
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { claimDataDir, parseListen, readOrCreateToken } from "../../lib/data-dir.js";
import { Conflict } from "../../lib/errors.js";
import { privateRunDir, readJsonIfExists, writeFileAtomic } from "../../lib/files.js";
import { isAlive } from "../../lib/proc.js";
import { createLogger } from "../../lib/log.js";
import { buildCloudApi } from "./api.js";
import { ENDPOINT_FILE, type CloudEndpoint } from "./client.js";
import { loadCloudConfig, type CloudConfig } from "./config.js";
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

/**
 * Two local clouds with the same address_base would hand out the same addresses.
 * A cloud's data dir claims its address block for as long as it has VMs.
 */
export function claimAddressBlock(config: CloudConfig, dataDir: string): void {
  const claim = join(privateRunDir("local-cloud-addresses"), `address-base-${config.addressBase}`);
  if (existsSync(claim)) {
    const other = readFileSync(claim, "utf8").trim();
    if (other !== dataDir) {
      const pid = Number(
        existsSync(join(other, "daemon.pid"))
          ? readFileSync(join(other, "daemon.pid"), "utf8").split(" ")[0]
          : 0,
      );
      const state = readJsonIfExists(join(other, "state.json")) as { vms?: object } | undefined;
      const vms = Object.keys(state?.vms ?? {}).length;
      if ((pid && isAlive(pid)) || vms > 0) {
        const first = config.addressBase + 1;
        throw new Conflict(
          `address_base ${config.addressBase} (addresses 127.${first}.x.x and up) is used by the local cloud in ${other}` +
            ` (${vms} VMs); stop it with --purge, or give this cloud file another address_base`,
        );
      }
    }
  }
  writeFileSync(claim, dataDir + "\n");
}

export async function startDaemon(opts: DaemonOptions): Promise<RunningDaemon> {
  const { host, port } = parseListen(opts.listen);
  const config = loadCloudConfig(opts.configPath);
  const dataDir = resolve(opts.dataDir);
  // Traversable (not listable): job users such as postgres reach their disks below it.
  mkdirSync(dataDir, { recursive: true, mode: 0o711 });
  chmodSync(dataDir, 0o711);
  claimDataDir(dataDir, "local cloud daemon");
  claimAddressBlock(config, dataDir);
  const log = createLogger("cloud");
  const service = new LocalCloudService({ config, dataDir, log });
  for (const sentence of await service.start()) log.info(sentence);
  const token = readOrCreateToken(dataDir, "admin-token");
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
