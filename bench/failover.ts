/**
 * bench/failover: write unavailability and lost acknowledged writes when a
 * PostgreSQL primary fails, zonal against Patroni 3.0 + etcd (Debian's packages),
 * on equal terms:
 *
 * - the same PostgreSQL settings (zonal's SHARED_PARAMETERS, src/jobs/postgres/files.ts,
 *   are Patroni's parameters too: wal_retrieve_retry_interval 250ms, timeouts 5 s, …);
 * - the same strictness, both ways: zonal `synchronous: strict` / Patroni
 *   `synchronous_mode_strict: true`, and zonal `synchronous: on` / Patroni
 *   `synchronous_mode: true, synchronous_mode_strict: false`;
 * - the same client: one writer per system through a multi-host client
 *   (src/testing/multi-host.ts: libpq's target_session_attrs=read-write; no fallback);
 *   zonal also gets a writer through its VIP, an informational row;
 * - the same faults, made the same way from outside: silent crash (the primary's
 *   address drops every packet, then its processes get SIGKILL), freeze (silent,
 *   SIGSTOP), partition (the primary cut off from the other members and the lease
 *   store — zonal's control plane, etcd — while clients still reach it);
 * - the same settle check before every run (a leader other than the last victim, both
 *   replicas streaming from it, under 1 MiB behind; a cluster whose last victim took
 *   the lead back is taken as it is after 30 s, with a note) and the same read-back
 *   after it (from that leader, checked to take writes, once its replicas replayed):
 *   the run's lost acknowledged writes, each printed, and two-writer findings;
 * - the same answer to a system that does not settle within 5 minutes after a run
 *   (Patroni 3.0.2 can end with a leader on an older timeline than its replicas, which
 *   it does not repair): the run counts in "did not settle", not in the gaps, and the
 *   system is built afresh so the runs go on.
 *
 * Patroni runs tuned (ttl 5, loop_wait 1, retry_timeout 2: zonal's lease is 5 s,
 * renewed every second) and with its defaults (ttl 30, loop_wait 10, retry_timeout 10).
 * All clusters of a strictness run at once; one fault at a time hits one system; the
 * systems take turns run by run, and which goes first rotates every round.
 *
 *   npm run bench:failover [-- --runs 10] [--faults crash,freeze,partition] [--strict both|only|off] [--no-vip] [--early-reads]
 *
 * About 2 minutes per round of one fault over the three systems: 10 runs x 3 faults
 * x 2 strictness settings take about 2 hours, `--strict only` about 1 (estimated from
 * smoke runs). Needs root (nftables, cgroups); installs patroni with apt when missing.
 * `--early-reads` also reads every member back after each undo (bench/README.md,
 * "The 97 rows"). The table is printed at the end, the runs on stderr as they go.
 */
import { parseArgs } from "node:util";
import { SHARED_PARAMETERS } from "../src/jobs/postgres/files.js";
import { errorMessage } from "../src/lib/errors.js";
import { TestEtcd } from "../src/testing/etcd.js";
import { PatroniSystem } from "../src/testing/failover-patroni.js";
import { describeLost, renderTable, type Cell } from "../src/testing/failover-report.js";
import { finish, MULTI_HOST, Subject, VIP, type RunOutcome } from "../src/testing/failover-run.js";
import type { CheckerTarget } from "../src/testing/pg-checker.js";
import { FAULTS, type FailoverSystem, type Fault } from "../src/testing/failover-system.js";
import { ZonalSystem } from "../src/testing/failover-zonal.js";
import { ensurePatroni, PATRONI_DEFAULTS, PATRONI_TUNED } from "../src/testing/patroni.js";

const ZONAL = "zonal";

interface Options {
  runs: number;
  faults: Fault[];
  strictness: boolean[];
  vip: boolean;
  /** Also read every member back right after each undo, before settling (the 97-rows question). */
  earlyReads: boolean;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      runs: { type: "string", default: "10" },
      faults: { type: "string", default: FAULTS.join(",") },
      strict: { type: "string", default: "both" },
      "no-vip": { type: "boolean", default: false },
      "early-reads": { type: "boolean", default: false },
    },
  });
  const faults = values.faults.split(",") as Fault[];
  const bad = faults.filter((f) => !FAULTS.includes(f));
  if (bad.length > 0) throw new Error(`--faults: ${bad.join(", ")} unknown (${FAULTS.join(", ")})`);
  const strictness = { both: [true, false], only: [true], off: [false] }[values.strict];
  if (!strictness) throw new Error(`--strict: expected both, only or off, got ${values.strict}`);
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs: expected a count, got ${values.runs}`);
  return { runs, faults, strictness, vip: !values["no-vip"], earlyReads: values["early-reads"] };
}

/** What is up now, torn down on the way out (an error, or Ctrl-C). */
const live = new Set<{ teardown(): Promise<void> }>();

async function tearDown(): Promise<void> {
  for (const x of [...live].reverse()) {
    await x.teardown().catch((err: unknown) => process.stderr.write(`teardown: ${errorMessage(err)}\n`));
    live.delete(x);
  }
}

for (const signal of ["SIGINT", "SIGTERM"] as const)
  process.once(signal, () => void tearDown().finally(() => process.exit(130)));

/** Builds one system afresh, with its writers. */
type Maker = () => Promise<Subject>;

/** zonal, Patroni tuned and Patroni with its defaults, each built the same way whenever it is built again. */
function makers(strict: boolean, etcd: TestEtcd, o: Options): Maker[] {
  const subject = async (sys: FailoverSystem, vip?: CheckerTarget): Promise<Subject> => {
    live.add(sys);
    const s = new Subject(sys, o.earlyReads);
    live.delete(sys);
    live.add(s); // its teardown stops its writers too
    return s.start(vip);
  };
  return [
    async () => {
      const zonal = await ZonalSystem.start(ZONAL, strict);
      return subject(zonal, o.vip ? zonal.vip : undefined);
    },
    async () => subject(await PatroniSystem.start("Patroni 3.0 tuned", etcd, PATRONI_TUNED, strict)),
    async () => subject(await PatroniSystem.start("Patroni 3.0 defaults", etcd, PATRONI_DEFAULTS, strict)),
  ];
}

async function dispose(s: Subject): Promise<void> {
  await s.teardown().catch((err: unknown) => process.stderr.write(`teardown: ${errorMessage(err)}\n`));
  live.delete(s);
}

const rowName = (s: Subject, via: string) => (via === VIP ? `${s.sys.label} via VIP (info)` : s.sys.label);

function settingsText(strict: boolean, subjects: Subject[]): string[] {
  const shared = Object.entries(SHARED_PARAMETERS).map(([k, v]) => `${k}=${String(v)}`);
  return [
    `settings (${strict ? "strict" : "not strict"}):`,
    `  both: PostgreSQL 15, 3 members on loopback, ${shared.join(" ")}`,
    "  client: one writer per system, multi-host (each member in order, first that takes writes; connect timeout 500 ms, query timeout 1 s, no statement_timeout)",
    ...subjects.flatMap((s) => s.sys.settings.map((line) => `  ${s.sys.label}: ${line}`)),
  ];
}

/** Prints the run's line (stderr); returns the missing rows' details and what went wrong, for the report. */
function progress(strict: boolean, round: string, fault: Fault, s: Subject, o: RunOutcome): string[] {
  const r = o.results[MULTI_HOST]!;
  const vip = o.results[VIP] ? ` (via VIP ${o.results[VIP].gapMs} ms)` : "";
  const lost = Object.values(o.results).flatMap((x) => x.lost ?? []);
  const head = `[${strict ? "strict" : "not strict"}] ${round} ${fault.padEnd(9)} ${s.sys.label.padEnd(20)}`;
  process.stderr.write(
    `${head} gap ${r.gapMs} ms${vip}${r.stuck ? " STUCK" : ""}, ${o.victim.name} -> ${o.leaderAfter.name}, ` +
      `lost ${r.lost === undefined ? "?" : lost.length}, two writers ${r.twoWriters}\n`,
  );
  for (const line of [...describeLost(lost, o.t0), ...o.notes]) process.stderr.write(`${line}\n`);
  const notes = o.notes.map((n) => `    ${n.split("\n")[0]}`);
  return lost.length + notes.length > 0
    ? [`${head} lost ${lost.length}`, ...describeLost(lost, o.t0), ...notes]
    : [];
}

/** Rotates the list by `n`: which system goes first changes every round. */
const rotate = <T>(xs: T[], n: number): T[] => xs.map((_, i) => xs[(i + n) % xs.length]!);

/** Every run of one strictness; returns the cells and what to print above and below the table. */
async function phase(
  strict: boolean,
  etcd: TestEtcd,
  o: Options,
): Promise<{ cells: Cell[]; text: string[] }> {
  const make = makers(strict, etcd, o);
  const subjects: Subject[] = [];
  for (const m of make) subjects.push(await m());
  const cells: Cell[] = o.faults.flatMap((fault) =>
    subjects.flatMap((s) => s.vias.map((via) => ({ fault, system: rowName(s, via), strict, runs: [] }))),
  );
  const cellOf = (fault: Fault, s: Subject, via: string) =>
    cells.find((c) => c.fault === fault && c.system === rowName(s, via))!;
  const broken = new Map<Subject, string>();
  const losses: string[] = [];
  for (let round = 0; round < o.runs; round++) {
    for (const fault of o.faults) {
      for (const s of rotate(subjects, round).filter((x) => !broken.has(x))) {
        try {
          const outcome = await s.run(fault);
          for (const via of s.vias) cellOf(fault, s, via).runs.push(outcome.results[via]!);
          losses.push(...progress(strict, `${round + 1}/${o.runs}`, fault, s, outcome));
        } catch (err) {
          // It did not settle: counted, and built afresh (a new address block, a new
          // Patroni scope) so that the runs go on; its old self is torn down after.
          process.stderr.write(
            `${s.sys.label}: ${errorMessage(err)}\n${await s.sys.diagnose(Date.now() - 60_000)}\n`,
          );
          for (const via of s.vias) {
            const cell = cellOf(fault, s, via);
            cell.unsettled = (cell.unsettled ?? 0) + 1;
          }
          losses.push(
            `[${strict ? "strict" : "not strict"}] ${round + 1}/${o.runs} ${fault} ${s.sys.label}: did not settle: ${errorMessage(err)}; built afresh`,
          );
          const i = subjects.indexOf(s);
          try {
            subjects[i] = await make[i]!();
            process.stderr.write(`${s.sys.label}: built afresh\n`);
          } catch (rebuild) {
            broken.set(s, `${errorMessage(err)}; not built again: ${errorMessage(rebuild)}`);
          }
          if (subjects[i] !== s) await dispose(s);
        }
      }
    }
  }
  for (const c of cells) {
    const s = subjects.find((x) => c.system.startsWith(x.sys.label))!;
    if (broken.has(s)) c.broken = broken.get(s);
  }
  const text = settingsText(strict, subjects);
  const after: string[] = [];
  for (const s of subjects.filter((x) => !broken.has(x)))
    after.push(
      ...(await finalCheck(
        s,
        cells.some((c) => c.system.startsWith(s.sys.label) && c.unsettled),
      )),
    );
  for (const s of subjects) await dispose(s);
  if (losses.length > 0) after.push("runs with missing acknowledged writes or notes:", ...losses);
  return { cells, text: [...text, "", ...after] };
}

async function finalCheck(s: Subject, rebuilt: boolean): Promise<string[]> {
  try {
    const f = await finish(s);
    const v = f.verdict;
    return [
      `${s.sys.label}: whole history${rebuilt ? " (since it was last built afresh)" : ""} read back from the leader after its replicas replayed: ${v.missing.length} of ${f.acked} acknowledged writes missing, two writers ${v.twoWriters ? "YES" : "never"}` +
        (v.notReplayed.length > 0 ? ` (${v.notReplayed.join(", ")} had not replayed)` : ""),
      `  straight after the writers stopped, read from each member: ${f.byMember.join("; ")}`,
    ];
  } catch (err) {
    return [`${s.sys.label}: whole history not read back: ${errorMessage(err)}`];
  }
}

async function main(): Promise<void> {
  const o = options();
  if (process.getuid?.() !== 0)
    throw new Error("bench/failover needs root: nftables rules and cgroups make its faults");
  ensurePatroni();
  const started = Date.now();
  const etcd = await new TestEtcd(3).start();
  live.add({ teardown: () => etcd.stop() });
  const results: Array<{ cells: Cell[]; text: string[] }> = [];
  let failure: unknown;
  try {
    for (const strict of o.strictness) results.push(await phase(strict, etcd, o));
  } catch (err) {
    failure = err; // what was measured before it is still printed
  } finally {
    await tearDown();
  }
  console.log(
    `\nwrite unavailability when the primary fails: ${o.runs} runs per cell, gaps in ms (${Math.round((Date.now() - started) / 60_000)} min)`,
  );
  for (const r of results) console.log(["", ...r.text].join("\n"));
  const cells = results.flatMap((r) => r.cells);
  console.log(["", ...renderTable(cells, ZONAL)].join("\n"));
  console.log(
    "\nthe gap: longest stretch without an acknowledged write from the fault until writes flowed on another member for 1 s; lost: acknowledged in the run, missing from the settled leader; two writers: late acknowledgements on an old timeline or two members on one",
  );
  if (failure) throw failure;
}

// Ends the process even if a client of a torn-down system still holds a handle.
await main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
