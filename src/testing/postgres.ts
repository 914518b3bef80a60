/**
 * A throwaway PostgreSQL 15 server for tests: initdb into a temp dir, run it as the
 * `postgres` system user on an address of the test's own block, and kill exactly
 * its process group on teardown.
 */
import { spawn, spawnSync } from "node:child_process";
import { appendFileSync, chownSync, closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { lookupUser } from "../lib/users.js";
import { readStat, signalGroup } from "../lib/proc.js";
import { waitFor } from "../lib/sleep.js";
import { claimAddressBlock, type AddressBlock } from "./addresses.js";

export const PG_BIN = "/usr/lib/postgresql/15/bin";

export class TestPostgres {
  readonly dir: string;
  readonly host: string;
  readonly port = 5432;
  private block: AddressBlock;
  private proc: { pid: number; startTime: number } | undefined;

  constructor() {
    this.block = claimAddressBlock();
    this.host = `127.${this.block.base}.0.1`;
    this.dir = mkdtempSync(join(tmpdir(), "zonal-pg-test-"));
  }

  get url(): string {
    return `postgres://postgres@${this.host}:${this.port}/postgres`;
  }

  async start(): Promise<this> {
    const user = lookupUser("postgres");
    chownSync(this.dir, user.uid, user.gid);
    const data = join(this.dir, "data");
    const init = spawnSync(`${PG_BIN}/initdb`, ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"], {
      uid: user.uid,
      gid: user.gid,
      encoding: "utf8",
    });
    if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
    // Clients here may leave from any loopback address (the local cloud gives each
    // VM, and the control plane, an address of its own).
    appendFileSync(join(data, "pg_hba.conf"), "host all all 127.0.0.0/8 trust\n");
    const log = openSync(join(this.dir, "postgres.log"), "a");
    chownSync(join(this.dir, "postgres.log"), user.uid, user.gid);
    const child = spawn(
      `${PG_BIN}/postgres`,
      [
        "-D",
        data,
        "-c",
        `listen_addresses=${this.host}`,
        "-p",
        String(this.port),
        "-c",
        `unix_socket_directories=${this.dir}`,
        "-c",
        "fsync=off",
      ],
      { uid: user.uid, gid: user.gid, detached: true, stdio: ["ignore", log, log] },
    );
    closeSync(log);
    child.unref();
    this.proc = { pid: child.pid!, startTime: readStat(child.pid!)?.startTime ?? 0 };
    await waitFor(
      async () => {
        const client = new pg.Client({ connectionString: this.url });
        await client.connect();
        await client.end();
        return true;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: `PostgreSQL on ${this.host}` },
    );
    return this;
  }

  log(): string {
    return readFileSync(join(this.dir, "postgres.log"), "utf8");
  }

  async stop(): Promise<void> {
    if (this.proc) signalGroup(this.proc.pid, this.proc.startTime, "SIGKILL");
    this.proc = undefined;
    rmSync(this.dir, { recursive: true, force: true });
    this.block.release();
  }
}
