/**
 * The agent as a systemd `Type=notify` service (the unit OpenStack VMs get): a real
 * agent process from bin/zonal-agent.js, with the environment systemd gives a service
 * (INVOCATION_ID, NOTIFY_SOCKET) and Debian's systemd-notify, against a notification
 * socket that records what systemd would receive. Not systemd itself: none runs here.
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
import { waitFor } from "../lib/sleep.js";
import { claimAddressBlock } from "../testing/addresses.js";
import { NotifyListener } from "../testing/notify-listener.js";
import { AgentClient } from "./client.js";
import { handoverRefusal, notifyReady } from "./service-manager.js";
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
    stdio: ["ignore", "ignore", "pipe"],
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
  });
  groups.push(proc);
  let stderr = "";
  proc.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
  const client = new AgentClient({ address, port, token, timeoutMs: 2000 });
  await waitFor(() => client.info(), {
    timeoutMs: 20_000,
    intervalMs: 100,
    what: `agent ${name} (${stderr})`,
  });
  return { proc, client, stderr: () => stderr };
}

async function listener(name: string): Promise<NotifyListener> {
  const l = new NotifyListener(join(dir, `${name}.sock`));
  listeners.push(l);
  await l.start();
  return l;
}

describe("the agent as a systemd Type=notify service", () => {
  it("says it is ready; a handover moves the main PID to the new agent before the old one exits", async () => {
    const notify = await listener("a");
    const a = await startAgent("vm-a", 1, { INVOCATION_ID: "a1", NOTIFY_SOCKET: notify.path });
    const first = await notify.next("READY", "1");
    assert.equal(first.pid, a.proc.pid, "sent with the agent's own credentials");
    assert.equal(first.fields.MAINPID, String(a.proc.pid));

    const exited = new Promise<bigint>((resolve) =>
      a.proc.once("exit", () => resolve(process.hrtime.bigint())),
    );
    const r = await a.client.handOver();
    const handedAt = process.hrtime.bigint();
    assert.equal(r.from, a.proc.pid);
    assert.notEqual(r.pid, a.proc.pid);
    const moved = await notify.next("MAINPID", String(r.pid));
    assert.equal(moved.pid, r.pid, "the successor says it itself, with its own credentials");
    assert.equal(moved.fields.READY, "1");
    assert.ok(moved.atNs < handedAt, "systemd had the new main PID before the handover was answered");
    const oldExit = await exited;
    assert.ok(moved.atNs < oldExit, "and before the old agent exited");
    assert.equal((await a.client.info()).pid, r.pid, "the successor serves");
  });

  it("refuses a handover when its unit is not Type=notify; the agent goes on", async () => {
    const b = await startAgent("vm-b", 2, { INVOCATION_ID: "b1" });
    await assert.rejects(b.client.handOver(), (err: Error) => {
      assert.ok(err instanceof Conflict, String(err));
      assert.match(err.message, /not Type=notify with NotifyAccess=all/);
      return true;
    });
    assert.equal((await b.client.info()).pid, b.proc.pid);
  });

  it("a successor that cannot notify systemd does not take over; the old agent says it is the main process again", async () => {
    const notify = await listener("c");
    const c = await startAgent("vm-c", 3, { INVOCATION_ID: "c1", NOTIFY_SOCKET: notify.path });
    await notify.next("READY", "1");
    await notify.stop(); // the socket file stays, nobody reads it: sends are refused
    await assert.rejects(c.client.handOver(), /the new agent exited \(code 1\) before it was ready/);
    assert.equal((await c.client.info()).pid, c.proc.pid, "the old agent goes on");
    await waitFor(
      () =>
        /could not tell systemd this agent is the main process again/.test(c.stderr()) ? true : undefined,
      {
        timeoutMs: 10_000,
        what: "the old agent to try to reclaim the main PID",
      },
    );
  });

  it("notifyReady does nothing without a socket and fails clearly with a dead one", async () => {
    await notifyReady({ PATH: process.env.PATH });
    await assert.rejects(
      notifyReady({ PATH: process.env.PATH, NOTIFY_SOCKET: join(dir, "nobody.sock") }),
      (err: Error) =>
        err instanceof Unavailable && /could not tell systemd this agent is ready/.test(err.message),
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
