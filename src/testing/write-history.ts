/**
 * Judges a write history (pure): the commits clients were told succeeded, against
 * the rows a verified primary holds afterwards. Two promises of failover are
 * checked, each from more than one side:
 *
 * - nothing acknowledged is lost: every acknowledged row is there;
 * - never two writers: once a newer timeline has acknowledged a commit, no commit
 *   on an older timeline is acknowledged (the old primary accepted a write after
 *   another member was promoted), and no timeline has two members writing on it.
 *
 * A service without timelines (MariaDB Galera: every row is on timeline 0) cannot
 * show the second promise that way; `judgeWriterRuns` looks at who acknowledged, in
 * time order, instead.
 */

export interface Ack {
  n: number;
  /** The member that committed it (as the server named itself). */
  member: string;
  /**
   * The WAL timeline it was committed on: it grows with every promotion. 0 where the
   * service has no timelines (Galera); judge those with `judgeWriterRuns`.
   */
  timeline: number;
  /** When the client got the acknowledgement (ms, this process's clock). */
  at: number;
  /** Which writer sent it: "vip", or the member it writes to directly. */
  via: string;
}

export interface Row {
  n: number;
  member: string;
  timeline: number;
}

export interface HistoryVerdict {
  /** Acknowledged, yet not in the table. */
  missing: Ack[];
  /** Acknowledged on an older timeline after a newer one had acknowledged `newer`. */
  lateAcks: Array<{ ack: Ack; newer: Ack }>;
  /** Timelines on which more than one member wrote (acknowledged or present). */
  sharedTimelines: Array<{ timeline: number; members: string[] }>;
  /** The table in commit order, as member@timeline runs. */
  runs: string[];
  /** True when anything above shows two writers. */
  twoWriters: boolean;
}

export function judgeHistory(acks: Ack[], rows: Row[]): HistoryVerdict {
  const present = new Set(rows.map((r) => r.n));
  const missing = acks.filter((a) => !present.has(a.n));

  const lateAcks: HistoryVerdict["lateAcks"] = [];
  const byTime = [...acks].sort((x, y) => x.at - y.at);
  /** The first acknowledgement seen on each timeline, in time order. */
  const firsts: Ack[] = [];
  for (const a of byTime) {
    const newer = firsts.find((f) => f.timeline > a.timeline && f.at < a.at);
    if (newer) lateAcks.push({ ack: a, newer });
    if (!firsts.some((f) => f.timeline === a.timeline)) firsts.push(a);
  }

  const writers = new Map<number, Set<string>>();
  for (const w of [...acks, ...rows]) {
    const set = writers.get(w.timeline) ?? new Set<string>();
    set.add(w.member);
    writers.set(w.timeline, set);
  }
  const sharedTimelines = [...writers]
    .filter(([, members]) => members.size > 1)
    .map(([timeline, members]) => ({ timeline, members: [...members].sort() }));

  const runs: string[] = [];
  let last = "";
  for (const r of [...rows].sort((x, y) => x.n - y.n)) {
    const run = `${r.member}@${r.timeline}`;
    if (run !== last) runs.push(run);
    last = run;
  }
  return {
    missing,
    lateAcks,
    sharedTimelines,
    runs,
    twoWriters: lateAcks.length > 0 || sharedTimelines.length > 0,
  };
}

export interface WriterRuns {
  /** The acknowledgements in time order, as runs of one member: "m0 (12 writes)". */
  runs: string[];
  /** True when a member acknowledged again after another had (A, B, A). */
  interleaved: boolean;
}

/**
 * Who acknowledged writes, in the order the clients heard it, for a service without
 * timelines. Within one fault window a failover moves writes from one member to
 * another once (A, then B); a member that acknowledges again after another began
 * (A, B, A) means two members took writes in the same period. Meant for one window
 * at a time: a later failover back to A is no double writer. Count every writer,
 * those straight to each member too: zonal's Galera keeps every node but the writer
 * read-only, so a direct writer whose node acknowledges in between is a second
 * writer.
 */
export function judgeWriterRuns(acks: Ack[]): WriterRuns {
  const runs: Array<{ member: string; writes: number }> = [];
  for (const a of [...acks].sort((x, y) => x.at - y.at)) {
    const last = runs.at(-1);
    if (last?.member === a.member) last.writes++;
    else runs.push({ member: a.member, writes: 1 });
  }
  // Neighbouring runs are of different members, so a member seen twice came back.
  const members = new Set(runs.map((r) => r.member));
  return {
    runs: runs.map((r) => `${r.member} (${r.writes} ${r.writes === 1 ? "write" : "writes"})`),
    interleaved: members.size < runs.length,
  };
}
