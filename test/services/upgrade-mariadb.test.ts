/**
 * The long tier: `zonal upgrade-services` over a MariaDB Galera `cluster` instance,
 * under a checker writing through its VIP. Its template's new version changes a
 * server variable, so every node restarts: one at a time, each Synced before the
 * next, the writer last after the VIP moved. Every acknowledged row stays, and the
 * writers never interleave (Galera has no timelines: a writer node that came back
 * would show as a second run of it).
 */
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse, stringify } from "yaml";
import { repoPath } from "../../src/cli/home.js";
import type { BindingView } from "../../src/director/cluster-service.js";
import type { MariadbCredentials } from "../../src/jobs/mariadb/service.js";
import { roleTarget, timeline } from "../../src/testing/cluster-faults.js";
import { MariadbChecker } from "../../src/testing/mariadb-checker.js";
import { LONG } from "../../src/testing/tier.js";
import { ZonalHarness } from "../../src/testing/zonal-harness.js";
import type { BrokerInstanceView } from "../../src/wire/broker.js";

if (LONG)
  describe("upgrading a MariaDB cluster instance to its plan's new version [long]", () => {
    const z = new ZonalHarness();
    let dir: string;
    let checker: MariadbChecker | undefined;
    const shop = () => z.json<BrokerInstanceView[]>("services").find((r) => r.id === "shop")!;

    /** The mariadb cluster template at `version`, with `max_connections`. */
    function writeTemplate(version: string, maxConnections: number) {
      const file = "mariadb-cluster.yml";
      const t = parse(readFileSync(repoPath("examples", "broker-plans", file), "utf8")) as {
        version?: string;
        instance_groups: Array<{ jobs: Array<{ properties: Record<string, unknown> }> }>;
      };
      t.version = version;
      t.instance_groups[0]!.jobs[0]!.properties.parameters = { max_connections: maxConnections };
      writeFileSync(join(dir, "broker-plans", file), stringify(t));
    }

    before(async () => {
      dir = join(z.dir, "broker");
      mkdirSync(join(dir, "broker-plans"), { recursive: true });
      copyFileSync(repoPath("examples", "broker.yml"), join(dir, "broker.yml"));
      for (const f of readdirSync(repoPath("examples", "broker-plans")))
        copyFileSync(repoPath("examples", "broker-plans", f), join(dir, "broker-plans", f));
      writeTemplate("1.0.0", 150);
      await z.up("--broker-config", join(dir, "broker.yml"));
      const made = await z.zonalAsync("create-service", "mariadb", "cluster", "shop", "--wait");
      assert.equal(made.code, 0, made.err + made.out);
      const b = await z.director.http.request<BindingView>(
        "POST",
        `/v1/deployments/${shop().deployment}/bindings`,
        { body: {} },
      );
      checker = await new MariadbChecker(roleTarget(b.credentials as MariadbCredentials)).begin();
    });
    after(async () => {
      await checker?.stop();
      await z.teardown();
    });

    it("zonal upgrade-services rolls the cluster under writes: every acknowledged row stays, one writer at a time", async () => {
      writeTemplate("1.1.0", 160);
      await z.stopControlPlane("SIGTERM");
      await z.up("--broker-config", join(dir, "broker.yml"));
      assert.equal(shop().behind, true, "the new template version makes it behind");
      const t0 = Date.now();
      const r = await z.zonalAsync("upgrade-services");
      const t1 = Date.now();
      assert.equal(r.code, 0, r.err + r.out);
      console.log(r.out.replace(/^/gm, "# "));
      assert.match(r.out, /upgraded 1 of 1/);
      assert.deepEqual([shop().version, shop().behind], ["1.1.0", false]);
      const failed = checker!.failures.filter((f) => f.startedAt >= t0 && f.startedAt <= t1).length;
      console.log(
        `# upgrade-services of a MariaDB cluster: ${t1 - t0} ms; longest write pause ${checker!.longestGap(t0, t1)} ms; ${failed} failed writes`,
      );
      const pauses = checker!.pauses(t0, t1, 250).map((p) => `+${p.at - t0} ms for ${p.ms} ms`);
      console.log(`# write pauses over 250 ms: ${pauses.join(", ") || "none"}`);
      console.log((await timeline(z, t0, shop().deployment)).replace(/^/gm, "# "));
      const v = await checker!.verify();
      assert.deepEqual(v.missing, [], "every acknowledged row is there");
      const { runs, interleaved } = checker!.writerRuns({ from: t0, to: Date.now() });
      console.log(`# writers in acknowledgement order: ${runs.join(" -> ")}`);
      assert.equal(interleaved, false, `never two writers: ${runs.join(" -> ")}`);
    });
  });
