/**
 * `LoopbackHypervisor`: what a hypervisor and cloud-init would do for the servers
 * of the test OpenStack, whose nova-compute runs `fake.FakeDriver` (it boots
 * nothing). It is test scaffolding standing in for a VM image, not for any zonal
 * feature: it watches Nova like an operator with admin rights and, for every ACTIVE
 * server, does what cloud-init does with the server's user data — renders the
 * Jinja header (`v1.instance_id` = the server's UUID), writes `write_files` under a
 * per-server root directory, and runs the agent unit's ExecStart with the paths
 * moved under that root. When Nova says the server is SHUTOFF, PAUSED or gone, it
 * kills the server's process group (the VM lost power). The agent listens on the
 * server's Neutron address (127.77.x.y from the Neutron stub), so traffic to the
 * VM really reaches it.
 */
import { spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { isAlive, readStat, signalGroup } from "../../src/lib/proc.js";
import { sleep } from "../../src/lib/sleep.js";
import type { OpenStackSession } from "../../src/cloud/openstack/session.js";
import { AGENT_DIR, INSTANCE_ID, UNIT_PATH, ZONAL_DIR } from "../../src/cloud/openstack/user-data.js";

const REPO = fileURLToPath(new URL("../../..", import.meta.url));

interface ServerView {
  id: string;
  status: string;
  "OS-EXT-SRV-ATTR:user_data"?: string | null;
}

interface Booted {
  pid: number;
  startTime: number;
  root: string;
}

export class LoopbackHypervisor {
  private readonly running = new Map<string, Booted>();
  private stopped = false;
  private loop: Promise<void> | undefined;
  readonly log: string[] = [];

  constructor(
    private readonly session: OpenStackSession,
    private readonly rootDir: string,
  ) {}

  start(): void {
    this.loop = (async () => {
      while (!this.stopped) {
        try {
          await this.tick();
        } catch (err) {
          this.log.push(`tick failed: ${(err as Error).message}`);
        }
        await sleep(300);
      }
    })();
  }

  /** PIDs of the process groups it started that still run. */
  pids(): number[] {
    return [...this.running.values()]
      .filter((b) => b.pid > 0 && isAlive(b.pid, b.startTime))
      .map((b) => b.pid);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    for (const [id, b] of this.running) this.powerOff(id, b);
  }

  private async tick(): Promise<void> {
    const res = await this.session.request<{ servers: ServerView[] }>({
      service: "compute",
      path: "/servers/detail",
      query: { all_tenants: "1" },
      headers: { "openstack-api-version": "compute 2.3" },
    });
    const seen = new Set<string>();
    for (const s of res.body.servers) {
      seen.add(s.id);
      const booted = this.running.get(s.id);
      if (s.status === "ACTIVE" && !booted) this.boot(s);
      else if (s.status !== "ACTIVE" && s.status !== "REBOOT" && s.status !== "HARD_REBOOT" && booted)
        this.powerOff(s.id, booted);
    }
    for (const [id, b] of this.running) if (!seen.has(id)) this.powerOff(id, b);
  }

  private boot(s: ServerView): void {
    const root = join(this.rootDir, s.id);
    const raw = s["OS-EXT-SRV-ATTR:user_data"];
    if (!raw) {
      this.log.push(`${s.id}: no user data, nothing to boot`);
      this.running.set(s.id, { pid: 0, startTime: 0, root });
      return;
    }
    let text = Buffer.from(raw, "base64").toString("utf8");
    if (text.startsWith("## template: jinja\n")) text = text.split(INSTANCE_ID).join(s.id);
    const doc = parse(text) as {
      write_files?: Array<{ path: string; content: string; permissions?: string }>;
    };
    let execStart = "";
    for (const f of doc.write_files ?? []) {
      const target = join(root, f.path);
      mkdirSync(dirname(target), { recursive: true });
      let content = f.content;
      if (f.path === `${AGENT_DIR}/settings.json`) {
        // The settings name absolute paths inside the VM; here they live under its root.
        const settings = JSON.parse(content) as Record<string, unknown>;
        settings.disksDir = join(root, String(settings.disksDir));
        settings.ephemeralDir = join(root, String(settings.ephemeralDir));
        content = JSON.stringify(settings);
      }
      writeFileSync(target, content, { mode: f.permissions ? parseInt(f.permissions, 8) : 0o644 });
      if (f.path === UNIT_PATH) execStart = /^ExecStart=(.*)$/m.exec(content)?.[1] ?? "";
    }
    if (!execStart) {
      this.log.push(`${s.id}: user data has no agent unit`);
      this.running.set(s.id, { pid: 0, startTime: 0, root });
      return;
    }
    const argv = execStart
      .split(/\s+/)
      .map((a) => a.replace(ZONAL_DIR, REPO.replace(/\/$/, "")).replace(AGENT_DIR, join(root, AGENT_DIR)));
    // `/usr/bin/env node …`: run with this node.
    const args = argv[0] === "/usr/bin/env" ? argv.slice(2) : argv.slice(1);
    mkdirSync(join(root, AGENT_DIR, "disks"), { recursive: true });
    mkdirSync(join(root, AGENT_DIR, "data"), { recursive: true });
    const out = openSync(join(root, "console.log"), "a");
    const child = spawn(process.execPath, args, {
      detached: true,
      stdio: ["ignore", out, out],
      env: { ...process.env, ZONAL_LOG_LEVEL: "warn" },
    });
    closeSync(out);
    child.unref();
    const pid = child.pid ?? 0;
    this.running.set(s.id, { pid, startTime: readStat(pid)?.startTime ?? 0, root });
    this.log.push(`${s.id}: booted (agent pid ${child.pid})`);
  }

  private powerOff(id: string, b: Booted): void {
    if (b.pid > 0) signalGroup(b.pid, b.startTime, "SIGKILL");
    this.running.delete(id);
    this.log.push(`${id}: powered off`);
  }

  /** The agent's settings as the server got them (for tests). */
  settingsOf(serverId: string): Record<string, unknown> | undefined {
    const b = this.running.get(serverId);
    if (!b) return undefined;
    return JSON.parse(readFileSync(join(b.root, AGENT_DIR, "settings.json"), "utf8")) as Record<
      string,
      unknown
    >;
  }
}
