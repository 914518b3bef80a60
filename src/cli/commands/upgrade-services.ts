/**
 * `zonal upgrade-services`: every service instance whose plan offers a newer version
 * (its template's) than it runs is upgraded — canaries first, then batches — each a
 * rolling update of its deployment in its service's order. Stops at the first batch
 * with a failure and exits 1, naming each instance that failed and why; never
 * success over a failure.
 */
import { Command, InvalidArgumentError } from "commander";
import { upgradeBatches } from "../../broker/decide.js";
import type { DirectorClient } from "../../director/client.js";
import { sleep } from "../../lib/sleep.js";
import { directorClient } from "../context.js";
import { print, printJson } from "../output.js";
import type { BrokerInstanceView } from "../../wire/broker.js";

type Row = BrokerInstanceView;

interface Outcome {
  id: string;
  from: string | null;
  to: string | null;
  state: "succeeded" | "failed" | "not started";
  why: string | null;
  seconds?: number;
}

const positive = (what: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0)
    throw new InvalidArgumentError(`${what}: expected a whole number, got "${v}"`);
  return n;
};

const list = (d: DirectorClient) => d.http.request<Row[]>("GET", "/v1/broker/instances");

/** Starts one instance's upgrade and follows it to its end. */
async function upgradeOne(d: DirectorClient, row: Row, json: boolean): Promise<Outcome> {
  const t0 = Date.now();
  const base = { id: row.id, from: row.version, to: row.latest };
  let operation: string | undefined;
  try {
    const r = await d.http.request<{ operation?: string }>(
      "POST",
      `/v1/broker/instances/${encodeURIComponent(row.id)}/upgrade`,
    );
    operation = r.operation;
  } catch (err) {
    return { ...base, state: "failed", why: (err as Error).message };
  }
  if (!operation) return { ...base, state: "succeeded", why: "already on it", seconds: 0 };
  if (!json) print(`  ${row.id}: ${row.version ?? "unknown"} -> ${row.latest} (operation ${operation})`);
  for (;;) {
    await sleep(1000);
    const now = (await list(d)).find((x) => x.id === row.id);
    const op = now?.lastOperation;
    if (!op || op.id !== operation) return { ...base, state: "failed", why: "its operation disappeared" };
    if (op.state === "in progress") continue;
    const seconds = Math.round((Date.now() - t0) / 1000);
    return op.state === "succeeded"
      ? { ...base, state: "succeeded", why: null, seconds }
      : { ...base, state: "failed", why: op.description ?? "failed", seconds };
  }
}

export function upgradeServicesCommand(): Command {
  return new Command("upgrade-services")
    .description(
      "upgrade every service instance to the version its plan offers now (its template's): canaries first, " +
        "then batches, each a rolling update in its service's order; stops at a failed canary or batch and " +
        "exits 1 naming each instance that failed and why",
    )
    .option("--canaries <n>", "instances upgraded first, alone, before any other", positive("--canaries"), 1)
    .option(
      "--max-in-flight <n>",
      "instances upgraded at once after the canaries",
      positive("--max-in-flight"),
      2,
    )
    .option("--json", "print JSON")
    .action(async (o: { canaries: number; maxInFlight: number; json?: boolean }, cmd: Command) => {
      if (o.maxInFlight < 1) throw new InvalidArgumentError("--max-in-flight: expected 1 or more");
      const d = directorClient(cmd);
      const rows = await list(d);
      const behind = rows.filter((r) => r.behind && r.lastOperation.state !== "in progress");
      const busy = rows.filter((r) => r.behind && r.lastOperation.state === "in progress");
      const json = o.json === true;
      if (!json) {
        print(
          `${rows.length} service instance(s); ${behind.length} to upgrade${busy.length ? `, ${busy.length} busy (skipped)` : ""}`,
        );
      }
      const outcomes: Outcome[] = [];
      let stopped = false;
      for (const batch of upgradeBatches(behind, o.canaries, o.maxInFlight)) {
        if (stopped) {
          for (const r of batch.instances)
            outcomes.push({
              id: r.id,
              from: r.version,
              to: r.latest,
              state: "not started",
              why: "an earlier batch failed",
            });
          continue;
        }
        if (!json)
          print(`${batch.canary ? "canary" : "batch"}: ${batch.instances.map((r) => r.id).join(", ")}`);
        const done = await Promise.all(batch.instances.map((r) => upgradeOne(d, r, json)));
        outcomes.push(...done);
        if (done.some((x) => x.state === "failed")) stopped = true;
      }
      for (const r of busy)
        outcomes.push({
          id: r.id,
          from: r.version,
          to: r.latest,
          state: "not started",
          why: "another operation is in progress",
        });
      const failed = outcomes.filter((x) => x.state === "failed");
      const notStarted = outcomes.filter((x) => x.state === "not started");
      if (json) printJson({ upgraded: outcomes.filter((x) => x.state === "succeeded").length, outcomes });
      else {
        print(
          `upgraded ${outcomes.filter((x) => x.state === "succeeded").length} of ${behind.length + busy.length}`,
        );
        for (const f of failed) print(`FAILED ${f.id}: ${f.why}`);
        for (const n of notStarted) print(`not upgraded ${n.id}: ${n.why}`);
      }
      if (failed.length > 0 || notStarted.length > 0) process.exitCode = 1;
    });
}
