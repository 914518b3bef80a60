/**
 * Rolling updates behind and of the load-balancer pair (examples/web.yml behind
 * examples/lb.yml; each answer of web takes 150 ms) while four clients ask the VIP
 * about 20 times a second in all: a rolling update of web drains each instance from
 * both HAProxy nodes before it stops; a rolling update of the pair changes the
 * standby first, hands the VIP over, then changes the other. Not one request fails.
 * The clients wait for an answer as browsers and HTTP libraries do (up to 5 s): on
 * the local cloud, as on a real network, a SYN that reaches the VIP in the moment it
 * moves is lost and sent again by TCP a second later (no reset); the slowest request
 * is printed.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse, stringify } from "yaml";
import { repoPath } from "../../src/cli/home.js";
import { waitFor } from "../../src/lib/sleep.js";
import { timeline } from "../../src/testing/cluster-faults.js";
import { HttpChecker, type HttpSample } from "../../src/testing/http-checker.js";
import { pairOf, waitPairWhole } from "../../src/testing/lb-pair.js";
import { ZonalHarness } from "../../src/testing/zonal-harness.js";
import { StagedZonal } from "../../src/testing/staged-zonal.js";
import { jobProcesses } from "../../src/testing/vms.js";
import type { VersionsView } from "../../src/director/director.js";

/** As browsers and HTTP libraries wait (seconds): a SYN lost while the VIP moves is sent again after 1 s. */
const CLIENT_TIMEOUT_MS = 5000;
/** A request whose first SYN was lost: answered after TCP's 1 s retransmission, with room for a loaded machine. */
const ONE_LOST_SYN_MS = 2500;

interface EventLine {
  at: string;
  stage: string;
  level: string;
  instance: string | null;
  message: string;
}

type AnyManifest = {
  instance_groups: Array<{ jobs: Array<{ properties: Record<string, unknown> }> }>;
};

describe("rolling updates behind and of the load-balancer pair", () => {
  // From a staged copy of zonal: the last case installs "a new release" over it.
  const staged = new StagedZonal();
  const z = new ZonalHarness({ bin: staged.bin });
  let clients: HttpChecker[] = [];
  /** Every client's answers from `t0` on, in time order. */
  const since = (t0: number) => clients.flatMap((c) => c.since(t0)).sort((a, b) => a.at - b.at);
  /** The longest time without a successful answer from any client, from `t0` on. */
  const longestGap = (t0: number) => {
    let last = t0;
    let gap = 0;
    for (const x of since(t0).filter((x) => x.ok)) {
      gap = Math.max(gap, x.at - last);
      last = x.at;
    }
    return gap;
  };
  const slowestOf = (t0: number) =>
    since(t0).reduce<HttpSample | undefined>((m, s) => (!m || s.ms > m.ms ? s : m), undefined);
  /** The slowest request from `t0` on, and when it started. */
  const slowest = (t0: number) => {
    const x = slowestOf(t0);
    return x ? `slowest request ${x.ms} ms (at +${x.at - t0} ms)` : "no request";
  };
  /**
   * No request waited for more than one lost SYN (TCP sends it again after 1 s): a
   * VIP handover whose ask was lost (the old node lets go after 2 s) would show.
   */
  const assertNoLongWait = (t0: number) =>
    assert.ok((slowestOf(t0)?.ms ?? 0) <= ONE_LOST_SYN_MS, `${slowest(t0)}: more than one lost SYN`);
  /** Every failed request from `t0` on, with its time and error. */
  const failures = (t0: number) =>
    since(t0)
      .filter((x) => !x.ok)
      .map((f) => `+${f.at - t0} ms: ${f.error}`);
  const manifests: Record<string, AnyManifest> = {};

  before(async () => {
    await z.up();
    for (const m of ["web", "lb"]) {
      manifests[m] = parse(readFileSync(repoPath("examples", `${m}.yml`), "utf8")) as AnyManifest;
      if (m === "web") {
        // Each answer takes 150 ms, so requests are in flight whenever an instance stops:
        // without a drain, the ones it holds would be cut.
        const props = manifests.web!.instance_groups[0]!.jobs[0]!.properties;
        const command = props.command as string[];
        command[2] = command[2]!
          .replace("res.end(`${e.GREETING}", "setTimeout(() => res.end(`${e.GREETING}")
          .replace("(${e.ZONAL_ADDRESS})\\n`);", "(${e.ZONAL_ADDRESS})\\n`), 150);");
        assert.match(command[2], /, 150\);/, "the web command got its delay");
      }
      const path = join(z.dir, `${m}.yml`);
      writeFileSync(path, stringify(manifests[m]));
      const r = await z.zonalAsync("deploy", path);
      assert.equal(r.code, 0, r.err + r.out);
    }
    const p = await waitPairWhole(z, { backends: 6 });
    clients = [0, 1, 2, 3].map(() => new HttpChecker(`http://${p.vip}:8000/`, 50, CLIENT_TIMEOUT_MS));
    for (const c of clients) c.start();
    await waitFor(() => (since(0).some((s) => s.ok) ? true : undefined), {
      timeoutMs: 10_000,
      what: "the VIP to answer",
    });
  });
  after(async () => {
    for (const c of clients) await c.stop();
    await z.teardown();
    staged.remove();
  });

  /** Deploys the changed manifest of `deployment` under the clients: no request may fail. */
  async function roll(deployment: string, change: (m: AnyManifest) => void): Promise<EventLine[]> {
    const m = manifests[deployment]!;
    change(m);
    const path = join(z.dir, `${deployment}-${Date.now()}.yml`);
    writeFileSync(path, stringify(m));
    const t0 = Date.now();
    const r = await z.zonalAsync("deploy", path);
    const t1 = Date.now();
    assert.equal(r.code, 0, `${r.err}${r.out}\n${await timeline(z, t0, deployment)}`);
    await new Promise((res) => setTimeout(res, 1000));
    const samples = since(t0);
    const failed = samples.filter((s) => !s.ok);
    const events = (
      await z.director.http.request<EventLine[]>("GET", `/v1/events?deployment=${deployment}&limit=300`)
    ).filter((e) => Date.parse(e.at) >= t0);
    console.log(
      `# rolling update of ${deployment}: ${t1 - t0} ms, ${samples.length} requests (${Math.round((samples.length * 1000) / (Date.now() - t0))}/s), ${failed.length} failed, longest gap ${longestGap(t0)} ms, ${slowest(t0)}`,
    );
    for (const e of events.filter((x) => x.stage === "drain" || x.stage === "handover"))
      console.log(`#   +${Date.parse(e.at) - t0} ms ${e.instance ?? ""} ${e.message}`);
    assert.deepEqual(failures(t0), [], `no request fails\n${await timeline(z, t0, deployment)}`);
    assertNoLongWait(t0);
    return events;
  }

  it("zonal version shows the control plane's version and every agent's", async () => {
    const v = z.json<{
      cli: string;
      controlPlane: string;
      agents: Array<{ vm: string; version: string | null; pid?: number }>;
    }>("version");
    const pkg = JSON.parse(readFileSync(repoPath("package.json"), "utf8")) as { version: string };
    assert.equal(v.cli, pkg.version);
    assert.equal(v.controlPlane, pkg.version);
    assert.equal(v.agents.length, 8, v.agents.map((a) => a.vm).join(", "));
    for (const a of v.agents) {
      assert.equal(a.version, pkg.version, a.vm);
      assert.ok(a.pid !== undefined && a.pid > 0, `${a.vm}: its agent's pid`);
    }
    const text = z.zonal("version");
    assert.match(text.out, new RegExp(`every agent runs ${pkg.version.replaceAll(".", "\\.")}`));
  });

  it("updates web one batch at a time, each instance drained from both nodes before it stops", async () => {
    const events = await roll("web", (m) => {
      m.instance_groups[0]!.jobs[0]!.properties.env = { GREETING: "hi" };
    });
    const drained = events.filter(
      (e) => e.stage === "drain" && /^drained from lb\/haproxy in/.test(e.message),
    );
    assert.equal(drained.length, 6, events.map((e) => `${e.instance} ${e.message}`).join("\n"));
    assert.equal(events.filter((e) => e.stage === "drain" && e.level === "warn").length, 0);
    // Every instance serves the new greeting afterwards.
    const t = Date.now();
    await new Promise((res) => setTimeout(res, 1500));
    const bodies = since(t)
      .filter((s) => s.ok)
      .map((s) => s.body ?? "");
    assert.ok(
      bodies.length > 10 && bodies.every((b) => b.startsWith("hi from")),
      bodies.slice(0, 3).join("; "),
    );
  });

  it("updates the pair: the standby first, the VIP handed over, then the other node", async () => {
    const before = await pairOf(z);
    const events = await roll("lb", (m) => {
      const backends = m.instance_groups[0]!.jobs[0]!.properties.backends as Array<{
        health_check: Record<string, unknown>;
      }>;
      backends[0]!.health_check.interval = "400ms";
    });
    const order = [...new Set(events.filter((e) => e.stage === "update").map((e) => e.instance))].filter(
      (x): x is string => x !== null,
    );
    const activeKey = before.nodes.find((n) => n.member === before.holder!.member)!.key;
    assert.equal(order.length, 2, order.join(", "));
    assert.equal(order.at(-1), activeKey, `the active node changes last: ${order.join(", ")}`);
    assert.ok(
      events.some((e) => e.stage === "handover" && /handed its role/.test(e.message)),
      "the VIP was handed over first",
    );
    const after = await waitPairWhole(z, { backends: 6 });
    assert.notEqual(after.holder!.member, before.holder!.member);
  });

  it("drains a host that runs a web instance and the active node: every instance moves, no request fails", async () => {
    const p = await pairOf(z);
    const instances = await z.director.http.request<
      Array<{ deployment: string; group: string; index: number; host: string }>
    >("GET", "/v1/instances");
    const activeKey = p.nodes.find((n) => n.member === p.holder!.member)!.key;
    const host = instances.find((i) => i.deployment === "lb" && `${i.group}/${i.index}` === activeKey)!.host;
    const there = instances
      .filter((i) => i.host === host)
      .map((i) => `${i.deployment}/${i.group}/${i.index}`);
    assert.ok(
      there.some((k) => k.startsWith("web/")),
      `the active node's host runs a web instance too: ${there.join(", ")}`,
    );
    const t0 = Date.now();
    const r = await z.zonalAsync("host", "drain", host, "--reason", "firmware");
    assert.equal(r.code, 0, `${r.err}${r.out}\n${await timeline(z, t0, "lb")}`);
    await new Promise((res) => setTimeout(res, 1000));
    const samples = since(t0);
    console.log(
      `# host drain of ${host} (${there.join(", ")}): ${Date.now() - t0} ms, ${samples.length} requests, ${failures(t0).length} failed, longest gap ${longestGap(t0)} ms, ${slowest(t0)}`,
    );
    const after = await z.director.http.request<Array<{ host: string }>>("GET", "/v1/instances");
    assert.equal(after.filter((i) => i.host === host).length, 0, "nothing runs on the drained host");
    assert.deepEqual(failures(t0), [], `no request fails\n${await timeline(z, t0, "lb")}`);
    assertNoLongWait(t0);
    const whole = await waitPairWhole(z, { backends: 6 });
    assert.notEqual(whole.holder!.member, p.holder!.member, "the other node serves the VIP");
    assert.equal(z.zonal("host", "undrain", host).code, 0);
  });

  it("drains a zone: refused while a group would lose its last zone; then web leaves z3 with no failed request", async () => {
    // A deployment that lives in z3 only: draining z3 would leave it nowhere.
    const solo = {
      name: "solo",
      instance_groups: [
        {
          name: "app",
          instances: 1,
          zones: ["z3"],
          vm_type: "small",
          jobs: [{ name: "app", type: "process", properties: { command: ["sleep", "infinity"] } }],
        },
      ],
    };
    const soloPath = join(z.dir, "solo.yml");
    writeFileSync(soloPath, stringify(solo));
    assert.equal((await z.zonalAsync("deploy", soloPath)).code, 0);
    const refused = await z.zonalAsync("zone", "drain", "z3");
    assert.equal(refused.code, 1, refused.out);
    assert.match(refused.err, /cannot drain z3; nothing was changed/);
    assert.match(refused.err, /solo: app: would lose its last zone: every zone it lists is in maintenance/);
    assert.deepEqual(z.json<unknown[]>("maintenance"), [], "the refusal changed nothing");
    assert.equal((await z.zonalAsync("delete-deployment", "solo")).code, 0);

    const t0 = Date.now();
    const r = await z.zonalAsync("zone", "drain", "z3", "--reason", "power work");
    assert.equal(r.code, 0, `${r.err}${r.out}\n${await timeline(z, t0, "web")}`);
    await new Promise((res) => setTimeout(res, 1000));
    console.log(
      `# zone drain of z3: ${Date.now() - t0} ms, ${since(t0).length} requests, ${failures(t0).length} failed, ${slowest(t0)}`,
    );
    const web = await z.director.http.request<Array<{ zone: string }>>("GET", "/v1/instances?deployment=web");
    assert.equal(web.length, 6);
    assert.equal(web.filter((i) => i.zone === "z3").length, 0, "no web instance in z3");
    assert.deepEqual(
      failures(t0),
      [],
      `no request fails\n${await timeline(z, t0, "web")}\n${await timeline(z, t0, "lb")}`,
    );
    assert.equal(z.zonal("zone", "undrain", "z3").code, 0);
  });

  it("hands every agent of web and of the pair over to a new zonal version: the same job PIDs, no request fails", async () => {
    const vmsOf = async (d: string) =>
      (await z.director.http.request<Array<{ vmId: string }>>("GET", `/v1/instances?deployment=${d}`)).map(
        (i) => i.vmId,
      );
    const vmIds = [...(await vmsOf("web")), ...(await vmsOf("lb"))];
    const jobsBefore = vmIds.map((id) => jobProcesses(id));
    const pidsBefore = new Map(z.json<VersionsView>("version").agents.map((a) => [a.vmId, a.pid]));
    const next = `${staged.version}-next.${Date.now()}`;
    staged.setVersion(next);
    await z.stopControlPlane("SIGTERM");
    await z.up();
    const t0 = Date.now();
    const lines: string[] = [];
    for (const d of ["web", "lb"]) {
      const r = await z.zonalAsync("upgrade-agents", "-d", d);
      assert.equal(r.code, 0, `${r.err}${r.out}\n${await timeline(z, t0, d)}`);
      lines.push(...r.out.split("\n").filter((l) => / agent: /.test(l)));
    }
    await new Promise((res) => setTimeout(res, 1000));
    console.log(
      `# agent upgrade of web and lb: ${Date.now() - t0} ms, ${since(t0).length} requests, ${failures(t0).length} failed, longest gap ${longestGap(t0)} ms, ${slowest(t0)}\n${lines.map((l) => `#   ${l}`).join("\n")}`,
    );
    assert.equal(lines.length, vmIds.length, "one step per VM");
    const after = z.json<VersionsView>("version").agents.filter((a) => vmIds.includes(a.vmId ?? ""));
    assert.equal(after.length, vmIds.length, "every agent answers");
    for (const a of after) {
      assert.equal(a.version, next, `${a.deployment} ${a.vm} runs ${next}`);
      assert.notEqual(a.pid, pidsBefore.get(a.vmId), `${a.deployment} ${a.vm} runs a new agent process`);
    }
    assert.deepEqual(
      vmIds.map((id) => jobProcesses(id)),
      jobsBefore,
      "every job kept its process (pid and start time)",
    );
    assert.deepEqual(failures(t0), [], "no request fails");
    await waitPairWhole(z, { backends: 6 });
  });
});
