/** The lease contract against the embedded store, through its HTTP API and client. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApi } from "../../lib/http-server.js";
import { Store } from "../../store/store.js";
import { leaseContract } from "../contract.js";
import { LEASE_ROUTES, mountLeaseApi } from "./api.js";
import { HttpLeaseStore } from "./client.js";
import { EmbeddedLeaseStore } from "./store.js";

leaseContract("embedded (control plane over HTTP)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "zonal-leases-"));
  const store = await Store.open({ dataDir: dir });
  const app = createApi({ token: "admin-token-0123456789", open: LEASE_ROUTES });
  const leases = new EmbeddedLeaseStore(store);
  mountLeaseApi(
    app,
    () => leases,
    async (token) => (token === "admin-token-0123456789" ? { access: "admin" } : undefined),
  );
  await app.listen({ host: "127.0.0.1", port: 0 });
  const port = (app.server.address() as { port: number }).port;
  return {
    store: new HttpLeaseStore({ url: `http://127.0.0.1:${port}`, token: "admin-token-0123456789" }),
    async teardown() {
      await app.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe("embedded store after a control-plane restart", () => {
  it("gives every recorded lease, even one that expired while it was down, a full TTL to be renewed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zonal-leases-"));
    const store = await Store.open({ dataDir: dir });
    try {
      let now = 1_000_000;
      const leases = new EmbeddedLeaseStore(store, () => now);
      const l = (await leases.acquire("pg/postgres/leader", "vm-a", 5000, "m0"))!;
      now += 8000; // down longer than the TTL: expired, still recorded
      assert.equal(await leases.read("pg/postgres/leader"), undefined);
      assert.equal(await leases.renewAllAfterRestart(), 1);
      assert.equal(
        (await leases.read("pg/postgres/leader"))?.holder,
        "vm-a",
        "live again, nobody else can take it",
      );
      assert.equal(await leases.acquire("pg/postgres/leader", "vm-b", 5000), undefined);
      assert.equal(await leases.renew("pg/postgres/leader", "vm-a", l.token), true, "its holder renews it");
      now += 5001;
      assert.equal(await leases.read("pg/postgres/leader"), undefined, "and it expires as usual");
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
