/**
 * zonal as an operator runs it, for end-to-end tests: `zonal up --detach` on the
 * harness's own cloud file, free ports and home, then the real CLI. Teardown kills
 * the control plane, the cloud daemon and every VM it started (by PID).
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { LocalCloudClient } from "../cloud/local/client.js";
import { DirectorClient } from "../director/client.js";
import { signalGroup, isAlive } from "../lib/proc.js";
import { waitFor } from "../lib/sleep.js";
import { CloudHarness, type HarnessOptions } from "./cloud-harness.js";

const BIN = fileURLToPath(new URL("../../../bin/zonal.js", import.meta.url));

export interface CliResult {
  code: number | null;
  out: string;
  err: string;
}

export class ZonalHarness extends CloudHarness {
  director!: DirectorClient;

  /** The CLI this harness runs: this checkout's, or `opts.bin` (a staged copy of zonal, for upgrades). */
  private readonly bin: string;

  constructor(private readonly opts: HarnessOptions & { env?: Record<string, string>; bin?: string } = {}) {
    super(opts);
    this.bin = opts.bin ?? BIN;
  }

  zonal(...args: string[]): CliResult {
    const r = spawnSync(process.execPath, [this.bin, "--home", this.home, ...args], {
      encoding: "utf8",
      timeout: 300_000,
      env: { ...process.env, ...(this.opts.env ?? {}) },
    });
    return { code: r.status, out: r.stdout, err: r.stderr };
  }

  /**
   * The CLI without blocking this process: checkers running in it keep writing and
   * timing (a synchronous run would freeze their clocks and show a false stall).
   */
  zonalAsync(...args: string[]): Promise<CliResult> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [this.bin, "--home", this.home, ...args], {
        env: { ...process.env, ...(this.opts.env ?? {}) },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let out = "";
      let err = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      child.stderr.on("data", (d: Buffer) => (err += d.toString()));
      const timer = setTimeout(() => child.kill("SIGKILL"), 300_000);
      child.on("close", (code) => {
        clearTimeout(timer);
        resolve({ code, out, err });
      });
    });
  }

  /** Runs a command that must succeed and parses its `--json` output. */
  json<T>(...args: string[]): T {
    const r = this.zonal(...args, "--json");
    if (r.code !== 0) throw new Error(`zonal ${args.join(" ")} failed (${r.code}): ${r.err}${r.out}`);
    return JSON.parse(r.out) as T;
  }

  /** The control plane listens on an address of the test's own block (a network fault target). */
  private ports = { cloud: "127.0.0.1:0", director: `127.${this.addressBase}.0.2:0` };

  /**
   * `zonal up --detach`. The first time on free ports; after that on the same ports,
   * as an operator's restart would be (agents keep sending heartbeats to one address).
   */
  async up(...extra: string[]): Promise<void> {
    const r = await this.zonalAsync(
      "up",
      "--detach",
      "--cloud-file",
      this.configPath,
      "--cloud-listen",
      this.ports.cloud,
      "--listen",
      this.ports.director,
      ...extra,
    );
    if (r.code !== 0) throw new Error(`zonal up failed: ${r.err}${r.out}`);
    this.client = LocalCloudClient.fromDataDir(this.dataDir);
    this.director = DirectorClient.fromDataDir(join(this.home, "director"));
    this.ports = { cloud: new URL(this.client.url).host, director: new URL(this.director.endpoint.url).host };
    await this.director.info();
  }

  private controlPlaneProc(): { pid: number; startTime: number } | undefined {
    const pidFile = join(this.home, "director", "daemon.pid");
    if (!existsSync(pidFile)) return undefined;
    const [pid, startTime] = readFileSync(pidFile, "utf8").trim().split(" ").map(Number);
    return pid && startTime ? { pid, startTime } : undefined;
  }

  /** Kills the control plane (SIGKILL: a crash; SIGTERM: a clean stop) and waits until it is gone. */
  async stopControlPlane(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const proc = this.controlPlaneProc();
    if (!proc) return;
    signalGroup(proc.pid, proc.startTime, signal);
    await waitFor(() => (isAlive(proc.pid, proc.startTime) ? undefined : true), {
      timeoutMs: 20_000,
      what: "the control plane to stop",
    });
  }

  override async teardown(): Promise<void> {
    const proc = this.controlPlaneProc();
    if (proc) signalGroup(proc.pid, proc.startTime, "SIGKILL");
    await super.teardown();
  }
}
