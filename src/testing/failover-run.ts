/**
 * One failover run, the same code for every system (bench/failover):
 *
 *   settle → writes flowing → fault at the leader (t0) → writes flow again on another
 *   member for a second (the gap is measured up to here) → undo → settle → read back
 *   from the settled leader once its replicas replayed → losses and two writers
 *   among the acknowledgements of [t0, end of the run]
 *
 * The main writer goes through a MultiHostClient over the members the system
 * reported at the last settle; zonal also gets a writer through its virtual address
 * (an informational row).
 */
import { waitFor } from "../lib/sleep.js";
import {
  query,
  readBack,
  settle,
  type FailoverSystem,
  type Fault,
  type Member,
  type Settled,
} from "./failover-system.js";
import type { RunResult } from "./failover-report.js";
import { MultiHostClient } from "./multi-host.js";
import { PgChecker, type CheckerTarget } from "./pg-checker.js";
import type { HistoryVerdict } from "./write-history.js";

export const MULTI_HOST = "multi-host";
export const VIP = "vip";

/** Writes must flow again within this long after a fault, or the run is stuck. */
const RESUME_LIMIT_MS = 180_000;
/** A system must settle within this long (a node rejoining after a rewind included). */
const SETTLE_LIMIT_MS = 300_000;

export interface RunOutcome {
  t0: number;
  victim: Member;
  leaderAfter: Member;
  /** Per writer (MULTI_HOST, VIP). */
  results: Record<string, RunResult>;
  /** What went wrong along the way (a stuck run's logs, a failed read-back). */
  notes: string[];
}

/** A system under test with its writers. */
export class Subject {
  readonly checker: PgChecker;
  /** The writers: the multi-host client, and (zonal) the one through the VIP. */
  readonly vias = [MULTI_HOST];
  /** The addresses the multi-host client tries, as the system reported them at the last settle. */
  private hosts: string[] = [];
  /** The member the last run faulted, if that run moved the leader. */
  private victim: string | undefined;

  /**
   * `earlyReads`: after undoing each fault, also read the whole history from every
   * member as soon as each answers SQL, before the system settles — what the old
   * bench's read-back could hit when it fell back to a member that was not the
   * primary (bench/README.md, "The 97 rows").
   */
  constructor(
    readonly sys: FailoverSystem,
    private readonly earlyReads = false,
  ) {
    const client = new MultiHostClient(() => this.hosts, sys.credentials);
    this.checker = new PgChecker(client, "checks", sys.memberExpr, MULTI_HOST);
  }

  /** Settles the system, makes the checker's table and starts the writers. */
  async start(vip?: CheckerTarget): Promise<this> {
    await this.resettle();
    await this.checker.setup();
    this.checker.start();
    if (vip) {
      this.checker.addDirect(VIP, vip);
      this.vias.push(VIP);
    }
    return this;
  }

  /** Settles (a leader other than the last victim) and gives the client the members as they are now. */
  async resettle(): Promise<Settled> {
    const settled = await settle(this.sys, this.victim, SETTLE_LIMIT_MS);
    this.hosts = (await this.sys.members()).map((m) => m.address);
    return settled;
  }

  private async readEveryMember(when: string): Promise<string> {
    const members = await this.sys.members();
    const answering = async () => {
      const ok = await Promise.all(
        members.map((m) =>
          query(this.sys.credentials, m.address, "SELECT 1").then(
            () => true,
            () => false,
          ),
        ),
      );
      return members.filter((_, i) => ok[i]);
    };
    await waitFor(async () => ((await answering()).length === members.length ? true : undefined), {
      timeoutMs: 60_000,
      intervalMs: 200,
      what: "every member to answer",
    }).catch(() => undefined);
    const leader = await this.sys.leader().catch(() => undefined);
    return `read back ${when}: ${(await readEach(this, leader?.name, await answering())).join("; ")}`;
  }

  private lastAck(via: string): number {
    return this.checker.acked.findLast((a) => a.via === via)?.at ?? 0;
  }

  /** Writes by `via` went to a member other than `victim` for a second, the last under 200 ms ago. */
  private flowing(via: string, t0: number, victim: string): boolean {
    const acks = this.checker.since(t0, via).filter((a) => a.member !== victim);
    const now = Date.now();
    return acks.length > 0 && now - acks[0]!.at > 1000 && now - this.lastAck(via) < 200;
  }

  /** Stops the writers and tears the system down. */
  async teardown(): Promise<void> {
    await this.checker.stop();
    await this.sys.teardown();
  }

  async run(fault: Fault): Promise<RunOutcome> {
    const before = await this.resettle();
    await waitFor(() => (this.vias.every((v) => Date.now() - this.lastAck(v) < 200) ? true : undefined), {
      timeoutMs: 30_000,
      intervalMs: 50,
      what: `${this.sys.label}: writes before the fault`,
    });
    const victim = before.leader;
    const notes: string[] = [];
    const t0 = Date.now();
    const undo = await this.sys.inject(fault, victim);
    const stuck = await waitFor(
      () => (this.vias.every((v) => this.flowing(v, t0, victim.name)) ? false : undefined),
      { timeoutMs: RESUME_LIMIT_MS, intervalMs: 100, what: "writes to flow again on another member" },
    ).catch(async (err: Error) => {
      notes.push(`${err.message}\n${await this.sys.diagnose(t0)}`);
      return true;
    });
    const end = Date.now();
    const gaps = Object.fromEntries(this.vias.map((v) => [v, this.checker.longestGap(t0, end, v)]));
    await undo();
    if (this.earlyReads)
      notes.push(await this.readEveryMember("as soon as every member answered, before settling"));
    // A run that never moved the leader may leave it where it was.
    this.victim = stuck ? undefined : victim.name;
    const after = await this.resettle();
    if (after.backToVictim) {
      notes.push(`the lead went back to ${victim.name} after the fault was undone`);
      this.victim = undefined;
    }
    const verdict = await readBack(this.sys, this.checker, after, { from: t0, to: Date.now() }).catch(
      (err: Error) => void notes.push(`not read back: ${err.message}`),
    );
    if (verdict?.notReplayed.length)
      notes.push(`read back before ${verdict.notReplayed.join(", ")} replayed`);
    const results = Object.fromEntries(
      this.vias.map((v) => [v, { gapMs: gaps[v]!, stuck, ...judged(verdict, v) }]),
    );
    return { t0, victim, leaderAfter: after.leader, results, notes };
  }
}

/** Reads the whole history from each member (that answers) as it is now: missing rows per member. */
async function readEach(s: Subject, leader?: string, only?: Member[]): Promise<string[]> {
  const members = only ?? (await s.sys.members());
  const reads = await Promise.all(
    members.map((m) => s.checker.verify({ ...s.sys.credentials, host: m.address }).catch(() => undefined)),
  );
  return members.map((m, i) => {
    const role = m.name === leader ? "leader" : "not the leader";
    return `${m.name} (${role}): ${reads[i] ? `${reads[i]!.missing.length} missing` : "unreadable"}`;
  });
}

export interface Finish {
  acked: number;
  /** From the settled leader, once its replicas replayed. */
  verdict: HistoryVerdict & { rows: number; notReplayed: string[] };
  /** Straight after the writers stopped, from each member as it was: missing rows per member. */
  byMember: string[];
}

/**
 * Stops the writers and reads the whole history back: at once from every member as
 * it is (what a reader that did not find the primary would see: a replica lacks what
 * it has not replayed yet), then from the settled leader once its replicas replayed.
 */
export async function finish(s: Subject): Promise<Finish> {
  await s.checker.stop();
  const leader = await s.sys.leader().catch(() => undefined);
  const byMember = await readEach(s, leader?.name);
  const settled = await settle(s.sys, undefined, SETTLE_LIMIT_MS);
  const verdict = await readBack(s.sys, s.checker, settled);
  return { acked: s.checker.acked.length, verdict, byMember };
}

/** The writer's share of a verdict: its missing rows; two-writer findings are the table's. */
function judged(v: HistoryVerdict | undefined, via: string): Pick<RunResult, "lost" | "twoWriters"> {
  if (!v) return { lost: undefined, twoWriters: 0 };
  return {
    lost: v.missing.filter((a) => a.via === via),
    twoWriters: v.lateAcks.length + v.sharedTimelines.length,
  };
}
