/**
 * A Patroni 3.0 cluster (Debian's patroni) for the failover benchmark's peer: three
 * nodes on loopback addresses of its own, PostgreSQL 15, leases in the given etcd,
 * synchronous_mode_strict like zonal's clusters. Each node runs as the postgres
 * user in its own process group, so a "crash" is SIGKILL to that group and a
 * "freeze" SIGSTOP, as for a zonal VM.
 */
import { spawn } from "node:child_process";
import {
  chownSync,
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  chmodSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { lookupUser } from "../agent/users.js";
import { isZombie, processTree, readStat, signalGroup, signalPid } from "../lib/proc.js";
import { waitFor } from "../lib/sleep.js";
import { claimAddressBlock, type AddressBlock } from "./addresses.js";

export interface PatroniTiming {
  ttl: number;
  loop_wait: number;
  retry_timeout: number;
}

export const PATRONI_DEFAULTS: PatroniTiming = { ttl: 30, loop_wait: 10, retry_timeout: 10 };

export const PASSWORD = "bench-superuser";

export class PatroniCluster {
  readonly dir: string;
  private block: AddressBlock;
  private procs = new Map<number, { pid: number; startTime: number }>();

  constructor(
    private readonly etcdEndpoints: string[],
    private readonly timing: PatroniTiming,
  ) {
    this.block = claimAddressBlock();
    this.dir = mkdtempSync(join(tmpdir(), "zonal-patroni-"));
    chmodSync(this.dir, 0o755);
  }

  host(i: number): string {
    return `127.${this.block.base}.0.${11 + i}`;
  }

  private config(i: number): string {
    const node = join(this.dir, `n${i}`);
    return stringify({
      scope: `bench-${this.block.base}`,
      name: `n${i}`,
      restapi: { listen: `${this.host(i)}:8008`, connect_address: `${this.host(i)}:8008` },
      etcd3: { hosts: this.etcdEndpoints.map((e) => new URL(e).host) },
      bootstrap: {
        dcs: {
          ...this.timing,
          synchronous_mode: true,
          synchronous_mode_strict: true,
          postgresql: {
            use_pg_rewind: true,
            parameters: { wal_log_hints: "on", max_wal_senders: 10, max_replication_slots: 10 },
          },
        },
        initdb: [{ encoding: "UTF8" }, "data-checksums"],
      },
      postgresql: {
        listen: `${this.host(i)}:5432`,
        connect_address: `${this.host(i)}:5432`,
        data_dir: join(node, "data"),
        bin_dir: "/usr/lib/postgresql/15/bin",
        pgpass: join(node, "pgpass"),
        authentication: {
          superuser: { username: "postgres", password: PASSWORD },
          replication: { username: "replicator", password: "bench-replication" },
          rewind: { username: "postgres", password: PASSWORD },
        },
        parameters: { unix_socket_directories: node, shared_buffers: "32MB" },
        pg_hba: [
          "local all all trust",
          "host all all 127.0.0.0/8 scram-sha-256",
          "host replication replicator 127.0.0.0/8 scram-sha-256",
        ],
      },
    });
  }

  /** Starts (or restarts) node i. */
  startNode(i: number): void {
    const user = lookupUser("postgres");
    const node = join(this.dir, `n${i}`);
    mkdirSync(node, { recursive: true });
    chownSync(node, user.uid, user.gid);
    const cfg = join(node, "patroni.yml");
    writeFileSync(cfg, this.config(i));
    chownSync(cfg, user.uid, user.gid);
    const log = openSync(join(this.dir, `n${i}.log`), "a");
    const child = spawn("patroni", [cfg], {
      uid: user.uid,
      gid: user.gid,
      detached: true,
      stdio: ["ignore", log, log],
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: node },
    });
    closeSync(log);
    child.unref();
    this.procs.set(i, { pid: child.pid!, startTime: readStat(child.pid!)?.startTime ?? 0 });
  }

  async start(): Promise<this> {
    for (let i = 0; i < 3; i++) this.startNode(i);
    await this.waitWhole(180_000);
    return this;
  }

  /** The node index of the current leader (asks the nodes' REST APIs). */
  async leader(): Promise<number | undefined> {
    for (let i = 0; i < 3; i++) {
      try {
        const r = await fetch(`http://${this.host(i)}:8008/primary`, { signal: AbortSignal.timeout(500) });
        await r.body?.cancel();
        if (r.status === 200) return i;
      } catch {
        /* down */
      }
    }
    return undefined;
  }

  /** A leader and two streaming replicas. */
  async waitWhole(timeoutMs: number): Promise<void> {
    await waitFor(
      async () => {
        for (let i = 0; i < 3; i++) {
          try {
            const r = await fetch(`http://${this.host(i)}:8008/cluster`, {
              signal: AbortSignal.timeout(1000),
            });
            const c = (await r.json()) as { members: Array<{ role: string; state: string }> };
            const leaders = c.members.filter((m) => m.role === "leader" && m.state === "running").length;
            const replicas = c.members.filter(
              (m) => m.role !== "leader" && (m.state === "streaming" || m.state === "running"),
            ).length;
            if (leaders === 1 && replicas === 2) return true;
          } catch {
            /* ask the next */
          }
        }
        return undefined;
      },
      { timeoutMs, intervalMs: 500, what: "the Patroni cluster to be whole" },
    );
  }

  /**
   * Signals node i as a VM would be: Patroni's process group and its postmaster's
   * (Patroni starts postgres in a session of its own).
   */
  signal(i: number, signal: NodeJS.Signals): void {
    const p = this.procs.get(i);
    if (p) signalGroup(p.pid, p.startTime, signal);
    // Patroni starts postgres in a session of its own, and each backend starts its own
    // session too: signal the postmaster and every process under it.
    const postmaster = this.postmaster(i);
    if (postmaster) for (const pid of processTree(postmaster.pid)) signalPid(pid, signal);
  }

  private postmaster(i: number): { pid: number; pgid: number } | undefined {
    try {
      const pid = Number(
        readFileSync(join(this.dir, `n${i}`, "data", "postmaster.pid"), "utf8").split("\n")[0],
      );
      const st = readStat(pid);
      return st && !isZombie(st) && st.pgid > 1 ? { pid, pgid: st.pgid } : undefined;
    } catch {
      return undefined;
    }
  }

  /** The last lines of every node's log (for a run that went wrong). */
  logTails(lines: number): string {
    return [...this.procs.keys()]
      .map((i) => {
        let text = "";
        try {
          text = readFileSync(join(this.dir, `n${i}.log`), "utf8");
        } catch {
          /* no log yet */
        }
        return `--- n${i} (${this.host(i)})\n${text.trimEnd().split("\n").slice(-lines).join("\n")}`;
      })
      .join("\n");
  }

  async stop(): Promise<void> {
    for (const i of this.procs.keys()) {
      this.signal(i, "SIGCONT");
      this.signal(i, "SIGKILL");
    }
    await new Promise((r) => setTimeout(r, 500));
    rmSync(this.dir, { recursive: true, force: true });
    this.block.release();
  }
}
