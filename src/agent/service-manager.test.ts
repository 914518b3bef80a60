/**
 * The agent as a systemd `Type=notify` service (the unit OpenStack VMs get): a real
 * agent process from bin/zonal-agent.js, with the environment systemd gives a service
 * (INVOCATION_ID, NOTIFY_SOCKET) and Debian's systemd-notify, against a notification
 * socket that records what systemd would receive and from which PID. Not systemd
 * itself: none runs here. As root, as the agent runs (systemd-notify sends as the
 * agent only with the privilege to).
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, it } from "node:test";
import { Conflict, Unavailable } from "../lib/errors.js";
import { signalPid } from "../lib/proc.js";
import { sleep, waitFor } from "../lib/sleep.js";
import { claimAddressBlock } from "../testing/addresses.js";
import { NotifyListener } from "../testing/notify-listener.js";
import { AgentClient } from "./client.js";
import { handoverRefusal, notifyMainPid, notifyReady } from "./service-manager.js";
import { SETTINGS_FILE } from "./settings.js";

const AGENT_BIN = fileURLToPath(new URL("../../../bin/zonal-agent.js", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "zonal-agent-systemd-"));
const block = claimAddressBlock();
const token = "s".repeat(32);
/** Process groups this file started: each first agent leads one, and its successors join it. */
const groups: ChildProcess[] = [];
const listeners: NotifyListener[] = [];

after(async () => {
  // By group: a first agent that handed over has exited, its successor is in its group.
  for (const g of groups) signalPid(-g.pid!, "SIGKILL");
  for (const l of listeners) await l.stop();
  rmSync(dir, { recursive: true, force: true });
  block.release();
});

/** A real agent on its own address, started as systemd starts a service (`env`). */
async function startAgent(name: string, host: number, env: Record<string, string>) {
  const address = `127.${block.base}.7.${host}`;
  const port = 6881;
  const vmDir = join(dir, name);
  mkdirSync(vmDir);
  writeFileSync(
    join(vmDir, SETTINGS_FILE),
    JSON.stringify({
      vmId: name,
      address,
      agentPort: port,
      token,
      disksDir: join(vmDir, "disks"),
      ephemeralDir: join(vmDir, "ephemeral"),
    }),
    { mode: 0o600 },
  );
  const proc = spawn(process.execPath, [AGENT_BIN, "--vm-dir", vmDir], {
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
  });
  groups.push(proc);
  let output = ""; // its log (stdout) and stderr
  for (const stream of [proc.stdout!, proc.stderr!])
    stream.on("data", (c: Buffer) => (output += c.toString()));
  const client = new AgentClient({ address, port, token, timeoutMs: 2000 });
  await waitFor(() => client.info(), {
    timeoutMs: 20_000,
    intervalMs: 100,
    what: `agent ${name} (${output})`,
  });
  return { proc, client, output: () => output };
}

async function listener(name: string): Promise<NotifyListener> {
  const l = new NotifyListener(join(dir, `${name}.sock`));
  listeners.push(l);
  await l.start();
  return l;
}

describe("the agent as a systemd Type=notify service", () => {
  it("says it is ready; a handover makes the new agent the main process before the old one exits", async () => {
    const notify = await listener("a");
    const a = await startAgent("vm-a", 1, { INVOCATION_ID: "a1", NOTIFY_SOCKET: notify.path });
    const first = await notify.next("READY", "1");
    assert.equal(first.pid, a.proc.pid, "sent as the agent itself (the main process)");

    const exited = new Promise<bigint>((resolve) =>
      a.proc.once("exit", () => resolve(process.hrtime.bigint())),
    );
    const r = await a.client.handOver();
    assert.equal(r.from, a.proc.pid);
    assert.notEqual(r.pid, a.proc.pid);
    const moved = await notify.next("MAINPID", String(r.pid));
    assert.equal(moved.pid, a.proc.pid, "sent by the old agent, still the main process then");
    const oldExit = await exited;
    assert.ok(moved.atNs < oldExit, "systemd had the new main PID before the old agent exited");
    assert.equal((await a.client.info()).pid, r.pid, "the successor serves");
    assert.equal(
      notify.received.filter((n) => n.pid === r.pid).length,
      0,
      "the successor itself said nothing (not the main process yet)",
    );
  });

  it("refuses a handover when its unit is not Type=notify; the agent goes on", async () => {
    const b = await startAgent("vm-b", 2, { INVOCATION_ID: "b1" });
    await assert.rejects(b.client.handOver(), (err: Error) => {
      assert.ok(err instanceof Conflict, String(err));
      assert.match(err.message, /not Type=notify/);
      return true;
    });
    assert.equal((await b.client.info()).pid, b.proc.pid);
  });

  it("an old agent that cannot tell systemd the new main PID stays, idle, as long as the new one lives", async () => {
    const notify = await listener("c");
    const c = await startAgent("vm-c", 3, { INVOCATION_ID: "c1", NOTIFY_SOCKET: notify.path });
    await notify.next("READY", "1");
    await notify.stop(); // the socket file stays, nobody reads it: sends are refused
    const r = await c.client.handOver();
    await waitFor(
      () => (/systemd still has this process as the main one/.test(c.output()) ? true : undefined),
      {
        timeoutMs: 10_000,
        what: `the old agent to say why it stays (its output: ${c.output()})`,
      },
    );
    await sleep(1000); // it would exit 200 ms after a handover systemd heard of
    assert.equal(c.proc.exitCode, null, "the old agent is still there: systemd's main process");
    assert.equal(
      (await c.client.info()).pid,
      r.pid,
      "the successor serves; the idle one closed its connections",
    );
    // When the successor is gone, the idle one exits: systemd restarts the service.
    const exited = new Promise<number | null>((resolve) => c.proc.once("exit", (code) => resolve(code)));
    process.kill(r.pid, "SIGKILL");
    assert.equal(await exited, 1);
  });

  it("notifyReady and notifyMainPid do nothing without a socket and fail clearly with a dead one", async () => {
    await notifyReady({ PATH: process.env.PATH });
    await notifyMainPid(1, { PATH: process.env.PATH });
    for (const call of [notifyReady, (env: NodeJS.ProcessEnv) => notifyMainPid(1, env)])
      await assert.rejects(
        call({ PATH: process.env.PATH, NOTIFY_SOCKET: join(dir, "nobody.sock") }),
        (err: Error) => err instanceof Unavailable && /could not tell systemd/.test(err.message),
      );
    assert.equal(handoverRefusal({}), undefined, "not under systemd");
    assert.equal(
      handoverRefusal({ INVOCATION_ID: "x", NOTIFY_SOCKET: "/run/x" }),
      undefined,
      "a Type=notify unit",
    );
    assert.match(handoverRefusal({ INVOCATION_ID: "x" }) ?? "", /recreate the VM to upgrade it/);
  });
});
