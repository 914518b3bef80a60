/**
 * The `LeaseStore` contract: one suite, run against every implementation (the
 * embedded store over HTTP, etcd with three members). It checks exclusivity, that
 * fencing tokens only grow, expiry and renewal, release, break, listing and watch.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { sleep, waitFor } from "../lib/sleep.js";
import type { Lease, LeaseStore } from "./lease-store.js";

export interface LeaseContractSetup {
  store: LeaseStore;
  teardown(): Promise<void>;
}

/** Long enough for etcd, whose leases count whole seconds (and at least 2). */
const TTL = 2000;

export function leaseContract(name: string, setup: () => Promise<LeaseContractSetup>): void {
  describe(`LeaseStore contract: ${name}`, () => {
    let s: LeaseContractSetup;
    const run = randomBytes(3).toString("hex");
    const k = (n: string) => `contract-${run}/${n}`;
    before(async () => {
      s = await setup();
    });
    after(() => s.teardown());

    it("grants a free key with a fencing token, and nobody else gets it while held", async () => {
      const lease = await s.store.acquire(k("a"), "alice", TTL, "127.1.1.1");
      assert.ok(lease && lease.token > 0);
      assert.equal(lease.holder, "alice");
      assert.equal(lease.value, "127.1.1.1");
      assert.equal(await s.store.acquire(k("a"), "bob", TTL), undefined);
      const read = await s.store.read(k("a"));
      assert.deepEqual([read?.holder, read?.token, read?.value], ["alice", lease.token, "127.1.1.1"]);
      const again = await s.store.acquire(k("a"), "alice", TTL, "127.1.1.1");
      assert.equal(again?.token, lease.token, "acquiring what one holds renews it: same token");
    });

    it("lets exactly one of many concurrent acquirers win", async () => {
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => s.store.acquire(k("race"), `h${i}`, TTL)),
      );
      assert.equal(results.filter(Boolean).length, 1);
    });

    it("renews only for the holder with its token", async () => {
      const lease = (await s.store.acquire(k("r"), "alice", TTL))!;
      assert.equal(await s.store.renew(k("r"), "alice", lease.token), true);
      assert.equal(await s.store.renew(k("r"), "alice", lease.token + 1000), false);
      assert.equal(await s.store.renew(k("r"), "bob", lease.token), false);
      for (let i = 0; i < 6; i++) {
        await sleep(TTL / 4);
        assert.equal(
          await s.store.renew(k("r"), "alice", lease.token),
          true,
          "renewed in time, it stays held",
        );
      }
      assert.equal(await s.store.acquire(k("r"), "bob", TTL), undefined);
    });

    it("expires a lease that is not renewed; the next holder gets a larger token", async () => {
      const first = (await s.store.acquire(k("e"), "alice", TTL))!;
      await waitFor(async () => ((await s.store.read(k("e"))) === undefined ? true : undefined), {
        timeoutMs: TTL + 3000,
        intervalMs: 100,
        what: "the lease to expire",
      });
      const second = await s.store.acquire(k("e"), "bob", TTL);
      assert.ok(second && second.token > first.token, `${second?.token} > ${first.token}`);
      assert.equal(await s.store.renew(k("e"), "alice", first.token), false, "the old holder cannot renew");
    });

    it("releases (idempotently) and breaks only for the named holder", async () => {
      const lease = (await s.store.acquire(k("x"), "alice", TTL))!;
      await s.store.release(k("x"), "alice", lease.token);
      await s.store.release(k("x"), "alice", lease.token);
      assert.equal(await s.store.read(k("x")), undefined);
      const bob = (await s.store.acquire(k("x"), "bob", TTL))!;
      assert.ok(bob.token > lease.token);
      assert.equal(await s.store.break(k("x"), "alice"), false, "alice does not hold it");
      assert.equal((await s.store.read(k("x")))?.holder, "bob");
      assert.equal(await s.store.break(k("x"), "bob"), true);
      assert.equal(await s.store.read(k("x")), undefined, "broken at once, before its TTL");
    });

    it("lists the leases under a prefix", async () => {
      await s.store.acquire(k("members/m0"), "m0", TTL, "a0");
      await s.store.acquire(k("members/m1"), "m1", TTL, "a1");
      await s.store.acquire(k("other"), "m2", TTL);
      const listed = await s.store.list(k("members/"));
      assert.deepEqual(listed.map((l) => [l.key, l.value]).sort(), [
        [k("members/m0"), "a0"],
        [k("members/m1"), "a1"],
      ]);
    });

    it("purges every lease under a prefix, and only those", async () => {
      await s.store.acquire(k("gone/leader"), "m0", TTL, "a0");
      await s.store.acquire(k("gone/members/m1"), "m1", TTL);
      await s.store.acquire(k("kept"), "m2", TTL);
      assert.equal(await s.store.purge(k("gone/")), 2);
      assert.deepEqual(await s.store.list(k("gone/")), []);
      assert.equal((await s.store.read(k("kept")))?.holder, "m2");
      assert.equal(await s.store.purge(k("gone/")), 0, "idempotent");
    });

    it("tells watchers when a lease is taken and freed", async () => {
      const seen: Array<Lease | undefined> = [];
      const stop = s.store.watch(k("w"), (l) => seen.push(l));
      await sleep(300);
      const lease = (await s.store.acquire(k("w"), "alice", TTL))!;
      await waitFor(() => (seen.some((l) => l?.holder === "alice") ? true : undefined), {
        timeoutMs: 3000,
        what: "taken",
      });
      await s.store.release(k("w"), "alice", lease.token);
      await waitFor(() => (seen.at(-1) === undefined && seen.length >= 2 ? true : undefined), {
        timeoutMs: 3000,
        what: "freed",
      });
      stop();
    });
  });
}
