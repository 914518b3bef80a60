/** Who may use which leases: a VM only its own group's keys. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ClusterService } from "./cluster-service.js";
import type { DirectorContext } from "./context.js";
import type { HeartbeatBook } from "./heartbeats.js";

const ADMIN = "a".repeat(40);
const APP_VM = "w".repeat(40);
const PG_VM = "p".repeat(40);

const ctx = {
  store: {
    instances: {
      byToken: async (t: string) =>
        ({
          [APP_VM]: { id: "i-web", vmId: "vm-web", deployment: "d", group: "web", index: 0 },
          [PG_VM]: { id: "i-pg", vmId: "vm-pg", deployment: "d", group: "pg", index: 0 },
        })[t],
    },
  },
} as unknown as DirectorContext;

describe("lease access", () => {
  const clusters = new ClusterService(ctx, ADMIN, {} as HeartbeatBook);

  it("gives a VM its own group's keys and nothing else, even in its own deployment", async () => {
    assert.equal(await clusters.authorize(PG_VM, "d/pg/leader"), "agent");
    assert.equal(await clusters.authorize(PG_VM, "d/pg/members/"), "agent");
    assert.equal(await clusters.authorize(APP_VM, "d/pg/leader"), undefined, "an app beside the cluster");
    assert.equal(await clusters.authorize(APP_VM, "d/pg/members/"), undefined);
    assert.equal(await clusters.authorize(APP_VM, "d/"), undefined, "not the whole deployment");
    assert.equal(await clusters.authorize(PG_VM, "d/pg"), undefined, "not a prefix of another group's");
    assert.equal(await clusters.authorize(PG_VM, "d/pg-2/leader"), undefined);
    assert.equal(await clusters.authorize("x".repeat(40), "d/pg/leader"), undefined, "no VM's token");
  });

  it("gives the control plane's token every key", async () => {
    assert.equal(await clusters.authorize(ADMIN, "d/pg/leader"), "admin");
  });
});
