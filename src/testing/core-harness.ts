/**
 * The orchestration core in one process, for tests that take milliseconds: the real
 * control plane (director, executor, health monitor, broker, API) on a loopback
 * address, over the in-memory cloud whose VMs run the fake agent. Each harness has
 * its own data dir and its own block of loopback addresses (claimed like the real
 * harnesses' blocks); teardown closes everything it started, even after a failure.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { MemoryCloud } from "../cloud/memory/memory-cloud.js";
import { repoPath } from "../cli/home.js";
import { startControlPlane, type RunningControlPlane } from "../control-plane/server.js";
import { DirectorClient } from "../director/client.js";
import type { HealthConfig } from "../health/config.js";
import { silentLogger } from "../lib/log.js";
import { claimAddressBlock } from "./addresses.js";
import { FakeAgents } from "./fake-agent.js";

/** A health monitor tuned for tests: judges a silent VM within 2 s (agents beat every 500 ms). */
export const FAST_HEALTH: HealthConfig = {
  unresponsiveAfterMs: 1500,
  maxJobRestarts: 5,
  probeIntervalMs: 300,
  probeFailures: 3,
  meltdownShare: 0.5,
  meltdownMin: 3,
  confirmMs: 200,
  tickMs: 50,
};

export class CoreHarness {
  readonly dir = mkdtempSync(join(tmpdir(), "zonal-core-"));
  readonly agents = new FakeAgents(async (vmId) => (await this.cloud.getVm(vmId))?.disks ?? []);
  readonly cloud: MemoryCloud;
  private cp: RunningControlPlane | undefined;
  client!: DirectorClient;

  private readonly block = claimAddressBlock();

  constructor() {
    const host = (name: string, attributes = {}) => ({ name, cpu: 16, ramMb: 65_536, attributes });
    this.cloud = new MemoryCloud({
      firstOctet: this.block.base + 1,
      zones: ["z1", "z2", "z3"].map((name) => ({ name, hosts: [host("h1", { ssd: true }), host("h2")] })),
      agents: this.agents,
    });
  }

  get director() {
    return this.cp!.director;
  }

  /** The broker's config file (default: examples/broker.yml). */
  brokerConfig = repoPath("examples", "broker.yml");

  /** Starts the control plane (again, after `down`) and uploads examples/cloud-config.yml. */
  async up(health: HealthConfig | false = FAST_HEALTH): Promise<void> {
    this.cp = await startControlPlane({
      dataDir: join(this.dir, "control-plane"),
      listen: `127.${this.block.base}.0.1:0`,
      cloud: this.cloud,
      cloudName: "memory",
      brokerConfig: this.brokerConfig,
      health,
      log: silentLogger,
    });
    this.client = new DirectorClient({ url: this.cp.endpoint.url, token: this.cp.endpoint.token });
    await this.client.setCloudConfig(parse(readFileSync(repoPath("examples", "cloud-config.yml"), "utf8")));
  }

  /** Stops the control plane (its VMs and their fake agents stay, as after a crash of it). */
  async down(): Promise<void> {
    await this.cp?.close();
    this.cp = undefined;
  }

  async teardown(): Promise<void> {
    await this.down().catch(() => undefined);
    await this.agents.closeAll();
    rmSync(this.dir, { recursive: true, force: true });
    this.block.release();
  }
}
