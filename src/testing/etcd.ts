/**
 * A throwaway etcd cluster (Debian's etcd-server) for tests: N members on addresses
 * of the test's own block, each its own process group, killed by PID on teardown.
 */
import { spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readStat, signalGroup } from "../lib/proc.js";
import { waitFor } from "../lib/sleep.js";
import { claimAddressBlock, type AddressBlock } from "./addresses.js";

export class TestEtcd {
  readonly dir: string;
  private block: AddressBlock;
  private procs: Array<{ pid: number; startTime: number }> = [];

  constructor(readonly members = 3) {
    this.block = claimAddressBlock();
    this.dir = mkdtempSync(join(tmpdir(), "zonal-etcd-test-"));
  }

  private host(i: number): string {
    return `127.${this.block.base}.0.${i + 1}`;
  }

  get endpoints(): string[] {
    return Array.from({ length: this.members }, (_, i) => `http://${this.host(i)}:2379`);
  }

  async start(): Promise<this> {
    const cluster = Array.from({ length: this.members }, (_, i) => `m${i}=http://${this.host(i)}:2380`).join(
      ",",
    );
    for (let i = 0; i < this.members; i++) {
      const log = openSync(join(this.dir, `m${i}.log`), "a");
      const child = spawn(
        "etcd",
        [
          "--name",
          `m${i}`,
          "--data-dir",
          join(this.dir, `m${i}`),
          "--listen-client-urls",
          `http://${this.host(i)}:2379`,
          "--advertise-client-urls",
          `http://${this.host(i)}:2379`,
          "--listen-peer-urls",
          `http://${this.host(i)}:2380`,
          "--initial-advertise-peer-urls",
          `http://${this.host(i)}:2380`,
          "--initial-cluster",
          cluster,
          "--initial-cluster-state",
          "new",
          "--heartbeat-interval",
          "100",
          "--election-timeout",
          "500",
        ],
        { detached: true, stdio: ["ignore", log, log] },
      );
      closeSync(log);
      child.unref();
      this.procs.push({ pid: child.pid!, startTime: readStat(child.pid!)?.startTime ?? 0 });
    }
    await waitFor(
      async () => {
        for (const e of this.endpoints) {
          const r = await fetch(`${e}/health`, { signal: AbortSignal.timeout(1000) });
          if (!((await r.json()) as { health?: string }).health?.startsWith("true")) return undefined;
        }
        return true;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: "the etcd cluster to be healthy" },
    );
    return this;
  }

  /** Kills one member (SIGKILL). */
  kill(i: number): void {
    const p = this.procs[i];
    if (p) signalGroup(p.pid, p.startTime, "SIGKILL");
  }

  async stop(): Promise<void> {
    for (const p of this.procs) signalGroup(p.pid, p.startTime, "SIGKILL");
    rmSync(this.dir, { recursive: true, force: true });
    this.block.release();
  }
}
