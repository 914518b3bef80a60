/**
 * The write-history judges catch what they are for: lost acknowledged rows and two
 * writers, by timeline or (without timelines) by who acknowledged when.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { judgeHistory, judgeWriterRuns, type Ack, type Row } from "./write-history.js";

const ack = (n: number, member: string, timeline: number, at: number, via = "vip"): Ack => ({
  n,
  member,
  timeline,
  at,
  via,
});
const rowOf = (a: Ack): Row => ({ n: a.n, member: a.member, timeline: a.timeline });

describe("judgeHistory", () => {
  const clean = [ack(1, "m0", 1, 100), ack(2, "m0", 1, 200), ack(3, "m1", 2, 900), ack(4, "m1", 2, 1000)];

  it("passes a clean failover: every row there, one writer per timeline, old timeline done before the new", () => {
    const v = judgeHistory(clean, clean.map(rowOf));
    assert.deepEqual(v.missing, []);
    assert.equal(v.twoWriters, false);
    assert.deepEqual(v.runs, ["m0@1", "m1@2"]);
  });

  it("catches a planted lost row", () => {
    const v = judgeHistory(clean, clean.filter((a) => a.n !== 2).map(rowOf));
    assert.deepEqual(
      v.missing.map((a) => a.n),
      [2],
    );
  });

  it("catches an old primary acknowledging after the new one began (the row itself may be gone)", () => {
    const late = ack(5, "m0", 1, 950, "m0");
    const v = judgeHistory([...clean, late], clean.map(rowOf));
    assert.equal(v.twoWriters, true);
    assert.deepEqual(v.lateAcks, [{ ack: late, newer: clean[2] }]);
    assert.deepEqual(
      v.missing.map((a) => a.n),
      [5],
    );
  });

  it("catches two members writing on one timeline", () => {
    const both = [ack(1, "a", 1, 100, "a"), ack(2, "b", 1, 110, "b"), ack(3, "a", 1, 120, "a")];
    const v = judgeHistory(both, both.map(rowOf));
    assert.equal(v.twoWriters, true);
    assert.deepEqual(v.sharedTimelines, [{ timeline: 1, members: ["a", "b"] }]);
  });
});

describe("judgeWriterRuns", () => {
  it("passes one switch from one member to another", () => {
    const acks = [ack(1, "m0", 0, 100), ack(2, "m0", 0, 200), ack(3, "m1", 0, 900), ack(4, "m1", 0, 1000)];
    assert.deepEqual(judgeWriterRuns(acks), { runs: ["m0 (2 writes)", "m1 (2 writes)"], interleaved: false });
  });

  it("catches a member acknowledging again after another began (A, B, A)", () => {
    const acks = [ack(1, "m0", 0, 100), ack(2, "m1", 0, 200, "m1"), ack(3, "m0", 0, 300)];
    assert.deepEqual(judgeWriterRuns(acks), {
      runs: ["m0 (1 write)", "m1 (1 write)", "m0 (1 write)"],
      interleaved: true,
    });
  });

  it("orders by acknowledgement time, not by row number or writer", () => {
    // Row 3 was numbered after row 2 but acknowledged before it: m0, m1, m1 in time.
    const acks = [ack(1, "m0", 0, 100), ack(2, "m1", 0, 500, "m1"), ack(3, "m1", 0, 400)];
    assert.deepEqual(judgeWriterRuns(acks), { runs: ["m0 (1 write)", "m1 (2 writes)"], interleaved: false });
    const back = [ack(1, "m0", 0, 100), ack(2, "m0", 0, 500, "m0"), ack(3, "m1", 0, 400)];
    assert.equal(judgeWriterRuns(back).interleaved, true);
  });

  it("passes an empty window", () => {
    assert.deepEqual(judgeWriterRuns([]), { runs: [], interleaved: false });
  });
});
