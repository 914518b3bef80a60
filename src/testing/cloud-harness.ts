/**
 * A real local cloud daemon for a test: its own process group, temp data dir,
 * loopback address block and API port. `teardown()` kills exactly what it started:
 * the daemon's process group and every VM process group in its state file; and
 * removes exactly the nftables table and cgroups of its network (as root).
 */
import { spawn, type ChildProcess } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  closeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import { LocalCloudClient, ENDPOINT_FILE, type CloudEndpoint } from "../cloud/local/client.js";
import type { LocalState } from "../cloud/local/state.js";
import { findVmByMarker, killVm } from "../cloud/local/vm-runtime.js";
import { cgroup2Root, cgroupRef, removeCgroup } from "../cloud/local/network/cgroups.js";
import { deleteTable } from "../cloud/local/network/nft.js";
import { DelayQueues } from "../cloud/local/network/delay.js";
import { readStat, signalGroup, signalPid } from "../lib/proc.js";
import { sleep, waitFor } from "../lib/sleep.js";
import { claimAddressBlock, type AddressBlock } from "./addresses.js";

const CLI_MAIN = fileURLToPath(new URL("../cli/main.js", import.meta.url));

export interface HarnessOptions {
  /** Zones and hosts; default: three zones with two hosts each, h1 with ssd. */
  zones?: Array<{
    name: string;
    hosts: Array<{ name: string; cpu?: number; ram_mb?: number; attributes?: object }>;
  }>;
  agentPort?: number;
}

export const THREE_ZONES: NonNullable<HarnessOptions["zones"]> = ["z1", "z2", "z3"].map((name) => ({
  name,
  hosts: [
    { name: "h1", attributes: { ssd: true } },
    { name: "h2", attributes: {} },
  ],
}));

export class CloudHarness {
  readonly dir: string;
  /** A zonal home for CLI runs: its `cloud/` is this harness's data dir. */
  readonly home: string;
  readonly dataDir: string;
  readonly configPath: string;
  private block: AddressBlock;
  private daemon: ChildProcess | undefined;
  private daemonProc: { pid: number; startTime: number } | undefined;
  endpoint: CloudEndpoint | undefined;
  client!: LocalCloudClient;
  private port = 0;

  constructor(opts: HarnessOptions = {}) {
    this.dir = mkdtempSync(join(tmpdir(), "zonal-cloud-test-"));
    chmodSync(this.dir, 0o711); // job users (postgres) reach their disks below it
    this.home = join(this.dir, "home");
    this.dataDir = join(this.home, "cloud");
    this.configPath = join(this.dir, "cloud.yml");
    this.block = claimAddressBlock();
    const zones = (opts.zones ?? THREE_ZONES).map((z) => ({
      name: z.name,
      hosts: z.hosts.map((h) => ({ cpu: 8, ram_mb: 8192, attributes: {}, ...h })),
    }));
    writeFileSync(
      this.configPath,
      stringify({ address_base: this.block.base, agent_port: opts.agentPort ?? 6868, zones }),
    );
  }

  /** The address base of this harness's cloud (its network's nftables table is zonal_b<base>). */
  get addressBase(): number {
    return this.block.base;
  }

  /** The address prefix of a zone's VMs in this harness, e.g. "127.13." for the first zone. */
  zonePrefix(zoneIndex: number): string {
    return `127.${this.block.base + zoneIndex + 1}.`;
  }

  get logPath(): string {
    return join(this.dir, "daemon.log");
  }

  /** Starts the daemon (again, on the same port after the first start). */
  async start(): Promise<LocalCloudClient> {
    const out = openSync(this.logPath, "a");
    const child = spawn(
      process.execPath,
      [
        CLI_MAIN,
        "cloud",
        "serve",
        "--config",
        this.configPath,
        "--data-dir",
        this.dataDir,
        "--listen",
        `127.0.0.1:${this.port}`,
      ],
      { detached: true, stdio: ["ignore", out, out], env: { ...process.env, ZONAL_LOG_LEVEL: "info" } },
    );
    closeSync(out);
    this.daemon = child;
    const st = readStat(child.pid!);
    this.daemonProc = { pid: child.pid!, startTime: st?.startTime ?? 0 };
    const endpointPath = join(this.dataDir, ENDPOINT_FILE);
    this.endpoint = await waitFor(
      () => {
        if (child.exitCode !== null) throw new Error(`cloud daemon exited: ${this.log().slice(-2000)}`);
        if (!existsSync(endpointPath)) return undefined;
        const ep = JSON.parse(readFileSync(endpointPath, "utf8")) as CloudEndpoint;
        return ep.pid === child.pid ? ep : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 50, what: "the cloud daemon's endpoint file" },
    );
    this.port = Number(new URL(this.endpoint.url).port);
    this.client = new LocalCloudClient(this.endpoint);
    return this.client;
  }

  log(): string {
    return existsSync(this.logPath) ? readFileSync(this.logPath, "utf8") : "";
  }

  /**
   * Kills the daemon abruptly (SIGKILL to its process group), or stops it as `zonal
   * down` does (SIGTERM to it alone); its VMs keep running.
   */
  async killDaemon(signal: "SIGKILL" | "SIGTERM" = "SIGKILL"): Promise<void> {
    if (!this.daemonProc) return;
    const proc = this.daemonProc;
    if (signal === "SIGKILL") signalGroup(proc.pid, proc.startTime, "SIGKILL");
    else signalPid(proc.pid, "SIGTERM");
    await waitFor(() => (this.daemon?.exitCode !== null || this.daemon?.signalCode ? true : undefined), {
      timeoutMs: 10_000,
      what: "the daemon to die",
    });
    this.daemonProc = undefined;
  }

  /** Reads the daemon's state file (what it recorded about VMs). */
  state(): LocalState {
    return JSON.parse(readFileSync(join(this.dataDir, "state.json"), "utf8")) as LocalState;
  }

  async teardown(): Promise<void> {
    await this.killDaemon().catch(() => undefined);
    // A daemon started some other way (e.g. by `zonal cloud start`) left its pid and start time.
    const pidFile = join(this.dataDir, "daemon.pid");
    if (existsSync(pidFile)) {
      const [pid, startTime] = readFileSync(pidFile, "utf8").trim().split(" ").map(Number);
      if (pid && startTime) signalGroup(pid, startTime, "SIGKILL");
    }
    const vms = existsSync(join(this.dataDir, "state.json")) ? Object.values(this.state().vms) : [];
    for (const vm of vms) await killVm(vm.id, vm.proc ?? findVmByMarker(vm.id)).catch(() => undefined);
    if (process.getuid?.() === 0) {
      await deleteTable(`zonal_b${this.block.base}`).catch(() => undefined);
      const delays = existsSync(join(this.dataDir, "state.json")) ? (this.state().network?.delays ?? []) : [];
      await new DelayQueues(this.block.base, "/dev/null").clear(delays).catch(() => undefined);
      const root = cgroup2Root();
      if (root) {
        const network = `b${this.block.base}`;
        for (const name of [...vms.map((v) => v.id), "control-plane", ""])
          removeCgroup(cgroupRef(root, network, name));
      }
    }
    await sleep(10);
    rmSync(this.dir, { recursive: true, force: true });
    this.block.release();
  }
}
