/**
 * The load-balancer pair (examples/lb.yml in front of examples/web.yml) under
 * faults, with a client doing continuous HTTP requests against the VIP: the active
 * node's VM crashed, frozen, its host failed. The client sees only a short gap,
 * never answers from two nodes at once, and the pair is whole again afterwards (the
 * dead node rebuilt as the standby). A crashed backend leaves the rotation within the
 * health-check window and its rebuilt VM rejoins it with no HAProxy restart.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { parse } from "yaml";
import { repoPath } from "../../src/cli/home.js";
import type { InstanceView } from "../../src/director/director.js";
import { sleep, waitFor } from "../../src/lib/sleep.js";
import { timeline } from "../../src/testing/cluster-faults.js";
import { HttpChecker } from "../../src/testing/http-checker.js";
import {
  injectLbFault,
  LB_FAULTS,
  pairOf,
  memberTokenOf,
  RoleSampler,
  waitPairWhole,
  type LbFault,
} from "../../src/testing/lb-pair.js";
import { ZonalHarness } from "../../src/testing/zonal-harness.js";
import { longIt } from "../../src/testing/tier.js";

// A crashed or frozen node answers nothing; one whose processes died refuses at once.
const TARGET_MS: Record<LbFault, number> = {
  crash: 3000,
  "kill-processes": 1500,
  freeze: 3000,
  "fail-host": 6000,
};

describe("load-balancer pair under faults", () => {
  const z = new ZonalHarness();
  let client: HttpChecker;

  before(async () => {
    const t0 = Date.now();
    try {
      await z.up();
      for (const m of ["web.yml", "lb.yml"]) {
        const r = z.zonal("deploy", repoPath("examples", m));
        assert.equal(r.code, 0, r.err + r.out);
      }
      const p = await waitPairWhole(z, { backends: 6 });
      client = new HttpChecker(`http://${p.vip}:8000/`);
      client.start();
      await waitFor(() => (client.samples.some((s) => s.ok) ? true : undefined), {
        timeoutMs: 10_000,
        what: "the VIP to answer",
      });
    } catch (err) {
      // What the pair looked like, for a set-up that failed on a machine we cannot see.
      console.log(`lb set-up failed after ${Date.now() - t0} ms: ${String(err)}`);
      console.log(JSON.stringify(await pairOf(z).catch((e: unknown) => String(e)), null, 1));
      console.log(await timeline(z, t0, "lb"));
      console.log(client ? JSON.stringify(client.samples.slice(-5)) : "no client yet");
      throw err;
    }
  });
  after(async () => {
    await client?.stop();
    await z.teardown();
  });

  it("answers through the VIP from the active node, spreading requests over the six backends", async () => {
    const p = await pairOf(z);
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, 1500));
    const seen = client.since(t0).filter((s) => s.ok);
    assert.ok(seen.length > 10);
    assert.deepEqual(client.runs(t0), [p.holder!.member], "only the active answers");
    const backends = new Set(seen.map((s) => /from (web\/\d)/.exec(s.body ?? "")?.[1]));
    assert.equal(backends.size, 6, `answers from ${[...backends].join(", ")}`);
  });

  for (const fault of LB_FAULTS) {
    it(`${fault} the active node's VM: a short gap, one node at a time, the pair whole again`, async () => {
      const p = await pairOf(z);
      const oldActive = p.holder!;
      const t0 = Date.now();
      const undo = await injectLbFault(z, fault, p);
      await waitFor(
        () =>
          client.since(t0).some((s) => s.ok && s.lb && s.lb !== oldActive.member) &&
          Date.now() - client.samples.at(-1)!.at < 500
            ? true
            : undefined,
        { timeoutMs: 30_000, intervalMs: 100, what: "answers from the other node" },
      );
      await new Promise((r) => setTimeout(r, 1000));
      const gap = client.longestGap(t0);
      console.log(`# lb ${fault}: longest gap ${gap} ms`);
      assert.ok(client.runs(t0).length <= 2, `never two actives: ${client.runs(t0).join(" -> ")}`);
      assert.ok(gap <= TARGET_MS[fault], `gap ${gap} ms within ${TARGET_MS[fault]} ms`);
      await undo();
      const whole = await waitPairWhole(z, { notActive: oldActive.vmId, backends: 6 });
      assert.notEqual(whole.holder!.member, oldActive.member, "no flapping back to the old active");
      assert.ok(client.runs(t0).length <= 2, `still one node at a time: ${client.runs(t0).join(" -> ")}`);
    });
  }

  // Network partitions around the active node: one node serves at a time throughout
  // (asked directly, every 100 ms, and as the client saw it), and the pair is whole after.
  const partitions: Array<{
    name: string;
    cut: (activeVm: { id: string; zone: string }) => Promise<void>;
    holdMs: number;
    /** Runs in the long tier only (src/testing/tier.ts). */
    long?: boolean;
  }> = [
    {
      name: "the active node cut off from the control plane (and the lease store)",
      cut: async (vm) =>
        void (await z.client.addNetworkFault({
          kind: "partition",
          a: vm.id,
          b: "control-plane",
          oneWay: false,
        })),
      holdMs: 8000,
    },
    {
      name: "the active node's zone isolated",
      cut: async (vm) => void (await z.client.addNetworkFault({ kind: "isolate", target: vm.zone })),
      holdMs: 8000,
    },
    {
      name: "flapping: the active node cut off from the other and healed every 2 s",
      cut: async (vm) => {
        const p = await pairOf(z);
        const other = p.nodes.find((n) => n.member !== p.holder!.member)!;
        const otherVm = Object.values(z.state().vms).find((v) => v.address === other.address)!;
        for (let i = 0; i < 4; i++) {
          await z.client.addNetworkFault({ kind: "partition", a: vm.id, b: otherVm.id, oneWay: false });
          await sleep(2000);
          await z.client.healNetwork();
          await sleep(2000);
        }
      },
      holdMs: 0,
      long: true,
    },
  ];
  for (const c of partitions) {
    (c.long ? longIt : it)(
      `partition: ${c.name}: one node serves at a time, the pair whole after the heal`,
      async () => {
        const p = await waitPairWhole(z, { backends: 6 });
        const vm = Object.values(z.state().vms).find((v) => v.id === p.holder!.vmId)!;
        const sampler = new RoleSampler(
          p.nodes.map((n) => ({ member: n.member, address: n.address! })),
          memberTokenOf(z, p.nodes[0]!.address!),
        );
        const t0 = Date.now();
        await c.cut(vm);
        await sleep(c.holdMs);
        await z.client.healNetwork();
        const whole = await waitPairWhole(z, { backends: 6 });
        await sleep(1000);
        await sampler.stop();
        console.log(
          `# lb partition, ${c.name}: active ${p.holder!.member} -> ${whole.holder!.member}; longest gap ${client.longestGap(t0)} ms; ${sampler.rounds.length} rounds asked`,
        );
        assert.deepEqual(sampler.doubles(), [], "never two nodes active at once");
        assert.ok(
          client.runs(t0).length <= 2,
          `one node at a time, as the client saw it: ${client.runs(t0).join(" -> ")}`,
        );
      },
    );
  }

  it("a crashed backend leaves the rotation within the health-check window and rejoins with no HAProxy restart", async () => {
    const p = await pairOf(z);
    const active = p.nodes.find((n) => n.member === p.holder!.member)!;
    const web = (
      await z.director.http.request<InstanceView[]>("GET", "/v1/instances", { query: { deployment: "web" } })
    ).find((i) => i.index === 2)!;
    const t0 = Date.now();
    await z.client.crashVm(web.vmId!);
    // Requests keep succeeding (a failed attempt is retried on another server) and web/2 stops answering.
    await new Promise((r) => setTimeout(r, 2500));
    const from2 = client.since(t0 + 1500).filter((s) => s.body?.includes("from web/2"));
    assert.deepEqual(from2, [], "web/2 is out of the rotation 1.5 s after its crash");
    const failed = client.since(t0).filter((s) => !s.ok);
    assert.ok(failed.length <= 2, `${failed.length} failed requests after the backend crash`);
    // The health monitor rebuilds web/2; the LB nodes learn its address from the director.
    const t1 = Date.now();
    await waitFor(() => (client.since(t1).some((s) => s.body?.includes("from web/2")) ? true : undefined), {
      timeoutMs: 60_000,
      intervalMs: 250,
      what: "the rebuilt web/2 to answer through the VIP",
    });
    const after = await waitPairWhole(z, { backends: 6 });
    assert.equal(after.holder!.member, p.holder!.member, "the same node is active");
    const pidAfter = after.nodes.find((n) => n.member === active.member)!.pid;
    assert.equal(pidAfter, active.pid, "HAProxy was reloaded, not restarted");
    const rebuilt = (
      await z.director.http.request<InstanceView[]>("GET", "/v1/instances", { query: { deployment: "web" } })
    ).find((i) => i.index === 2)!;
    assert.notEqual(rebuilt.vmId, web.vmId, "web/2 runs on a new VM");
    if (rebuilt.address !== web.address)
      assert.notEqual(
        after.nodes.find((n) => n.member === active.member)!.configVersion,
        active.configVersion,
        "its config follows web/2's new address",
      );
  });

  it("moves the VIP back only when asked (lb-switchover), one node at a time", async () => {
    const p = await pairOf(z);
    const t0 = Date.now();
    // Through the API, not the CLI: a child process run synchronously would stop the client's sampling.
    const r = await z.director.http.request<{ from: string; to: string; tookMs: number }>(
      "POST",
      "/v1/deployments/lb/lb/switchover",
      { body: {} },
    );
    assert.equal(r.from, p.holder!.member);
    await new Promise((res) => setTimeout(res, 1500));
    const gap = client.longestGap(t0);
    console.log(`# lb switchover: ${r.tookMs} ms, longest gap ${gap} ms`);
    const runs = client.runs(t0);
    assert.ok(
      [`${r.from},${r.to}`, r.to].includes(runs.join(",")),
      `${r.from} then ${r.to}, never both: ${runs.join(" -> ")}`,
    );
    assert.ok(gap <= 2000, `gap ${gap} ms`);
    assert.equal((await waitPairWhole(z, { backends: 6 })).holder!.member, r.to);
  });

  it("scaling the backend group reaches both nodes' configs with no deploy of the pair, and the reloads drop no request", async () => {
    const m = parse(readFileSync(repoPath("examples", "web.yml"), "utf8")) as {
      instance_groups: Array<{ instances: number }>;
    };
    m.instance_groups[0]!.instances = 8;
    const before = await pairOf(z);
    const t0 = Date.now();
    // Through the API, so the client keeps sampling while the deploy and the reloads happen.
    const task = await z.director.deploy(m);
    const ended = await waitFor(
      async () => {
        const t = await z.director.task(task.id);
        return t.state === "done" || t.state === "failed" ? t : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 250, what: "the deploy of web with 8 instances" },
    );
    assert.equal(ended.state, "done", ended.result ?? "");
    const after = await waitPairWhole(z, { backends: 8, timeoutMs: 30_000 });
    assert.notEqual(after.nodes[0]!.configVersion, before.nodes[0]!.configVersion);
    for (const n of after.nodes)
      assert.equal(
        n.pid,
        before.nodes.find((b) => b.member === n.member)!.pid,
        `${n.member} reloaded, not restarted`,
      );
    const during = client.since(t0);
    assert.ok(during.length > 20, `${during.length} requests during the change`);
    assert.deepEqual(
      during.filter((s) => !s.ok),
      [],
      "no request failed while both nodes reloaded",
    );
    const t1 = Date.now();
    await new Promise((res) => setTimeout(res, 2000));
    const backends = new Set(client.since(t1).map((s) => /from (web\/\d)/.exec(s.body ?? "")?.[1]));
    assert.ok(backends.has("web/6") && backends.has("web/7"), `answers from ${[...backends].join(", ")}`);
  });
});
