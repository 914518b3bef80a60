import { cpSync } from "node:fs";
import { join } from "node:path";
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { repoPath } from "../../src/cli/home.js";
import { ZonalHarness } from "../../src/testing/zonal-harness.js";
import { waitFor } from "../../src/lib/sleep.js";
import type { ClusterView } from "../../src/director/cluster-service.js";

describe("galera smoke", () => {
  const z = new ZonalHarness();
  before(() => z.up());
  after(() => z.teardown());
  it("deploys and becomes whole", async () => {
    const t0 = Date.now();
    const r = await z.zonalAsync("deploy", repoPath("examples", "mariadb-cluster.yml"));
    console.log(`# deploy ${r.code} in ${Date.now() - t0} ms`, r.err.slice(-2000), r.out.slice(-2000));
    const c = await waitFor(
      async () => {
        const [c] = await z.director.http.request<ClusterView[]>("GET", "/v1/deployments/maria-ha/cluster");
        return c && c.members.filter((m) => m.role === "writer").length === 1 && c.members.filter((m) => m.role === "synced").length === 2 ? c : undefined;
      },
      { timeoutMs: 180_000, intervalMs: 1000, what: "whole" },
    ).catch(async (e) => {
      console.log(z.zonal("cluster", "-d", "maria-ha").out);
      cpSync(join(z.dataDir, "vms"), "/tmp/galera-logs", { recursive: true, filter: (s) => !s.includes("/persistent") && !s.includes("/data/") });
      throw e;
    });
    console.log(`# whole after ${Date.now() - t0} ms`);
    console.log(z.zonal("cluster", "-d", "maria-ha").out);
    assert.ok(c.vip);
  });
});
