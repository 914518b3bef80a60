/**
 * Judges a write history (pure): the commits clients were told succeeded, against
 * the rows a verified primary holds afterwards. Two promises of failover are
 * checked, each from more than one side:
 *
 * - nothing acknowledged is lost: every acknowledged row is there;
 * - never two writers: once a newer timeline has acknowledged a commit, no commit
 *   on an older timeline is acknowledged (the old primary accepted a write after
 *   another member was promoted), and no timeline has two members writing on it.
 */

export interface Ack {
  n: number;
  /** The member that committed it (as the server named itself). */
  member: string;
  /** The WAL timeline it was committed on: it grows with every promotion. */
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
