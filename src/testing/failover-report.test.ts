import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { percentile, renderTable, type Cell, type RunResult } from "./failover-report.js";

const run = (gapMs: number, o: Partial<RunResult> = {}): RunResult => ({
  gapMs,
  stuck: false,
  lost: [],
  twoWriters: 0,
  ...o,
});

describe("failover report", () => {
  it("takes nearest-rank percentiles", () => {
    const xs = [10, 1, 9, 2, 8, 3, 7, 4, 6, 5];
    assert.equal(percentile(xs, 50), 5);
    assert.equal(percentile(xs, 90), 9);
    assert.equal(percentile(xs, 100), 10);
    assert.equal(percentile([42], 90), 42);
  });

  it("gives each row its ratio against zonal in the same fault and strictness, and counts losses", () => {
    const lost = [{ n: 7, member: "m1", timeline: 2, at: 5, via: "multi-host" }];
    const cells: Cell[] = [
      { fault: "crash", system: "zonal", strict: true, runs: [run(1000), run(2000), run(3000)] },
      {
        fault: "crash",
        system: "Patroni",
        strict: true,
        runs: [run(4000), run(4000, { lost, twoWriters: 1 }), run(180_000, { stuck: true, lost: undefined })],
        unsettled: 2,
      },
      { fault: "crash", system: "zonal", strict: false, runs: [run(500)] },
    ];
    const [header, zonal, patroni, loose] = renderTable(cells, "zonal");
    assert.match(header!, /p50 ms/);
    assert.match(zonal!, /^crash\s+zonal\s+strict\s+3\s+2000\s+3000\s+3000\s+0\s+never\s+0\s+0\s+1\.00$/);
    assert.match(patroni!, /4000\s+180000\s+180000\s+1 \(1 unread\)\s+YES\s+1\s+2\s+0\.50$/);
    assert.match(loose!, /not strict .* 1\.00$/);
  });
});
