/** The lease contract against a real three-member etcd cluster (Debian's etcd-server). */
import { TestEtcd } from "../../testing/etcd.js";
import { leaseContract } from "../contract.js";
import { EtcdLeaseStore } from "./store.js";
import assert from "node:assert/strict";
import { describe, it } from "node:test";

leaseContract("etcd (3 members)", async () => {
  const etcd = await new TestEtcd(3).start();
  return { store: new EtcdLeaseStore(etcd.endpoints), teardown: () => etcd.stop() };
});

describe("etcd lease store with a member down", () => {
  it("keeps granting and renewing with two of three members, trying the next endpoint", async () => {
    const etcd = await new TestEtcd(3).start();
    try {
      const store = new EtcdLeaseStore(etcd.endpoints, 1000);
      const acquiredAt = Date.now();
      const lease = (await store.acquire("quorum/leader", "alice", 3000))!;
      etcd.kill(0);
      // The killed member may have led: the two others elect a leader (about a second)
      // and answer "unavailable" meanwhile, as a holder's next renewal would see. The
      // lease survives when a renewal gets through before it expires.
      let renewed: boolean | undefined;
      while (renewed === undefined) {
        try {
          renewed = await store.renew("quorum/leader", "alice", lease.token);
        } catch (err) {
          if (Date.now() - acquiredAt > 2500) throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      assert.equal(renewed, true);
      assert.equal(await store.acquire("quorum/leader", "bob", 3000), undefined);
      assert.equal((await store.read("quorum/leader"))?.holder, "alice");
    } finally {
      await etcd.stop();
    }
  });
});
