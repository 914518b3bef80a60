/** The supervisor of one job, with real processes on a loopback address of the test's own. */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { jobType } from "../jobs/registry.js";
import type { AnyJobType } from "../jobs/job-type.js";
import { isZombie, processTree, readStat, signalPid } from "../lib/proc.js";
import { waitFor } from "../lib/sleep.js";
import { claimAddressBlock } from "../testing/addresses.js";
import { JobRunner } from "./job-runner.js";
import { tailFile } from "../lib/files.js";
import { parseSpec } from "./spec.js";

const dir = mkdtempSync(join(tmpdir(), "zonal-runner-"));
const block = claimAddressBlock();
const address = `127.${block.base}.9.9`;
const runners: JobRunner[] = [];

function makeRunner(job: Record<string, unknown>, type?: AnyJobType): JobRunner {
  const spec = parseSpec({ jobs: [job] }).jobs[0]!;
  const r = new JobRunner({
    job: spec,
    type: type ?? jobType(spec.type)!,
    ctx: {
      jobName: spec.name,
      vmId: "vm-test",
      address,
      jobDir: join(dir, "jobs", spec.name),
      links: {},
      cluster: null,
      secrets: {},
      services: { token: "t", setAddresses: () => undefined, cutConnections: () => undefined },
      log: () => {},
    },
    logPath: join(dir, `${spec.name}.log`),
    env: { PATH: process.env.PATH ?? "", ZONAL_ADDRESS: address, EVENTS: join(dir, `${spec.name}.events`) },
    checkIntervalMs: 100,
  });
  runners.push(r);
  return r;
}

const node = (script: string) => [process.execPath, "-e", script];
const httpServer = (port: number, extra = "") =>
  node(
    `const t0 = Date.now(); require("http").createServer((q, s) => { ${extra} s.end("ok"); }).listen(${port}, process.env.ZONAL_ADDRESS)`,
  );
const until = <T>(probe: () => T | undefined, what: string, timeoutMs = 15_000) =>
  waitFor(probe, { timeoutMs, intervalMs: 50, what });
const gone = (pid: number) => {
  const st = readStat(pid);
  return !st || isZombie(st);
};

describe("JobRunner", () => {
  after(async () => {
    for (const r of runners) await r.stop();
    rmSync(dir, { recursive: true, force: true });
    block.release();
  });

  it("runs pre-start, waits for health, runs post-start; stop drains, stops, runs post-stop", async () => {
    const hook = (name: string) => `echo ${name} >> "$EVENTS"`;
    const r = makeRunner({
      name: "web",
      type: "process",
      config: { command: httpServer(7001), health_check: { http: { port: 7001, path: "/" } } },
      hooks: {
        pre_start: hook("pre-start"),
        post_start: hook("post-start"),
        drain: hook("drain"),
        post_stop: hook("post-stop"),
      },
    });
    await r.start();
    await until(() => (r.status().state === "running" ? true : undefined), "web running");
    assert.equal(r.status().healthy, true);
    assert.equal(await (await fetch(`http://${address}:7001/`)).text(), "ok");
    const events = join(dir, "web.events");
    await until(
      () => (readFileSync(events, "utf8").includes("post-start") ? true : undefined),
      "post-start hook",
    );
    const pid = r.status().pid!;
    await r.stop({ drain: true });
    assert.equal(r.status().state, "stopped");
    assert.ok(gone(pid), "the process is gone after stop");
    assert.deepEqual(readFileSync(events, "utf8").trim().split("\n"), [
      "pre-start",
      "post-start",
      "drain",
      "post-stop",
    ]);
    const log = tailFile(join(dir, "web.log"), 50).join("\n");
    assert.match(log, /running pre-start hook/);
    assert.match(log, /healthy: HTTP GET/);
  });

  it("restarts a process that dies, with backoff, and counts the restart", async () => {
    const r = makeRunner({
      name: "crashy",
      type: "process",
      config: { command: httpServer(7002), health_check: { tcp: { port: 7002 } } },
    });
    await r.start();
    await until(() => (r.status().state === "running" ? true : undefined), "running");
    const first = r.status().pid!;
    signalPid(first, "SIGKILL");
    await until(() => (r.status().state === "backoff" ? true : undefined), "backoff after the kill");
    assert.equal(r.status().restarts, 1);
    assert.match(r.status().message ?? "", /exited \(signal SIGKILL\); restart 1 in 1000 ms/);
    await until(() => (r.status().state === "running" ? true : undefined), "running again");
    assert.notEqual(r.status().pid, first);
    assert.equal(r.status().lastExit?.signal, "SIGKILL");
    await r.stop();
  });

  it("a restart whose prepare fails is tried again with backoff (prepare runs before every start)", async () => {
    const base = jobType("process")!;
    let prepares = 0;
    const flaky: AnyJobType = {
      ...base,
      // The second prepare fails (a peer it needs is away), the third works.
      prepare: async () => {
        prepares += 1;
        if (prepares === 2) throw new Error("the leader to clone from does not answer");
      },
    };
    const r = makeRunner(
      {
        name: "flaky",
        type: "process",
        config: { command: httpServer(7006), health_check: { tcp: { port: 7006 } } },
      },
      flaky,
    );
    await r.start();
    await until(() => (r.status().state === "running" ? true : undefined), "running");
    await r.restartProcess("test");
    assert.equal(r.status().state, "backoff");
    assert.match(
      r.status().message ?? "",
      /could not restart: the leader to clone from does not answer; restart 1 in/,
    );
    await until(() => (r.status().state === "running" ? true : undefined), "running after the retry");
    assert.equal(prepares, 3);
    await r.stop();
  });

  it("a restart runs `stopped` once the old process has exited, before prepare starts the new one", async () => {
    const base = jobType("process")!;
    const order: string[] = [];
    const traced: AnyJobType = { ...base, prepare: async () => void order.push("prepare") };
    const r = makeRunner(
      {
        name: "traced",
        type: "process",
        config: { command: httpServer(7007), health_check: { tcp: { port: 7007 } } },
      },
      traced,
    );
    await r.start();
    await until(() => (r.status().state === "running" ? true : undefined), "running");
    const oldPid = r.status().pid!;
    order.length = 0;
    await r.restartProcess("test", {
      stopped: async () => {
        let alive = true;
        try {
          process.kill(oldPid, 0);
        } catch {
          alive = false;
        }
        order.push(`stopped (old process alive: ${alive}, state ${r.status().state})`);
      },
    });
    assert.deepEqual(order, ["stopped (old process alive: false, state stopped)", "prepare"]);
    await until(() => (r.status().state === "running" ? true : undefined), "running again");
    await r.stop();
  });

  it("keeps restarting a process that keeps exiting, with growing delays, until stopped", async () => {
    const r = makeRunner({ name: "flap", type: "process", config: { command: "exit 3" } });
    await r.start();
    await until(() => (r.status().restarts >= 2 ? true : undefined), "two restarts", 10_000);
    assert.equal(r.status().state, "backoff");
    assert.equal(r.status().lastExit?.code, 3);
    assert.match(r.status().message ?? "", /restart 2 in 2000 ms/);
    await r.stop();
    const restarts = r.status().restarts;
    assert.equal(r.status().state, "stopped");
    await new Promise((res) => setTimeout(res, 1500));
    assert.equal(r.status().restarts, restarts, "a stopped job is not restarted");
  });

  it("restarts a running process whose health check keeps failing", async () => {
    const r = makeRunner({
      name: "sick",
      type: "process",
      config: {
        command: httpServer(7003, 'if (Date.now() - t0 > 700) { s.statusCode = 500; return s.end("sick"); }'),
        health_check: { http: { port: 7003 } },
      },
    });
    await r.start();
    await until(() => (r.status().state === "running" ? true : undefined), "running");
    await until(() => (r.status().restarts >= 1 ? true : undefined), "restart for failing health checks");
    const log = tailFile(join(dir, "sick.log"), 100).join("\n");
    assert.match(log, /health check failed 3x: HTTP 500 .*; restarting/);
    await r.stop();
  });

  it("marks a job failed when its pre-start hook fails, and never starts its process", async () => {
    const r = makeRunner({
      name: "nostart",
      type: "process",
      config: { command: httpServer(7004) },
      hooks: { pre_start: "echo cannot >&2; exit 7" },
    });
    await r.start();
    assert.equal(r.status().state, "failed");
    assert.match(r.status().message ?? "", /pre-start hook exited with code 7/);
    assert.equal(r.status().pid, undefined);
    assert.match(tailFile(join(dir, "nostart.log"), 10).join("\n"), /cannot/);
  });

  it("a stop whose controller waits on a restart it asked for meanwhile still ends", async () => {
    // A cluster manager that follows a new leader (a restart) just as the job is told
    // to stop: the stop waits for the manager's cycle, the cycle for the restart.
    const base = jobType("process")!;
    let restartAsked: Promise<void> | undefined;
    const following: AnyJobType = {
      ...base,
      controller: (_ctx, _config, handle) => ({
        start: async () => undefined,
        stop: async () => {
          restartAsked = handle.restartProcess("following the new leader");
          await restartAsked;
        },
        status: () => ({}),
      }),
    };
    const r = makeRunner(
      {
        name: "following",
        type: "process",
        config: { command: httpServer(7007), health_check: { tcp: { port: 7007 } } },
      },
      following,
    );
    await r.start();
    await until(() => (r.status().state === "running" ? true : undefined), "running");
    const stopped = await Promise.race([
      r.stop().then(() => "stopped"),
      new Promise((res) => setTimeout(() => res("stuck"), 10_000)),
    ]);
    assert.equal(stopped, "stopped");
    assert.ok(restartAsked, "the controller asked for a restart during the stop");
    assert.equal(r.status().state, "stopped");
    assert.match(tailFile(join(dir, "following.log"), 10).join("\n"), /not restarting the process/);
  });

  it("bounds a drain by hook_timeout, stops anyway, and says the drain did not finish", async () => {
    const r = makeRunner({
      name: "slowdrain",
      type: "process",
      config: { command: httpServer(7008), health_check: { tcp: { port: 7008 } } },
      hooks: { drain: "sleep 5" },
      hook_timeout_ms: 300,
    });
    await r.start();
    await until(() => (r.status().state === "running" ? true : undefined), "running");
    const t0 = Date.now();
    await r.stop({ drain: true });
    assert.ok(Date.now() - t0 < 3000, `stopped in ${Date.now() - t0} ms, not after the 5 s drain`);
    assert.equal(r.status().state, "stopped");
    assert.match(r.status().lastDrain?.error ?? "", /drain hook timed out after 300 ms/);
    assert.ok((r.status().lastDrain?.tookMs ?? 0) >= 300);
  });

  it("stop kills the whole process tree, with SIGKILL when SIGTERM is ignored", async () => {
    const r = makeRunner({
      name: "stubborn",
      type: "process",
      config: { command: "trap '' TERM; sleep 1000 & sleep 1000 & wait" },
      stop_timeout_ms: 300,
    });
    await r.start();
    await until(
      () => (r.status().pid && processTree(r.status().pid!).length >= 3 ? true : undefined),
      "tree of 3",
    );
    const tree = processTree(r.status().pid!);
    await r.stop();
    assert.deepEqual(
      tree.filter((p) => !gone(p)),
      [],
      "every process of the job is gone",
    );
    assert.match(tailFile(join(dir, "stubborn.log"), 10).join("\n"), /did not stop within 300 ms: SIGKILL/);
  });

  it("hands a running job to another runner: same process, supervised there (its exit seen, restarted)", async () => {
    const job = {
      name: "handed",
      type: "process",
      config: { command: httpServer(7031), health_check: { http: { port: 7031, path: "/" } } },
    };
    const a = makeRunner(job);
    await a.start();
    await until(() => (a.status().state === "running" ? true : undefined), "running");
    const pid = a.status().pid!;
    const h = await a.handOff();
    assert.equal(h.state, "running");
    assert.equal(h.pid, pid);
    await a.stop();
    assert.equal(gone(pid), false, "a runner that handed its job over no longer stops it");
    const b = makeRunner(job);
    await b.adopt(h);
    assert.equal(b.status().pid, pid, "the successor supervises the same process");
    assert.equal(b.status().state, "running");
    signalPid(pid, "SIGKILL");
    await until(
      () =>
        b.status().pid !== undefined && b.status().pid !== pid && b.status().state === "running"
          ? true
          : undefined,
      "the adopted process's exit seen and the job restarted",
    );
    assert.equal(b.status().restarts, 1);
    await b.stop();
  });

  it("restarts an adopted job whose process died during the handover", async () => {
    const job = { name: "died", type: "process", config: { command: httpServer(7032) } };
    const a = makeRunner(job);
    await a.start();
    await until(() => (a.status().state === "running" ? true : undefined), "running");
    const pid = a.status().pid!;
    const h = await a.handOff();
    signalPid(pid, "SIGKILL");
    await until(() => (gone(pid) ? true : undefined), "the process gone");
    const b = makeRunner(job);
    await b.adopt(h);
    await until(
      () => (b.status().state === "running" && b.status().pid !== pid ? true : undefined),
      "restarted by the successor",
    );
    await b.stop();
  });
});
