/**
 * bench/provision: how long each broker plan takes from the OSB PUT until
 * last_operation says `succeeded` and a bound role runs a query (usable), median of
 * N runs (default 3), on the embedded local cloud. The peer, measured in the same
 * run, is a direct `zonal deploy` of the same plan's manifest (until its task is
 * done): the ratio is what the broker adds. Each instance is deprovisioned after.
 *
 *   npm run bench:provision [-- --runs 3]        target: `cluster` usable in <= 30 s
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { stringify } from "yaml";
import { OsbClient, type OsbEndpoint } from "../src/broker/client.js";
import { manifestFor } from "../src/broker/service.js";
import { loadCatalog } from "../src/broker/catalog.js";
import { repoPath } from "../src/cli/home.js";
import { waitFor } from "../src/lib/sleep.js";
import { roleTarget, type BindingCredentials } from "../src/testing/cluster-faults.js";
import { ZonalHarness } from "../src/testing/zonal-harness.js";

const runsArg = process.argv.indexOf("--runs");
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 3;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const z = new ZonalHarness();
  const catalog = loadCatalog(repoPath("examples", "broker.yml"));
  const rows: Array<{ plan: string; broker: number[]; direct: number[] }> = [];
  try {
    await z.up();
    const ep = await z.director.http.request<OsbEndpoint>("GET", "/v1/broker");
    const osb = new OsbClient(ep);
    const service = catalog.services[0]!;
    for (const plan of service.plans) {
      const row = { plan: plan.name, broker: [] as number[], direct: [] as number[] };
      for (let i = 0; i < RUNS; i++) {
        const id = `bench-${plan.name}-${i}`;
        const t0 = Date.now();
        const r = await osb.call("PUT", `/service_instances/${id}`, {
          query: { accepts_incomplete: "true" },
          body: { service_id: service.id, plan_id: plan.id, organization_guid: "b", space_guid: "b" },
        });
        if (r.status !== 202) throw new Error(`provision ${id}: ${r.status} ${JSON.stringify(r.body)}`);
        const state = await waitFor(
          async () => {
            const s = await osb.call("GET", `/service_instances/${id}/last_operation`);
            return s.body.state === "in progress" ? undefined : s.body;
          },
          { timeoutMs: 300_000, intervalMs: 250, what: `${id} to be provisioned` },
        );
        if (state.state !== "succeeded") throw new Error(`${id}: ${String(state.description)}`);
        const bound = await osb.call<{ credentials: BindingCredentials }>(
          "PUT",
          `/service_instances/${id}/service_bindings/${id}-b`,
          {
            body: { service_id: service.id, plan_id: plan.id },
          },
        );
        const c = bound.body.credentials;
        // As the binding says: TLS, the certificate checked against its CA and the host (verify-full).
        const client = new pg.Client(roleTarget(c));
        await client.connect();
        await client.query("SELECT 1");
        await client.end();
        row.broker.push(Date.now() - t0);
        process.stderr.write(`${plan.name} via the broker, run ${i + 1}: ${row.broker.at(-1)} ms\n`);
        await osb.call("DELETE", `/service_instances/${id}/service_bindings/${id}-b`, {
          query: { service_id: service.id, plan_id: plan.id },
        });
        await osb.call("DELETE", `/service_instances/${id}`, {
          query: { service_id: service.id, plan_id: plan.id, accepts_incomplete: "true" },
        });
        await waitFor(
          async () =>
            (await osb.call("GET", `/service_instances/${id}/last_operation`)).status === 410
              ? true
              : undefined,
          { timeoutMs: 120_000, intervalMs: 250, what: `${id} to be deprovisioned` },
        );
        // The peer: the same manifest deployed directly.
        const path = join(z.dir, `${id}.yml`);
        writeFileSync(path, stringify(manifestFor(plan, `direct-${plan.name}-${i}`, {})));
        const t1 = Date.now();
        const d = z.zonal("deploy", path);
        if (d.code !== 0) throw new Error(d.err + d.out);
        row.direct.push(Date.now() - t1);
        process.stderr.write(`${plan.name} by zonal deploy, run ${i + 1}: ${row.direct.at(-1)} ms\n`);
        const gone = z.zonal("delete-deployment", `direct-${plan.name}-${i}`);
        if (gone.code !== 0) throw new Error(gone.err + gone.out);
      }
      rows.push(row);
    }
  } finally {
    await z.teardown();
  }
  console.log(
    `\nprovisioning time per plan, median of ${RUNS} (broker: PUT until a bound role runs a query)`,
  );
  console.log("plan              broker ms   max ms   zonal deploy ms   broker / deploy");
  for (const r of rows)
    console.log(
      `${r.plan.padEnd(16)} ${String(median(r.broker)).padStart(10)} ${String(Math.max(...r.broker)).padStart(8)} ${String(median(r.direct)).padStart(17)} ${(median(r.broker) / median(r.direct)).toFixed(2).padStart(17)}`,
    );
  console.log("target: cluster usable in <= 30000 ms on the local cloud");
}

await main();
