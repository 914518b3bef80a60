/**
 * bench/failover's figures (pure): what one run measured, and the table per fault,
 * system and strictness with p50/p90/max gap, losses, two writers, stuck runs, runs
 * after which the system did not settle, and the ratio p50(zonal)/p50(this).
 */
import type { Ack } from "./write-history.js";

export interface RunResult {
  /** Longest stretch without an acknowledged write, from the fault until writes flowed again. */
  gapMs: number;
  /** Writes did not flow again within the run's limit (the gap is that limit). */
  stuck: boolean;
  /** Acknowledged within the run, missing from the settled primary; undefined: not read back. */
  lost: Ack[] | undefined;
  /** Findings of two writers within the run: late acknowledgements and shared timelines. */
  twoWriters: number;
}

export interface Cell {
  fault: string;
  system: string;
  strict: boolean;
  runs: RunResult[];
  /**
   * Runs after which the system did not settle (not counted in `runs`): each time it
   * was torn down and built afresh, and the runs went on.
   */
  unsettled?: number;
  /** Why the remaining runs were not made (it did not settle and could not be built again). */
  broken?: string;
}

/** Nearest-rank percentile (p in 0..100) of a non-empty list. */
export function percentile(xs: number[], p: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** One line per missing row: what the client was told, and when (ms after the fault). */
export function describeLost(lost: Ack[], t0: number): string[] {
  return lost.map(
    (a) =>
      `    n=${a.n} acknowledged by ${a.member} on timeline ${a.timeline} at +${a.at - t0} ms (${a.via})`,
  );
}

const COLUMNS: Array<[string, number]> = [
  ["fault", 10],
  ["system", 24],
  ["sync", 11],
  ["runs", 5],
  ["p50 ms", 8],
  ["p90 ms", 8],
  ["max ms", 8],
  ["lost acked writes", 18],
  ["two writers", 12],
  ["stuck runs", 11],
  ["did not settle", 15],
  ["zonal p50 / this", 17],
];

const row = (cells: string[]) =>
  cells.map((c, i) => (i < 3 ? c.padEnd(COLUMNS[i]![1]) : c.padStart(COLUMNS[i]![1]))).join(" ");

/**
 * The table. `reference` names the row each ratio is taken against (zonal through
 * the multi-host client) in the same fault and strictness.
 */
export function renderTable(cells: Cell[], reference: string): string[] {
  const lines = [row(COLUMNS.map(([name]) => name))];
  for (const c of cells) {
    const gaps = c.runs.map((r) => r.gapMs);
    const ref = cells.find((x) => x.system === reference && x.fault === c.fault && x.strict === c.strict);
    const refGaps = ref?.runs.map((r) => r.gapMs) ?? [];
    const read = c.runs.filter((r) => r.lost !== undefined);
    const lost = read.reduce((n, r) => n + r.lost!.length, 0);
    const stat = (p: number) => (gaps.length > 0 ? String(percentile(gaps, p)) : "-");
    lines.push(
      row([
        c.fault,
        c.system,
        c.strict ? "strict" : "not strict",
        String(c.runs.length),
        stat(50),
        stat(90),
        gaps.length > 0 ? String(Math.max(...gaps)) : "-",
        read.length < c.runs.length ? `${lost} (${c.runs.length - read.length} unread)` : String(lost),
        c.runs.some((r) => r.twoWriters > 0) ? "YES" : "never",
        String(c.runs.filter((r) => r.stuck).length),
        String(c.unsettled ?? 0),
        gaps.length > 0 && refGaps.length > 0
          ? (percentile(refGaps, 50) / percentile(gaps, 50)).toFixed(2)
          : "-",
      ]),
    );
    if (c.broken) lines.push(`  ${c.system}: stopped early: ${c.broken}`);
  }
  return lines;
}
