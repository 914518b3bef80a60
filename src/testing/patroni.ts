/**
 * A Patroni 3.0 cluster (Debian's patroni) as bench/failover's peer: three nodes on
 * loopback addresses of their own (127.<base>.0.11–13), PostgreSQL 15 with the very
 * settings zonal's members run with (SHARED_PARAMETERS), leases in the given etcd,
 * synchronous mode strict or not.
 *
 * Each node (Patroni and the PostgreSQL it starts) is a cgroup of a NodeNetwork, so
 * it fails the way a zonal VM does: `crash` silences its address and then kills its
 * every process, `freeze` silences it and stops them, `isolate` cuts it off from the
 * other nodes and from etcd while clients still reach it.
 */
import { execFileSync, spawn } from "node:child_process";
import {
  existsSync,
  chmodSync,
  chownSync,
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
} from "node:fs";
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { stringify } from "yaml";
import { lookupUser } from "../lib/users.js";
import { SHARED_PARAMETERS } from "../jobs/postgres/files.js";
import { waitFor } from "../lib/sleep.js";
import { queryOnce } from "./failover-system.js";
import { claimAddressBlock, type AddressBlock } from "./addresses.js";
import type { TestEtcd } from "./etcd.js";
import { NodeNetwork } from "./node-network.js";

export interface PatroniTiming {
  ttl: number;
  loop_wait: number;
  retry_timeout: number;
}

export const PATRONI_DEFAULTS: PatroniTiming = { ttl: 30, loop_wait: 10, retry_timeout: 10 };
/** As close to zonal's lease (TTL 5 s, renewed every second) as Patroni allows (ttl >= loop_wait + 2 retry_timeout). */
export const PATRONI_TUNED: PatroniTiming = { ttl: 5, loop_wait: 1, retry_timeout: 2 };

export const PASSWORD = "bench-superuser";
const SIZE = 3;

/** zonal's shared settings as Patroni takes them (booleans as on/off). */
export function patroniParameters(): Record<string, string | number> {
  return Object.fromEntries(
    Object.entries(SHARED_PARAMETERS).map(([k, v]) => [k, typeof v === "boolean" ? (v ? "on" : "off") : v]),
  );
}

/** Installs Debian's patroni with apt when it is missing (the benches' peer). */
export function ensurePatroni(): void {
  if (existsSync("/usr/bin/patroni")) return;
  execFileSync("apt-get", ["install", "-y", "-qq", "patroni"], {
    stdio: "inherit",
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });
}

export class PatroniCluster {
  readonly dir: string;
  private readonly block: AddressBlock;
  private network: NodeNetwork | undefined;

  constructor(
    private readonly etcd: TestEtcd,
    readonly timing: PatroniTiming,
    readonly strict: boolean,
  ) {
    this.block = claimAddressBlock();
    this.dir = mkdtempSync(join(tmpdir(), "zonal-patroni-"));
    chmodSync(this.dir, 0o755);
  }

  /** Node names (Patroni's member names), n0..n2. */
  get names(): string[] {
    return Array.from({ length: SIZE }, (_, i) => `n${i}`);
  }

  host(name: string): string {
    return `127.${this.block.base}.0.${11 + Number(name.slice(1))}`;
  }

  get net(): NodeNetwork {
    if (!this.network) throw new Error("the Patroni cluster is not started");
    return this.network;
  }

  /** The dynamic (DCS) configuration every node bootstraps with. */
  dcsConfig(): Record<string, unknown> {
    return {
      ...this.timing,
      synchronous_mode: true,
      synchronous_mode_strict: this.strict,
      postgresql: { use_pg_rewind: true, use_slots: true, parameters: patroniParameters() },
    };
  }

  private config(name: string): string {
    const node = join(this.dir, name);
    return stringify({
      scope: `bench-${this.block.base}`,
      name,
      restapi: { listen: `${this.host(name)}:8008`, connect_address: `${this.host(name)}:8008` },
      etcd3: { hosts: this.etcd.endpoints.map((e) => new URL(e).host) },
      bootstrap: { dcs: this.dcsConfig(), initdb: [{ encoding: "UTF8" }, "data-checksums"] },
      postgresql: {
        listen: `${this.host(name)}:5432`,
        connect_address: `${this.host(name)}:5432`,
        data_dir: join(node, "data"),
        bin_dir: "/usr/lib/postgresql/15/bin",
        pgpass: join(node, "pgpass"),
        authentication: {
          superuser: { username: "postgres", password: PASSWORD },
          replication: { username: "replicator", password: "bench-replication" },
          rewind: { username: "postgres", password: PASSWORD },
        },
        parameters: { unix_socket_directories: node },
        pg_hba: [
          "local all all trust",
          "host all all 127.0.0.0/8 scram-sha-256",
          "host replication replicator 127.0.0.0/8 scram-sha-256",
        ],
      },
    });
  }

  async start(): Promise<this> {
    this.network = await NodeNetwork.open(
      this.block.base,
      join(this.dir, "delay.log"),
      this.names.map((name) => ({ name, address: this.host(name) })),
      this.etcd.endpoints.map((e, i) => ({ name: `etcd${i}`, address: new URL(e).hostname })),
    );
    for (const name of this.names) this.startNode(name);
    return this;
  }

  /** Starts (or restarts) a node: Patroni as the postgres user, in the node's cgroup. */
  startNode(name: string): void {
    const user = lookupUser("postgres");
    const node = join(this.dir, name);
    mkdirSync(node, { recursive: true });
    chownSync(node, user.uid, user.gid);
    const cfg = join(node, "patroni.yml");
    writeFileSync(cfg, this.config(name));
    chownSync(cfg, user.uid, user.gid);
    const log = openSync(join(this.dir, `${name}.log`), "a");
    const [sh, ...args] = this.net.launcher(name);
    const child = spawn(
      sh!,
      [...args, "setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "patroni", cfg],
      {
        detached: true,
        cwd: node,
        stdio: ["ignore", log, log],
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: node, LANG: "C.UTF-8" },
      },
    );
    closeSync(log);
    child.on("error", () => undefined); // a node that did not start shows in the settle check
    child.unref();
  }

  /** GET a node's REST API; undefined when it does not answer 200 within a second. */
  async api<T>(name: string, path: string): Promise<T | undefined> {
    try {
      const r = await fetch(`http://${this.host(name)}:8008${path}`, { signal: AbortSignal.timeout(1000) });
      if (r.status !== 200) {
        await r.body?.cancel();
        return undefined;
      }
      return (await r.json()) as T;
    } catch {
      return undefined;
    }
  }

  /**
   * The leader as the cluster reports it: the member most nodes' /cluster names leader
   * (a node cut off from etcd still reports its old view; the others outvote it).
   */
  async leader(): Promise<string | undefined> {
    const views = await Promise.all(
      this.names.map((n) =>
        this.api<{ members: Array<{ name: string; role: string; state: string }> }>(n, "/cluster"),
      ),
    );
    const votes = new Map<string, number>();
    for (const v of views) {
      const l = v?.members.find((m) => m.role === "leader" && m.state === "running");
      if (l) votes.set(l.name, (votes.get(l.name) ?? 0) + 1);
    }
    const [best] = [...votes].sort((a, b) => b[1] - a[1]);
    return best && best[1] > SIZE / 2 ? best[0] : undefined;
  }

  /** Superuser SQL on one node (one connection, client-side timeouts). */
  sql<R extends pg.QueryResultRow>(name: string, text: string, timeoutMs = 2000): Promise<R[]> {
    const config = {
      host: this.host(name),
      port: 5432,
      user: "postgres",
      password: PASSWORD,
      database: "postgres",
    };
    return queryOnce<R>(config, text, timeoutMs);
  }

  /** Whether the node's WAL receiver streams from `leader` now. */
  async streamsFrom(name: string, leader: string): Promise<boolean> {
    const rows = await this.sql<{ sender_host: string }>(
      name,
      "SELECT sender_host FROM pg_stat_wal_receiver WHERE status = 'streaming'",
    ).catch(() => []);
    return rows[0]?.sender_host === this.host(leader);
  }

  /** Waits until one leader runs and every other node streams from it. */
  async waitWhole(timeoutMs: number): Promise<string> {
    return waitFor(
      async () => {
        const leader = await this.leader();
        if (!leader) return undefined;
        const others = this.names.filter((n) => n !== leader);
        const streaming = await Promise.all(others.map((n) => this.streamsFrom(n, leader)));
        return streaming.every(Boolean) ? leader : undefined;
      },
      { timeoutMs, intervalMs: 500, what: "the Patroni cluster to be whole" },
    );
  }

  /** The last lines of every node's log (for a run that went wrong). */
  logTails(lines: number): string {
    return this.names
      .map((n) => {
        let text = "";
        try {
          text = readFileSync(join(this.dir, `${n}.log`), "utf8");
        } catch {
          /* no log yet */
        }
        return `--- ${n} (${this.host(n)})\n${text.trimEnd().split("\n").slice(-lines).join("\n")}`;
      })
      .join("\n");
  }

  /** Kills every process of every node, removes the network's table and groups, the files. */
  async stop(): Promise<void> {
    await this.network?.close();
    rmSync(this.dir, { recursive: true, force: true });
    this.block.release();
  }
}
