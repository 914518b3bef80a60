/**
 * Hostile requests against the HTTP surfaces, in-process: the VMs' heartbeats, the
 * embedded lease store's API (as a VM of the deployment calls it), and the local
 * cloud's API. Bodies are good ones with one thing broken or anything at all; ids in
 * paths and query strings are hostile strings. Every answer is a 2xx or a 4xx —
 * never a 5xx — a 400 names the field, and a refusal changes nothing (the heartbeats
 * recorded, the lease table and its token counter, the VM and disk lists).
 */
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { FastifyInstance } from "fastify";
import type { ControlPlaneBroker } from "../broker/control-plane.js";
import { heartbeatSchema } from "../agent/heartbeat.js";
import { buildCloudApi } from "../cloud/local/api.js";
import { parseCloudConfig } from "../cloud/local/config.js";
import { LocalCloudService } from "../cloud/local/service.js";
import { buildControlPlaneApi } from "../control-plane/api.js";
import type { Director } from "../director/director.js";
import { mountLeaseApi } from "../ha/embedded/api.js";
import { EmbeddedLeaseStore } from "../ha/embedded/store.js";
import { Unavailable } from "../lib/errors.js";
import { createApi } from "../lib/http-server.js";
import { Store } from "../store/store.js";
import { fuzzBodies, fuzzPaths, hostileSuite, mutations, send } from "./hostile.js";

const VM_TOKEN = "v".repeat(40);

describe("hostile requests", () => {
  const { dir, tally } = hostileSuite("zonal-hostile-http-");

  describe("the VMs' heartbeats", () => {
    const recorded: unknown[] = [];
    const director = {
      recordHeartbeat: async (token: string, beat: unknown) => {
        if (token !== VM_TOKEN) throw new Unavailable("only the test's VM beats");
        recorded.push(beat);
        return "recorded";
      },
    } as unknown as Director;
    const broker = (): ControlPlaneBroker => {
      throw new Unavailable("no broker here");
    };
    const app = buildControlPlaneApi(
      () => director,
      "o".repeat(40),
      () => ({}),
      broker,
    );
    after(() => app.close());
    const valid = {
      vmId: "vm-1",
      seq: 3,
      sentAt: new Date(0).toISOString(),
      agentStartedAt: new Date(0).toISOString(),
      specVersion: "3",
      instance: { deployment: "d", group: "g", index: 0, id: "i-1" },
      jobsState: "running",
      addresses: [{ address: "127.1.1.1", port: 5432, state: "bound" }],
      jobs: [{ name: "web", state: "running", restarts: 0, healthy: true }],
      disk: {
        persistent: { id: "disk-1", usedBytes: 1, freeBytes: 2, totalBytes: 3 },
        ephemeral: { usedBytes: 1, freeBytes: 2, totalBytes: 3 },
      },
      load: [0.1, 0.2, 0.3],
    };

    it("accepts a good heartbeat", async () => {
      assert.equal((await send(app, "POST", "/v1/heartbeats", valid, VM_TOKEN)).status, 204);
    });

    it("refuses every broken one with a 400 naming the field, and records nothing", async () => {
      const t = tally("POST /v1/heartbeats");
      // What is accepted is a heartbeat the health monitor can judge.
      await fuzzBodies(
        { app, tally: t, auth: VM_TOKEN, state: () => recorded.length },
        [["POST", "/v1/heartbeats", mutations(valid)]],
        (_url, a) => {
          if (a.status < 300)
            assert.ok(
              heartbeatSchema.safeParse(recorded.at(-1)).success,
              "an accepted heartbeat is well formed",
            );
        },
      );
    });
  });

  describe("cluster members' calls", () => {
    const app = buildControlPlaneApi(
      () =>
        ({
          clusters: {
            moveVip: async () => ({ address: "127.1.1.1" }),
            fence: async () => ({ fenced: false, broken: [] }),
            markInitialized: async () => ({ initialized: true }),
          },
        }) as unknown as Director,
      "o".repeat(40),
      () => ({}),
      () => {
        throw new Unavailable("no broker here");
      },
    );
    after(() => app.close());
    it("VIP, fencing and init-marker bodies: 2xx or a 400 naming the field", async () => {
      const t = tally("POST /v1/clusters/*");
      await fuzzBodies({ app, tally: t, auth: VM_TOKEN, state: () => null }, [
        ["POST", "/v1/clusters/vip", mutations({ key: "d/pg", token: 3 })],
        ["POST", "/v1/clusters/fence", mutations({ key: "d/pg", vmId: "vm-1" })],
        ["POST", "/v1/clusters/initialized", mutations({ key: "d/pg" })],
      ]);
    });
  });

  describe("the lease store's API, as a VM of deployment d", () => {
    let store: Store;
    let leases: EmbeddedLeaseStore;
    let app: FastifyInstance;
    before(async () => {
      mkdirSync(join(dir, "leases"));
      store = await Store.open({ dataDir: join(dir, "leases") });
      leases = new EmbeddedLeaseStore(store);
      app = createApi({});
      mountLeaseApi(
        app,
        () => leases,
        async (token, key) =>
          token === VM_TOKEN && key.startsWith("d/")
            ? { access: "agent", holder: "vm-1", maxTtlMs: 120_000, identity: { vmId: "vm-1" } }
            : undefined,
      );
      await leases.acquire("d/g/leader", "vm-1", 60_000, "{}");
    });
    after(async () => {
      await app.close();
      await store.close();
    });
    const state = async () => ({
      leases: (await leases.list("")).map((l) => ({ ...l, expiresAt: 0 })),
      counter: await store.settings.get("lease_token_counter"),
    });

    const bodies: Array<[string, Record<string, unknown>]> = [
      ["/v1/leases/acquire", { key: "d/g/other", holder: "vm-1", ttlMs: 5000, value: "x" }],
      ["/v1/leases/renew", { key: "d/g/leader", holder: "vm-1", token: 1 }],
      ["/v1/leases/release", { key: "d/g/none", holder: "vm-1", token: 1 }],
      ["/v1/leases/break", { key: "d/g/leader", holder: "vm-1" }],
      ["/v1/leases/purge", { prefix: "d/" }],
    ];
    for (const [route, valid] of bodies) {
      it(`POST ${route}: 2xx or 4xx naming the field; a refusal changes no lease`, async () => {
        const t = tally(`POST ${route}`);
        // What a good request did is undone, so every run starts from the same table.
        await fuzzBodies(
          { app, tally: t, auth: VM_TOKEN, state },
          [["POST", route, mutations(valid)]],
          async (_url, a) => {
            if (a.status >= 300) return;
            for (const l of await leases.list(""))
              if (l.key !== "d/g/leader") await leases.break(l.key, l.holder);
            await leases.acquire("d/g/leader", "vm-1", 60_000, "{}");
          },
        );
      });
    }

    it("GET read and list with hostile keys: 2xx or 4xx, nothing changes", async () => {
      const t = tally("GET /v1/leases/read|list");
      await fuzzPaths({ app, tally: t, auth: VM_TOKEN, state }, [
        ["GET", "/v1/leases/read?key=:x"],
        ["GET", "/v1/leases/list?prefix=:x"],
      ]);
    });
  });

  describe("the local cloud's API", () => {
    const config = parseCloudConfig({
      address_base: 201,
      zones: [{ name: "z1", hosts: [{ name: "h1", cpu: 2, ram_mb: 1024 }] }],
    });
    const service = new LocalCloudService({ config, dataDir: join(dir, "cloud") });
    const token = "t".repeat(32);
    const app = buildCloudApi(service, token);
    after(() => app.close());
    const state = async () => ({ vms: await service.listVms(), disks: await service.listDisks() });

    it("ids in paths: never a 5xx, nothing changes", async () => {
      const t = tally("local cloud paths");
      const routes = [
        ["GET", "/v1/vms/:x"],
        ["DELETE", "/v1/vms/:x"],
        ["POST", "/v1/vms/:x/reboot"],
        ["POST", "/v1/vms/:x/power-off"],
        ["GET", "/v1/vms/:x/agent"],
        ["GET", "/v1/disks/:x"],
        ["DELETE", "/v1/disks/:x"],
        ["DELETE", "/v1/disks/:x/attachment"],
        ["POST", "/v1/faults/vms/:x/crash"],
        ["POST", "/v1/faults/vms/:x/freeze"],
      ] as const;
      // The cloud has no VM and no disk: nothing is found, whatever the id.
      await fuzzPaths(
        { app, tally: t, auth: token, state },
        routes,
        (m) => (m === "GET" || m === "DELETE" ? undefined : {}),
        (method, url, a) => {
          if (method === "GET")
            assert.ok(a.status >= 400, `${url.slice(0, 80)}: ${a.status} ${a.body.slice(0, 200)}`);
        },
      );
    });

    it("bodies: broken VM, disk and metadata requests are 400 naming the field, and create nothing", async () => {
      const t = tally("local cloud bodies");
      const bodies = [
        ["POST", "/v1/vms", { zone: "z1", vmType: { cpu: 64, ramMb: 999_999 }, metadata: { a: "b" } }],
        ["POST", "/v1/disks", { zone: "z1", sizeMb: 999_999_999, metadata: { a: "b" } }],
        ["PATCH", "/v1/vms/vm-nobody/metadata", { a: "b" }],
        ["PUT", "/v1/disks/disk-nobody/attachment", { vmId: "vm-nobody" }],
      ] as const;
      // Anything a mutation made after all is removed again (none is expected: too big to fit).
      await fuzzBodies(
        { app, tally: t, auth: token, state },
        bodies.map(([m, u, v]) => [m, u, mutations(v)] as const),
        async () => {
          for (const vm of await service.listVms()) await service.deleteVm(vm.id);
          for (const d of await service.listDisks()) await service.deleteDisk(d.id);
        },
      );
    });
  });
});
