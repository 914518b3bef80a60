import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DEFAULT_HEALTH } from "./config.js";
import { guard, type GuardInstance } from "./guard.js";
import type { Health } from "./verdict.js";

const inst = (key: string, zone: string, health: Health, o: Partial<GuardInstance> = {}): GuardInstance => ({
  id: key,
  key,
  deployment: key.split("/")[0]!,
  zone,
  health,
  strategy: "resurrect",
  recovers: true,
  relocate: false,
  ...o,
});
const none = { all: false, deployments: [] };
const actions = (d: ReturnType<typeof guard>) => d.actions.map((a) => `${a.action} ${a.key}`);

describe("meltdown guard", () => {
  it("holds the instances still silent right after a meltdown ended, for one unresponsive window", () => {
    const instances = [
      inst("pg/0", "z1", "healthy"),
      inst("pg/1", "z2", "healthy"),
      inst("pg/2", "z3", "unresponsive"),
    ];
    const input = {
      instances,
      failedZones: [],
      zoneVictims: new Set<string>(),
      overrides: none,
      paused: none,
    };
    assert.deepEqual(actions(guard({ ...input, recentMeltdown: none }, DEFAULT_HEALTH)), ["recover pg/2"]);
    const d = guard({ ...input, recentMeltdown: { all: true, deployments: [] } }, DEFAULT_HEALTH);
    assert.deepEqual(actions(d), ["wait pg/2"]);
    assert.match(d.actions[0]!.sentence, /a meltdown ended moments ago; waiting for its heartbeats/);
    assert.deepEqual(
      actions(
        guard(
          { ...input, recentMeltdown: none, overrides: { all: true, deployments: [] }, paused: none },
          DEFAULT_HEALTH,
        ),
      ),
      ["recover pg/2"],
    );
  });

  it("recovers a single down instance", () => {
    const d = guard(
      {
        instances: [
          inst("web/0", "z1", "unresponsive"),
          inst("web/1", "z2", "healthy"),
          inst("web/2", "z3", "healthy"),
        ],
        failedZones: [],
        zoneVictims: new Set(),
        recentMeltdown: none,
        overrides: none,
        paused: none,
      },
      DEFAULT_HEALTH,
    );
    assert.deepEqual(actions(d), ["recover web/0"]);
    assert.deepEqual(d.meltdown, { all: false, deployments: [] });
  });

  it("waits in a meltdown of a deployment until the operator overrides it", () => {
    const instances = [
      inst("web/0", "z1", "unresponsive"),
      inst("web/1", "z2", "failing"),
      inst("web/2", "z3", "healthy"),
      inst("db/0", "z1", "healthy"),
      inst("db/1", "z2", "healthy"),
      inst("db/2", "z3", "healthy"),
    ];
    const d = guard(
      {
        instances,
        failedZones: [],
        zoneVictims: new Set(),
        recentMeltdown: none,
        overrides: none,
        paused: none,
      },
      DEFAULT_HEALTH,
    );
    assert.deepEqual(d.meltdown, { all: false, deployments: ["web"] });
    assert.deepEqual(actions(d), ["wait web/0", "wait web/1"]);
    assert.match(
      d.actions[0]!.sentence,
      /meltdown in deployment web \(2 of 3 down\); not recreating blindly/,
    );
    assert.deepEqual(
      actions(
        guard(
          {
            instances,
            failedZones: [],
            zoneVictims: new Set(),
            recentMeltdown: none,
            overrides: { all: false, deployments: ["web"] },
            paused: none,
          },
          DEFAULT_HEALTH,
        ),
      ),
      ["recover web/0", "recover web/1"],
    );
  });

  it("keeps the instances of a down zone waiting, unless their group relocates; recovers them when it is back", () => {
    const instances = [
      inst("web/0", "z3", "unresponsive"),
      inst("web/1", "z3", "unresponsive"),
      inst("api/0", "z3", "unresponsive", { relocate: true }),
      inst("web/2", "z2", "healthy"),
    ];
    const d = guard(
      {
        instances,
        failedZones: ["z3"],
        zoneVictims: new Set(),
        recentMeltdown: none,
        overrides: none,
        paused: none,
      },
      DEFAULT_HEALTH,
    );
    assert.deepEqual(d.downZones, ["z3"]);
    assert.deepEqual(
      d.meltdown.deployments,
      ["web"],
      "2 of 3 web instances are down: reported as a meltdown",
    );
    assert.deepEqual(actions(d), ["wait web/0", "wait web/1", "relocate api/0"]);
    assert.match(d.actions[0]!.sentence, /zone z3 is down; waiting for it/);
    const back = guard(
      {
        instances,
        failedZones: [],
        zoneVictims: new Set(["web/0", "web/1"]),
        overrides: none,
        paused: none,
        recentMeltdown: none,
      },
      DEFAULT_HEALTH,
    );
    // The zone's victims are recovered despite the meltdown (3 of 4 down); api/0 did not wait for the zone: held.
    assert.deepEqual(actions(back), ["recover web/0", "recover web/1", "wait api/0"]);
    assert.match(back.actions[0]!.sentence, /zone z3 is back; recovering by resurrect/);
  });

  it("trusts the cloud when it says a zone's hosts failed", () => {
    const d = guard(
      {
        instances: [
          inst("db/0", "z2", "unresponsive"),
          inst("db/1", "z1", "healthy"),
          inst("db/2", "z3", "healthy"),
        ],
        failedZones: ["z2"],
        zoneVictims: new Set(),
        recentMeltdown: none,
        overrides: none,
        paused: none,
      },
      DEFAULT_HEALTH,
    );
    assert.deepEqual(actions(d), ["wait db/0"]);
  });

  it("leaves strategy none alone", () => {
    const d = guard(
      {
        instances: [
          inst("x/0", "z1", "unresponsive", { strategy: "none", recovers: false }),
          inst("x/1", "z2", "healthy"),
        ],
        failedZones: [],
        zoneVictims: new Set(),
        recentMeltdown: none,
        overrides: none,
        paused: none,
      },
      DEFAULT_HEALTH,
    );
    assert.deepEqual(actions(d), ["leave x/0"]);
  });

  it("recovers nothing of a paused deployment (one whose zone is down alike) until recovery resumes", () => {
    const input = {
      instances: [
        inst("web/0", "z1", "unresponsive"),
        inst("web/1", "z2", "healthy"),
        inst("web/2", "z2", "healthy"),
        inst("db/0", "z3", "unresponsive", { relocate: true }),
        inst("db/1", "z1", "healthy"),
        inst("db/2", "z2", "healthy"),
      ],
      failedZones: ["z3"],
      zoneVictims: new Set<string>(),
      recentMeltdown: none,
      overrides: none,
    };
    const paused = guard({ ...input, paused: { all: false, deployments: ["web"] } }, DEFAULT_HEALTH);
    assert.deepEqual(actions(paused), ["wait web/0", "relocate db/0"]);
    assert.match(paused.actions[0]!.sentence, /recovery paused by the operator.*zonal health resume/);
    const all = guard({ ...input, paused: { all: true, deployments: [] } }, DEFAULT_HEALTH);
    assert.deepEqual(actions(all), ["wait web/0", "wait db/0"]);
    assert.deepEqual(actions(guard({ ...input, paused: none }, DEFAULT_HEALTH)), [
      "recover web/0",
      "relocate db/0",
    ]);
  });
});
