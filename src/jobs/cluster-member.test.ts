/** HeldLease: the deadline it keeps, and the watchdog that fires when it passes; the StoreGate. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Unavailable } from "../lib/errors.js";
import { sleep, waitFor, Waker } from "../lib/sleep.js";
import type { Lease, LeaseStore } from "../ha/lease-store.js";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { claimAddressBlock } from "../testing/addresses.js";
import type { JobContext } from "./job-type.js";
import {
  closeServer,
  ClusterMember,
  HeldLease,
  LeaderWatch,
  listenStatus,
  probe,
  StoreGate,
  SUSPECT_AFTER_MS,
  VIP_HANDOVER_MS,
} from "./cluster-member.js";

/** A lease store whose renewals answer as told: granted, lost, or unreachable. */
class ScriptedStore implements LeaseStore {
  renewal: "ok" | "lost" | "unreachable" = "ok";
  released = 0;
  renewals = 0;
  reads = 0;
  async acquire(): Promise<Lease | undefined> {
    return undefined;
  }
  async renew(): Promise<boolean> {
    this.renewals += 1;
    if (this.renewal === "unreachable") throw new Unavailable("the store does not answer");
    return this.renewal === "ok";
  }
  async release(): Promise<void> {
    this.released += 1;
  }
  async read(): Promise<Lease | undefined> {
    this.reads += 1;
    if (this.renewal === "unreachable") throw new Unavailable("the store does not answer");
    return undefined;
  }
  async list(): Promise<Lease[]> {
    return [];
  }
  async break(): Promise<boolean> {
    return false;
  }
  async purge(): Promise<number> {
    return 0;
  }
  watch(): () => void {
    return () => undefined;
  }
}

const TTL = { ttl_ms: 1250, renew_ms: 50 };
/** Timers never fire early, but may fire late on a loaded machine: wait for it. */
const firedOnce = (fired: number[]) =>
  waitFor(() => (fired.length === 1 ? true : undefined), {
    timeoutMs: 5000,
    intervalMs: 10,
    what: "the watchdog",
  });

function held(store: ScriptedStore) {
  const fired: number[] = [];
  const lease = new HeldLease(store, "d/g/leader", "vm-1", TTL, () => fired.push(Date.now()));
  return { lease, fired };
}

describe("HeldLease", () => {
  it("fires the watchdog at the deadline when no renewal arrives, on its own timer", async () => {
    const store = new ScriptedStore();
    const { lease, fired } = held(store);
    const sentAt = Date.now();
    lease.took(7, sentAt);
    assert.equal(lease.deadline, sentAt + TTL.ttl_ms - 250, "deadline: sent time + TTL - margin");
    await sleep(500);
    assert.equal(fired.length, 0, "not before the deadline");
    await firedOnce(fired);
    assert.ok(fired[0]! >= sentAt + TTL.ttl_ms - 250, "at the deadline, with nobody calling view()");
  });

  it("a renewal moves the deadline; an unreachable store does not", async () => {
    const store = new ScriptedStore();
    const { lease, fired } = held(store);
    const t0 = Date.now();
    lease.took(7, t0);
    await sleep(60);
    const now = Date.now();
    assert.deepEqual(await lease.view(now), { state: "mine", token: 7 });
    assert.equal(lease.deadline, now + TTL.ttl_ms - 250);
    store.renewal = "unreachable";
    await sleep(60);
    assert.deepEqual(await lease.view(Date.now()), { state: "unreachable" });
    assert.equal(lease.deadline, now + TTL.ttl_ms - 250, "kept, not extended");
    await firedOnce(fired);
    assert.ok(fired[0]! >= now + TTL.ttl_ms - 250);
  });

  it("a failsafe extension counts from when it was asked, and never moves the deadline back", async () => {
    const store = new ScriptedStore();
    const { lease, fired } = held(store);
    const t0 = Date.now();
    lease.took(7, t0);
    lease.extend(t0 - 1000);
    assert.equal(lease.deadline, t0 + TTL.ttl_ms - 250, "an older extension does not shorten it");
    const asked = Date.now() + 2000;
    lease.extend(asked);
    assert.equal(lease.deadline, asked + TTL.ttl_ms - 250);
    await sleep(t0 + TTL.ttl_ms - 250 - Date.now() + 50);
    assert.equal(fired.length, 0, "the old deadline passed, the extended one did not");
    await firedOnce(fired);
    assert.ok(fired[0]! >= asked + TTL.ttl_ms - 250);
  });

  it("a lost lease, or one given up, has no deadline and no watchdog", async () => {
    const store = new ScriptedStore();
    const { lease, fired } = held(store);
    lease.took(7, Date.now());
    store.renewal = "lost";
    await sleep(60);
    assert.deepEqual(await lease.view(Date.now()), { state: "lost" });
    assert.equal(lease.deadline, null);
    lease.took(8, Date.now());
    assert.equal(await lease.release(), true);
    assert.equal(store.released, 1);
    assert.equal(lease.deadline, null);
    await sleep(TTL.ttl_ms);
    assert.equal(fired.length, 0);
  });

  it("renews at once when told (another call to the store failed), not only when due", async () => {
    const store = new ScriptedStore();
    const { lease } = held(store);
    const now = Date.now();
    lease.took(7, now);
    assert.deepEqual(await lease.view(now), { state: "mine", token: 7 }, "not due: the last renewal stands");
    assert.equal(store.renewals, 0);
    store.renewal = "unreachable";
    assert.deepEqual(await lease.view(now, true), { state: "unreachable" });
    assert.equal(store.renewals, 1);
    await lease.release();
  });

  it("an adopted lease is not surely held until a view renews it", async () => {
    const store = new ScriptedStore();
    const { lease } = held(store);
    lease.adopt(9);
    assert.equal(lease.deadline, null);
    const now = Date.now();
    assert.deepEqual(await lease.view(now), { state: "mine", token: 9 });
    assert.equal(lease.deadline, now + TTL.ttl_ms - 250);
    await lease.release();
  });
});

describe("LeaderWatch", () => {
  /** A status API on 127.0.0.1 that answers, or (hung) accepts and never answers. */
  async function statusApi(hung: { value: boolean }): Promise<{ server: Server; url: string }> {
    const server = createServer((_req, res) => {
      if (!hung.value) res.end("{}");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/status` };
  }

  it("tells an answering leader from a silent one (after SUSPECT_AFTER_MS) and from a refusing one", async () => {
    const hung = { value: false };
    const { server, url } = await statusApi(hung);
    const watch = new LeaderWatch();
    try {
      watch.watch(url);
      await waitFor(() => (watch.state().result === "answers" ? true : undefined), {
        timeoutMs: 5000,
        intervalMs: 20,
        what: "the first answers",
      });
      assert.deepEqual(watch.state(), { result: "answers", unansweredMs: 0 });
      assert.equal(watch.suspects(url), false);
      hung.value = true; // its process is stopped: connections open, nothing answers
      await waitFor(() => (watch.suspects(url) ? true : undefined), {
        timeoutMs: 5000,
        intervalMs: 20,
        what: "the watch to suspect a silent leader",
      });
      assert.equal(watch.state().result, "silent");
      assert.ok(watch.state().unansweredMs >= SUSPECT_AFTER_MS);
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r())); // nothing listens: refused
      await waitFor(() => (watch.state().result === "refused" ? true : undefined), {
        timeoutMs: 5000,
        intervalMs: 20,
        what: "the watch to see the refusal",
      });
      watch.watch("http://127.0.0.1:9/other");
      assert.equal(watch.suspects(url), false, "watching another leader starts again");
    } finally {
      watch.stop();
      server.close();
    }
  });
});

describe("StoreGate", () => {
  it("makes no further call in a cycle once one failed, and asks for a renewal at the next", async () => {
    const store = new ScriptedStore();
    const gate = new StoreGate(store);
    assert.equal(gate.begin(), false);
    assert.equal(await gate.call((s) => s.read("k")), undefined);
    store.renewal = "unreachable";
    await assert.rejects(
      gate.call((s) => s.read("k")),
      /does not answer/,
    );
    await assert.rejects(
      gate.call((s) => s.read("k")),
      /did not answer this cycle/,
    );
    assert.equal(store.reads, 2, "the third call was not made");
    assert.equal(gate.begin(), true, "the next cycle renews at once");
    assert.equal(gate.begin(), false, "once");
  });

  it("makes no call in a cycle whose lease view went unanswered", async () => {
    const store = new ScriptedStore();
    const gate = new StoreGate(store);
    gate.begin();
    gate.close();
    await assert.rejects(
      gate.call((s) => s.read("k")),
      /did not answer this cycle/,
    );
    assert.equal(store.reads, 0);
    assert.equal(
      gate.begin(),
      false,
      "a closed cycle alone does not ask for a renewal: the view already tried",
    );
  });
});

describe("a member's status API", () => {
  it("answers the cluster's members only; a refusal is still an answer to a liveness probe", async () => {
    const block = claimAddressBlock();
    const address = `127.${block.base}.7.7`;
    const token = "m".repeat(32);
    const server = await listenStatus(address, 0, token, (_req, res) => res.end('{"role":"replica"}'));
    try {
      const url = `http://${address}:${(server.address() as AddressInfo).port}/status`;
      const get = (authorization?: string) =>
        fetch(url, authorization ? { headers: { authorization } } : {}).then(async (r) => ({
          status: r.status,
          body: await r.text(),
        }));
      assert.equal((await get()).status, 401);
      assert.equal((await get(`Bearer ${"x".repeat(32)}`)).status, 401);
      assert.equal((await get(`Bearer ${token}`)).body, '{"role":"replica"}');
      assert.equal(await probe(url), "answers", "a 401 is an answer: the VM runs");
    } finally {
      await closeServer(server);
      block.release();
    }
  });
});

describe("a planned handover of the VIP", () => {
  it("keeps listening, cut or lingering, until the member taking over asks, and only then lets it go", async () => {
    const block = claimAddressBlock();
    const address = `127.${block.base}.7.8`;
    const memberToken = "k".repeat(32);
    // The control plane's member API: it moves the VIP for the lease's holder.
    const moves: unknown[] = [];
    const cp = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        moves.push({ path: req.url, body: JSON.parse(body) as unknown });
        res.end("{}");
      });
    });
    await new Promise<void>((r) => cp.listen(0, address, r));
    const calls: string[] = [];
    const ctx = {
      jobName: "db",
      vmId: "vm-1",
      address,
      jobDir: "/nonexistent",
      links: {},
      secrets: {},
      log: () => undefined,
      cluster: {
        key: "d/db",
        member: "m0",
        members: ["m0", "m1"],
        lease: { store: "embedded", url: `http://${address}:1/` },
        ttl_ms: 10_000,
        renew_ms: 1000,
        vip: `127.${block.base}.0.1`,
        control_plane_url: `http://${address}:${(cp.address() as AddressInfo).port}`,
        member_token: memberToken,
      },
      services: {
        token: "t",
        setAddresses: (specs: unknown[], o?: { lingerMs?: number }) =>
          calls.push(`set ${JSON.stringify(specs)} linger ${o?.lingerMs ?? 0}`),
        cutConnections: () => calls.push("cut"),
      },
    } as unknown as JobContext;
    const cm = new ClusterMember(ctx, () => undefined);
    const said: string[] = [];
    const server = await listenStatus(address, 0, memberToken, (req, res) => {
      if (!cm.serveVipRelease(req, res, (s) => said.push(s))) res.end("{}");
    });
    const release = (method: string) =>
      fetch(`http://${address}:${(server.address() as AddressInfo).port}/vip-release?to=m1`, {
        method,
        headers: { authorization: `Bearer ${memberToken}` },
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as { released?: boolean } }));
    try {
      assert.equal(cm.handVip({ cut: true }), false, "nothing to hand: it serves no VIP");
      cm.held.took(7, Date.now());
      assert.equal(await cm.serveVip([3306]), ctx.cluster!.vip);
      assert.deepEqual(moves, [{ path: "/v1/clusters/vip", body: { key: "d/db", token: 7 } }]);
      calls.length = 0;

      assert.equal(cm.handVip({ cut: true, lingerMs: 50 }), true);
      assert.deepEqual(calls, ["cut"], "the open connections are cut; the address stays served");
      assert.equal(cm.handsVip, true);
      assert.equal(cm.servesVip, true);

      assert.equal((await release("GET")).status, 405);
      assert.equal(cm.handsVip, true, "a GET lets nothing go");
      // A job stopping now waits for the ask (its status API still answers it).
      let handedOver = false;
      const waiting = cm.vipHandedOver().then(() => (handedOver = true));
      await sleep(100);
      assert.equal(handedOver, false, "still handing: nobody asked yet");
      assert.deepEqual(await release("POST"), { status: 200, body: { member: "m0", released: true } });
      await waiting;
      assert.deepEqual(calls, ["cut", "set [] linger 50"]);
      assert.deepEqual([cm.handsVip, cm.servesVip], [false, false]);
      assert.match(said.join(), /m1 asked/);
      assert.deepEqual(await release("POST"), { status: 200, body: { member: "m0", released: false } });
      assert.equal(calls.length, 2, "let go once");

      // The member taking over asks each peer, with the members' token.
      const asked: string[] = [];
      const peer = await listenStatus(address, 0, memberToken, (req, res) => {
        asked.push(`${req.method} ${req.url}`);
        res.end("{}");
      });
      try {
        await cm.askVipReleased(
          [
            { address, statusPort: (peer.address() as AddressInfo).port },
            { address, statusPort: 1 }, // nothing listens there: no wait, no failure
          ],
          "m0",
        );
        assert.deepEqual(asked, ["POST /vip-release?to=m0"]);
        // A member that lets it go ends the wait; a silent one does not hold it up.
        const silent = createServer(() => undefined);
        await new Promise<void>((r) => silent.listen(0, address, r));
        const handing = await listenStatus(address, 0, memberToken, (_req, res) =>
          res.end('{"member":"m1","released":true}'),
        );
        try {
          const t0 = Date.now();
          await cm.askVipReleased(
            [
              { address, statusPort: (silent.address() as AddressInfo).port },
              { address, statusPort: (handing.address() as AddressInfo).port },
            ],
            "m0",
          );
          assert.ok(Date.now() - t0 < 400, `waited ${Date.now() - t0} ms for a silent member`);
        } finally {
          silent.closeAllConnections();
          await closeServer(silent);
          await closeServer(handing);
        }
      } finally {
        await closeServer(peer);
      }

      // The old leader tells the member a switchover names that the lease is free: that
      // member's wait between cycles ends at once (and a GET changes nothing).
      const waker = new Waker();
      let wakes = 0;
      const named = await listenStatus(address, 0, memberToken, (req, res) => {
        if (!cm.serveLeaseFree(req, res, () => ((wakes += 1), waker.wake()))) res.end("{}");
      });
      try {
        const peer = { address, statusPort: (named.address() as AddressInfo).port };
        const get = await fetch(`http://${address}:${peer.statusPort}/lease-free`, {
          headers: { authorization: `Bearer ${memberToken}` },
        });
        assert.equal(get.status, 405);
        assert.equal(wakes, 0);
        cm.tellLeaseFree(undefined, "m0"); // nobody known by that name: nothing sent
        const t0 = Date.now();
        const woke = waker.sleep(10_000);
        cm.tellLeaseFree(peer, "m0");
        await woke;
        assert.ok(Date.now() - t0 < 2000, `the named member waited ${Date.now() - t0} ms`);
        assert.equal(wakes, 1);
        // Heeded once a second at most: a member calling it in a loop spins nothing.
        const again = await fetch(`http://${address}:${peer.statusPort}/lease-free?from=m0`, {
          method: "POST",
          headers: { authorization: `Bearer ${memberToken}` },
        });
        assert.deepEqual(await again.json(), { looking: false });
        assert.equal(wakes, 1);
      } finally {
        await closeServer(named);
      }

      // Nobody asks: the handover ends by itself after VIP_HANDOVER_MS, on its own timer.
      cm.held.took(8, Date.now());
      assert.equal(await cm.serveVip([3306]), ctx.cluster!.vip);
      assert.equal(cm.handVip(), true);
      await sleep(VIP_HANDOVER_MS + 300);
      assert.deepEqual([cm.handsVip, cm.servesVip], [false, false]);
    } finally {
      await closeServer(server);
      await closeServer(cp);
      block.release();
    }
  });
});
