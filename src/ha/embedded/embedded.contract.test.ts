/** The lease contract against the embedded store, through its HTTP API and client. */
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
    async (token) => (token === "admin-token-0123456789" ? "admin" : undefined),
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
