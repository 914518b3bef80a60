/**
 * What bench/failover needs of a system under test (zonal, Patroni), so that every
 * system is faulted, settled and read back by the same code:
 *
 *   settle     a leader that is not the last victim, checked with SQL to take
 *              writes; every other member streams from it (as the system can tell),
 *              received WAL within 1 MiB of the leader's
 *   inject     the fault at the leader, the same from outside on every system
 *   readBack   from the settled leader, once every replica replayed what it had
 *
 * Each system writes through a MultiHostClient over `members()`, in that order.
 */
import pg from "pg";
import { parseLsn } from "../jobs/postgres/files.js";
import { waitFor } from "../lib/sleep.js";
import type { Credentials } from "./multi-host.js";
import type { PgChecker } from "./pg-checker.js";
import type { HistoryVerdict } from "./write-history.js";

/** silent crash (address silent, then SIGKILL), freeze (silent, SIGSTOP), the primary cut off from the others and the lease store. */
export type Fault = "crash" | "freeze" | "partition";
export const FAULTS: Fault[] = ["crash", "freeze", "partition"];

export interface Member {
  /** As the checker's `memberExpr` names it. */
  name: string;
  address: string;
}

export interface FailoverSystem {
  /** The table's row name, e.g. "Patroni tuned". */
  readonly label: string;
  /** How it is set up, one setting a line, for the bench's header. */
  readonly settings: string[];
  /** A login that may write the checker's table (port and database included). */
  readonly credentials: Credentials;
  /** SQL that names the member a write went to, as `Member.name`. */
  readonly memberExpr: string;
  /** Its members as it reports them now, in the order a client tries them. */
  members(): Promise<Member[]>;
  /** Its leader as it reports it now, if it reports one. */
  leader(): Promise<Member | undefined>;
  /** Whether `replica` streams WAL from `leader` now, as the system can tell. */
  streamsFrom(replica: Member, leader: Member): Promise<boolean>;
  /** Makes `fault` at `leader`; resolves with what undoes it once the run is measured. */
  inject(fault: Fault, leader: Member): Promise<() => Promise<void>>;
  /** What it logged since `t0`, for a run that went wrong. */
  diagnose(t0: number): Promise<string>;
  teardown(): Promise<void>;
}

const MAX_LAG = 1_048_576;

/** One query on its own connection, client-side timeouts. */
export function query<R extends pg.QueryResultRow>(
  creds: Credentials,
  host: string,
  text: string,
): Promise<R[]> {
  return queryOnce<R>({ ...creds, host }, text);
}

/** One query on a connection of its own, closed after; `queryTimeoutMs` on the client side. */
export async function queryOnce<R extends pg.QueryResultRow>(
  config: pg.ClientConfig,
  text: string,
  queryTimeoutMs = 2000,
): Promise<R[]> {
  const c = new pg.Client({ ...config, connectionTimeoutMillis: 1000, query_timeout: queryTimeoutMs });
  c.on("error", () => undefined);
  try {
    await c.connect();
    return (await c.query<R>(text)).rows;
  } finally {
    void c.end().catch(() => undefined);
  }
}

/** The leader's WAL position, or undefined when it is not a primary that takes writes. */
async function primaryLsn(sys: FailoverSystem, leader: Member): Promise<bigint | undefined> {
  const [r] = await query<{ rec: boolean; ro: string; lsn: string }>(
    sys.credentials,
    leader.address,
    "SELECT pg_is_in_recovery() AS rec, current_setting('transaction_read_only') AS ro, pg_current_wal_lsn()::text AS lsn",
  );
  return r && !r.rec && r.ro === "off" ? (parseLsn(r.lsn) ?? undefined) : undefined;
}

/** What a replica has: received or replayed, whichever is further. */
async function replicaLsn(sys: FailoverSystem, m: Member, what: "received" | "replayed"): Promise<bigint> {
  const [r] = await query<{ rcv: string | null; rpl: string | null }>(
    sys.credentials,
    m.address,
    "SELECT pg_last_wal_receive_lsn()::text AS rcv, pg_last_wal_replay_lsn()::text AS rpl",
  );
  const rpl = parseLsn(r?.rpl) ?? 0n;
  const rcv = parseLsn(r?.rcv) ?? 0n;
  return what === "replayed" || rpl > rcv ? rpl : rcv;
}

export interface Settled {
  leader: Member;
  replicas: Member[];
  /** The leader is the member it was asked not to be: the lead went back to the last victim. */
  backToVictim: boolean;
}

/** How long a settled cluster led by the last victim is waited out before it is taken as it is. */
const VICTIM_GRACE_MS = 30_000;

/** One look: settled now (whoever leads), or why not. */
async function settledNow(sys: FailoverSystem, notLeader?: string): Promise<Settled | string> {
  const leader = await sys.leader();
  if (!leader) return "no leader";
  const top = await primaryLsn(sys, leader).catch(() => undefined);
  if (top === undefined) return `${leader.name} does not take writes`;
  const replicas = (await sys.members()).filter((m) => m.name !== leader.name);
  if (replicas.length < 2) return `${replicas.length} replicas`;
  for (const r of replicas) {
    if (!(await sys.streamsFrom(r, leader))) return `${r.name} does not stream from ${leader.name}`;
    const lag = top - (await replicaLsn(sys, r, "received").catch(() => 0n));
    if (lag >= MAX_LAG) return `${r.name} is ${lag} bytes behind`;
  }
  return { leader, replicas, backToVictim: leader.name === notLeader };
}

/**
 * Waits until the system is settled: a leader that takes writes and is not
 * `notLeader` (the last victim), both replicas streaming from it, under 1 MiB behind.
 * A system that settles with the last victim leading again (it took the lead back)
 * and stays so for 30 s is taken as it is, `backToVictim` set: waiting longer would
 * not change it.
 */
export async function settle(sys: FailoverSystem, notLeader?: string, timeoutMs = 240_000): Promise<Settled> {
  let why = "";
  let victimLeadsSince: number | undefined;
  try {
    return await waitFor(
      async () => {
        const s = await settledNow(sys, notLeader);
        if (typeof s === "string") {
          why = s;
          victimLeadsSince = undefined;
          return undefined;
        }
        if (!s.backToVictim) return s;
        why = `the leader is ${notLeader} again`;
        victimLeadsSince ??= Date.now();
        return Date.now() - victimLeadsSince >= VICTIM_GRACE_MS ? s : undefined;
      },
      { timeoutMs, intervalMs: 500, what: `${sys.label} to settle` },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; last seen: ${why}`);
  }
}

/**
 * Reads the checker's rows back from the settled leader, once each replica replayed
 * what the leader had when the read was asked for (or 30 s passed: the verdict
 * names the replicas that had not), and judges the acknowledgements within `window`.
 */
export async function readBack(
  sys: FailoverSystem,
  checker: PgChecker,
  s: Settled,
  window?: { from: number; to: number },
): Promise<HistoryVerdict & { rows: number; notReplayed: string[] }> {
  const top = await primaryLsn(sys, s.leader);
  if (top === undefined) throw new Error(`${s.leader.name} no longer takes writes; not reading back from it`);
  const notReplayed: string[] = [];
  for (const r of s.replicas) {
    await waitFor(async () => ((await replicaLsn(sys, r, "replayed")) >= top ? true : undefined), {
      timeoutMs: 30_000,
      intervalMs: 100,
      what: `${r.name} to replay`,
    }).catch(() => notReplayed.push(r.name));
  }
  const v = await checker.verify({ ...sys.credentials, host: s.leader.address }, window);
  return { ...v, notReplayed };
}
