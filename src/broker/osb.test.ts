/**
 * OSB v2.17 conformance (src/testing/osb-conformance.ts) in one process: the real
 * control plane and broker over the memory cloud and fake agents, selling the memo
 * test service (users in memory). The same suite runs against real PostgreSQL VMs in
 * test/broker/osb.test.ts.
 */
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { CoreHarness } from "../testing/core-harness.js";
import { memoUsers, registerMemo } from "../testing/memo-service.js";
import { osbConformance } from "../testing/osb-conformance.js";

const h = new CoreHarness();

/** A catalog of the memo service: three plans, the first changeable in place to the second. */
function writeMemoCatalog(dir: string): string {
  mkdirSync(join(dir, "plans"), { recursive: true });
  const template = (instances: number, zones: string[]) => ({
    name: "template",
    instance_groups: [
      {
        name: "memo",
        instances,
        zones,
        vm_type: "small",
        jobs: [{ name: "memo", type: "memo", properties: {} }],
      },
    ],
    update: { canaries: 1, max_in_flight: 1, canary_watch_time: 0, update_watch_time: 0 },
  });
  writeFileSync(join(dir, "plans", "single.yml"), stringify(template(1, ["z1"])));
  writeFileSync(join(dir, "plans", "cluster.yml"), stringify(template(3, ["z1", "z2", "z3"])));
  const plan = (n: number, name: string, updatable_to: string[] = []) => ({
    id: `memo-plan-${n}`,
    name,
    description: `memo ${name}`,
    template: `plans/${name === "single" ? "single" : "cluster"}.yml`,
    updatable_to,
  });
  const file = join(dir, "broker.yml");
  writeFileSync(
    file,
    stringify({
      service: { id: "memo-service", name: "memo", description: "users in memory (tests)" },
      maintenance_info: { version: "1.0.0" },
      plans: [plan(1, "single", ["cluster"]), plan(2, "cluster"), plan(3, "cluster-big")],
    }),
  );
  return file;
}

osbConformance("memo, in process", {
  up: async () => {
    registerMemo();
    h.brokerConfig = writeMemoCatalog(h.dir);
    await h.up();
    return h.client;
  },
  teardown: () => h.teardown(),
  pollMs: 20,
  // The memory cloud and fake agents provision in milliseconds.
  holdStarts: () => h.agents.holdStarts(),
  service: {
    name: "memo",
    plans: ["single", "cluster", "cluster-big"],
    first: "single",
    canChangeTo: "cluster",
    cannotChangeTo: "cluster-big",
    parameters: { space: "orders" },
    badParameters: [{ space: "Bad Space" }, /parameters.*space/],
    credentialKeys: ["uri", "host", "port", "space", "username", "password"],
    checkCredentials(c) {
      assert.equal(c.space, "orders");
      const [deployment] = [...memoUsers.keys()];
      assert.equal(memoUsers.get(deployment!)?.get(String(c.username)), c.password, "the user was made");
    },
  },
});
