import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  decideRunning,
  decideStart,
  HOLDER_UNSYNCED_MS,
  parseGrastate,
  parseRecoveredPosition,
  STUCK_NON_PRIMARY_MS,
  type RunningInput,
  type StartInput,
} from "./galera.js";

const U = "b048715d-4369-11e4-b7ef-af1999a6c989";
const OTHER = "8b6b2e92-320c-11e7-9498-53f394e3a32a";

describe("galera saved state", () => {
  it("reads grastate.dat: uuid, seqno, safe_to_bootstrap", () => {
    const text = `# GALERA saved state\nversion: 2.1\nuuid: ${U}\nseqno: 1399488\nsafe_to_bootstrap: 1\n`;
    assert.deepEqual(parseGrastate(text), { uuid: U, seqno: 1399488, safeToBootstrap: true });
    const unclean = `# GALERA saved state\nversion: 2.1\nuuid: ${U}\nseqno: -1\nsafe_to_bootstrap: 0\n`;
    assert.deepEqual(parseGrastate(unclean), { uuid: U, seqno: -1, safeToBootstrap: false });
    assert.equal(parseGrastate("version: 2.1\nseqno: 3\n"), null, "no uuid");
    assert.equal(parseGrastate(`uuid: not-a-uuid\nseqno: 3\n`), null);
    assert.equal(parseGrastate(`uuid: ${U}\nseqno: x\n`), null);
  });

  it("reads the last position --wsrep-recover logged", () => {
    const log = [
      "2026-12-02 14:00:00 0 [Note] WSREP: Recovered position: 00000000-0000-0000-0000-000000000000:-1",
      `2026-12-02 14:00:01 0 [Note] WSREP: Recovered position: ${U}:11775`,
    ].join("\n");
    assert.deepEqual(parseRecoveredPosition(log), { uuid: U, seqno: 11775 });
    assert.deepEqual(parseRecoveredPosition(`WSREP: Recovered position ${U}:74027509`), {
      uuid: U,
      seqno: 74027509,
    });
    assert.equal(parseRecoveredPosition("[Note] InnoDB: ready"), null);
    // As mariadbd 10.11 wrote it: the next line's date right after the seqno.
    assert.deepEqual(
      parseRecoveredPosition(
        `2026-12-02 17:11:27 0 [Note] WSREP: Recovered position: ${U}:2322026-12-02 17:11:27 0 [Warning] Could not increase number of max_open_files`,
      ),
      { uuid: U, seqno: 232 },
    );
    assert.deepEqual(parseRecoveredPosition(`Recovered position: ${U}:12026\n`), { uuid: U, seqno: 12026 });
  });
});

describe("how a galera node starts", () => {
  const base: StartInput = {
    me: "m1",
    members: ["m0", "m1", "m2"],
    initialized: true,
    primaryRunning: false,
    positions: {},
    forced: null,
  };
  const at = (m0: number, m1: number, m2: number, uuid = U) => ({
    m0: { uuid, seqno: m0 },
    m1: { uuid, seqno: m1 },
    m2: { uuid, seqno: m2 },
  });
  const what = (o: Partial<StartInput>) => {
    const d = decideStart({ ...base, ...o });
    return `${d.do}: ${d.sentence}`;
  };

  it("joins a running Primary component, whatever else is known", () => {
    assert.match(what({ primaryRunning: true, positions: at(9, 1, 1) }), /^join:/);
  });

  it("a new cluster: only the first member bootstraps", () => {
    assert.match(what({ initialized: false, me: "m0" }), /^bootstrap: a new cluster/);
    assert.match(what({ initialized: false, me: "m2" }), /^wait: a new cluster: waiting for m0/);
  });

  it("after a whole-cluster outage: waits until every member said where it ends", () => {
    const { m2: _late, ...early } = at(5, 9, 7);
    assert.equal(
      what({ me: "m1", positions: early }),
      "wait: no Primary component; waiting for m2 to say where its data ends (the most advanced node must bootstrap)",
    );
  });

  it("then only the node with the highest seqno bootstraps; ties go to the lower member", () => {
    assert.match(what({ me: "m1", positions: at(5, 9, 7) }), /^bootstrap: .*highest seqno \(9\)/);
    assert.match(what({ me: "m0", positions: at(5, 9, 7) }), /^wait: .*m1 has the highest seqno \(9\)/);
    assert.match(what({ me: "m2", positions: at(5, 9, 7) }), /^wait: .*m1 has/);
    assert.match(what({ me: "m1", positions: at(4, 9, 9) }), /^bootstrap:/);
    assert.match(what({ me: "m2", positions: at(4, 9, 9) }), /^wait: .*m1 has/);
    const bootstrappers = ["m0", "m1", "m2"].filter(
      (me) => decideStart({ ...base, me, positions: at(3, 3, 3) }).do === "bootstrap",
    );
    assert.deepEqual(bootstrappers, ["m0"], "never two");
  });

  it("an unknown position or two histories: nobody bootstraps until an operator forces one", () => {
    for (const me of ["m0", "m1", "m2"]) {
      assert.match(what({ me, positions: at(5, -1, 7) }), /^wait: .*m1 could not recover its position/);
      assert.match(
        what({ me, positions: { ...at(5, 6, 7), m2: { uuid: OTHER, seqno: 99 } } }),
        /^wait: .*2 different histories/,
      );
    }
    assert.match(what({ me: "m0", forced: "m0", positions: at(5, -1, 7) }), /^bootstrap: an operator forced/);
    assert.match(what({ me: "m2", forced: "m0", positions: at(5, -1, 7) }), /^wait: an operator forced m0/);
  });

  it("a member with a new, empty disk never bootstraps and holds nobody back", () => {
    const positions = { ...at(5, 9, 7), m1: "empty" as const };
    assert.match(what({ me: "m2", positions }), /^bootstrap: .*highest seqno \(7\)/);
    assert.match(what({ me: "m1", positions }), /^wait: .*m2 has the highest seqno/);
    assert.match(
      what({ me: "m0", positions: { m0: "empty", m1: "empty", m2: "empty" } }),
      /^wait: .*no member holds the cluster's data/,
    );
  });
});

describe("what a running galera node does about writes", () => {
  const now = 1_000_000;
  const synced = { running: true, state: "Synced", primary: true };
  const base: RunningInput = {
    now,
    node: synced,
    lease: "other",
    writerSilent: false,
    unsyncedSince: null,
    bootstrapUntil: 0,
    seenPrimary: true,
    nonPrimarySince: null,
  };
  const d = (o: Partial<RunningInput>) => decideRunning({ ...base, ...o }).do;

  it("a holder writes only while Synced in the Primary component, a moment of donating state aside", () => {
    assert.equal(d({ lease: "mine" }), "lead");
    const donor = { running: true, state: "Donor/Desynced", primary: true };
    assert.equal(d({ lease: "mine", node: donor, unsyncedSince: now - 1000 }), "lead");
    assert.equal(d({ lease: "mine", node: donor, unsyncedSince: now - HOLDER_UNSYNCED_MS }), "step-down");
    const outside = { running: true, state: "Initialized", primary: false };
    assert.equal(d({ lease: "mine", node: outside }), "step-down", "outside the Primary component: at once");
  });

  it("a holder keeps the lease through one unanswered status query, not longer", () => {
    const silent = { running: true, state: null, primary: false };
    assert.equal(d({ lease: "mine", node: silent, unsyncedSince: now - 500 }), "hold");
    assert.equal(d({ lease: "mine", node: silent, unsyncedSince: now - HOLDER_UNSYNCED_MS }), "step-down");
  });

  it("a bootstrapping holder keeps the lease while its server starts, and gives it up if it leaves the component", () => {
    const starting = { running: true, state: null, primary: false };
    const bootstrapping = { bootstrapUntil: now + 60_000, seenPrimary: false, unsyncedSince: now - 30_000 };
    assert.equal(d({ lease: "mine", node: starting, ...bootstrapping }), "hold");
    const joined = { running: true, state: "Joined", primary: true };
    assert.equal(d({ lease: "mine", node: joined, ...bootstrapping, seenPrimary: true }), "hold");
    assert.equal(
      d({ lease: "mine", node: { ...starting, state: "Initialized" }, ...bootstrapping, seenPrimary: true }),
      "step-down",
      "it was Primary and left",
    );
    assert.equal(d({ lease: "mine", node: starting, ...bootstrapping, bootstrapUntil: now }), "step-down");
  });

  it("a follower takes a free lease or asks to fence a silent writer only when Synced in the Primary component", () => {
    assert.equal(d({ lease: "free" }), "take");
    assert.equal(d({ lease: "other", writerSilent: true }), "fence");
    assert.equal(d({ lease: "other" }), "follow");
    for (const node of [
      { running: true, state: "Joined", primary: true },
      { running: true, state: "Donor/Desynced", primary: true },
      { running: true, state: "Synced", primary: false },
      { running: true, state: null, primary: false },
    ]) {
      assert.equal(d({ lease: "free", node }), "follow", JSON.stringify(node));
      assert.equal(d({ lease: "other", writerSilent: true, node }), "follow", JSON.stringify(node));
    }
    assert.equal(d({ lease: "unreachable" }), "follow", "nothing is taken while the store does not answer");
  });

  it("a node outside any Primary component starts over only after a while", () => {
    const outside = { running: true, state: "Initialized", primary: false };
    assert.equal(d({ node: outside, nonPrimarySince: now - 1000 }), "follow");
    assert.equal(d({ node: outside, nonPrimarySince: now - STUCK_NON_PRIMARY_MS - 1 }), "start-over");
  });
});
