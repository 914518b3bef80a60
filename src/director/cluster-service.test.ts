/**
 * Who may use which leases, through the lease API as a VM calls it: a VM reads only
 * its own group's keys, changes only the leader lease and its own member key, always
 * as itself, publishes only its own address, sees a fencing token only of a lease it
 * holds; the cluster's init marker is the control plane's, set for the leader only.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { FastifyInstance } from "fastify";
import { parse } from "yaml";
import { repoPath } from "../cli/home.js";
import { mountLeaseApi } from "../ha/embedded/api.js";
import { EmbeddedLeaseStore } from "../ha/embedded/store.js";
import { createApi } from "../lib/http-server.js";
import { Store } from "../store/store.js";
import { AGENT_LEASE_TTL_MAX_MS, ClusterService } from "./cluster-service.js";
import type { DirectorContext } from "./context.js";
import type { HeartbeatBook } from "./heartbeats.js";
import { parseCloudConfig } from "../manifest/cloud-config.js";
import { silentLogger } from "../lib/log.js";
import { parseManifest } from "../manifest/manifest.js";
import { buildSpec } from "./spec-builder.js";

const ADMIN = "a".repeat(40);
const APP_VM = "w".repeat(40);
const PG0 = "p".repeat(40);
const PG1 = "q".repeat(40);

const cc = parseCloudConfig(parse(readFileSync(repoPath("examples", "cloud-config.yml"), "utf8")));
const manifest = parseManifest(
  {
    name: "d",
    instance_groups: [
      {
        name: "pg",
        instances: 3,
        zones: ["z1", "z2", "z3"],
        vm_type: "small",
        persistent_disk_type: "small",
        jobs: [{ name: "db", type: "postgres", properties: { cluster: true } }],
      },
      {
        name: "web",
        instances: 1,
        zones: ["z1"],
        vm_type: "small",
        jobs: [{ name: "web", type: "process", properties: { command: "sleep 1000" } }],
      },
    ],
  },
  cc,
);

const instances: Record<string, object> = {
  [APP_VM]: { id: "i-web", vmId: "vm-web", deployment: "d", group: "web", index: 0, address: "127.9.0.3" },
  [PG0]: { id: "i-pg0", vmId: "vm-pg0", deployment: "d", group: "pg", index: 0, address: "127.9.0.1" },
  [PG1]: { id: "i-pg1", vmId: "vm-pg1", deployment: "d", group: "pg", index: 1, address: "127.9.0.2" },
};

describe("lease access, as VMs call the lease API", () => {
  const dir = mkdtempSync(join(tmpdir(), "zonal-lease-access-"));
  let store: Store;
  let leases: EmbeddedLeaseStore;
  let clusters: ClusterService;
  let app: FastifyInstance;
  before(async () => {
    store = await Store.open({ dataDir: dir });
    leases = new EmbeddedLeaseStore(store);
    const ctx = {
      leases,
      log: silentLogger,
      store: {
        instances: {
          byToken: async (t: string) => instances[t],
          list: async () => Object.values(instances),
        },
        deployments: { get: async (name: string) => (name === "d" ? { manifest: { manifest } } : undefined) },
      },
    } as unknown as DirectorContext;
    clusters = new ClusterService(ctx, ADMIN, {} as HeartbeatBook);
    app = createApi({});
    mountLeaseApi(
      app,
      () => leases,
      (t, key, intent) => clusters.authorize(t, key, intent),
    );
    app.post("/v1/clusters/initialized", async (req) =>
      clusters.markInitialized(String(req.headers.authorization).slice(7), (req.body as { key: string }).key),
    );
  });
  after(async () => {
    await app.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const call = async (token: string, url: string, body?: unknown) => {
    const res = await app.inject({
      method: body === undefined ? "GET" : "POST",
      url,
      headers: { authorization: `Bearer ${token}` },
      ...(body === undefined ? {} : { payload: body as object }),
    });
    return { status: res.statusCode, body: res.json() as Record<string, unknown> };
  };
  const me0 = JSON.stringify({ member: "m0", vmId: "vm-pg0", address: "127.9.0.1", port: 5432 });

  it("makes the calling VM the holder; a body naming another VM is refused", async () => {
    const other = await call(PG0, "/v1/leases/acquire", {
      key: "d/pg/leader",
      holder: "vm-pg1",
      ttlMs: 5000,
      value: me0,
    });
    assert.equal(other.status, 403);
    assert.match(String(other.body.message), /holder: expected vm-pg0/);
    assert.equal(await leases.read("d/pg/leader"), undefined, "nothing was taken");
    const mine = await call(PG0, "/v1/leases/acquire", { key: "d/pg/leader", ttlMs: 5000, value: me0 });
    assert.equal(mine.status, 200);
    assert.equal(mine.body.holder, "vm-pg0");
    assert.ok(Number(mine.body.token) > 0, "the holder is told its token");
  });

  it("refuses a value naming another address, VM or member, and a TTL over the cap", async () => {
    const lies = [
      { member: "m0", vmId: "vm-pg0", address: "127.66.0.1" },
      { member: "m0", vmId: "vm-pg1", address: "127.9.0.1" },
      { member: "m1", vmId: "vm-pg0", address: "127.9.0.1" },
    ];
    for (const lie of lies) {
      const r = await call(PG0, "/v1/leases/acquire", {
        key: "d/pg/members/m0",
        ttlMs: 5000,
        value: JSON.stringify(lie),
      });
      assert.equal(r.status, 403, JSON.stringify(lie));
      assert.match(String(r.body.message), /value\.(address|vmId|member): expected/);
    }
    const long = await call(PG0, "/v1/leases/acquire", {
      key: "d/pg/members/m0",
      ttlMs: AGENT_LEASE_TTL_MAX_MS + 1,
      value: me0,
    });
    assert.equal(long.status, 400);
    assert.match(String(long.body.message), /ttlMs: expected at most/);
    assert.equal(await leases.read("d/pg/members/m0"), undefined);
  });

  it("lets a member change only the leader lease and its own member key", async () => {
    for (const key of ["d/pg/members/m1", "d/pg/initialized", "d/pg/switchover", "d/pg/fenced/vm-pg1"]) {
      const r = await call(PG0, "/v1/leases/acquire", { key, ttlMs: 5000, value: "m0" });
      assert.equal(r.status, 401, key);
      assert.equal(await leases.read(key), undefined, key);
    }
    assert.equal((await call(PG0, "/v1/leases/list?prefix=d/pg/")).status, 200, "it reads its group's keys");
  });

  it("shows the fencing token to the holder only", async () => {
    const byHolder = await call(PG0, "/v1/leases/read?key=d/pg/leader");
    const byPeer = await call(PG1, "/v1/leases/read?key=d/pg/leader");
    assert.ok(Number(byHolder.body.token) > 0);
    assert.equal(byPeer.body.token, 0);
    assert.equal(byPeer.body.holder, "vm-pg0", "the holder and its value are visible");
    const listed = (await call(PG1, "/v1/leases/list?prefix=d/pg/")).body as unknown as Array<{
      token: number;
    }>;
    assert.ok(listed.length > 0 && listed.every((l) => l.token === 0));
  });

  it("keeps another group's VM (an app beside the cluster) out of its leases", async () => {
    for (const url of [
      "/v1/leases/read?key=d/pg/leader",
      "/v1/leases/list?prefix=d/pg/",
      "/v1/leases/list?prefix=d/",
    ])
      assert.equal((await call(APP_VM, url)).status, 401, url);
    const leader = (await leases.read("d/pg/leader"))!;
    for (const [route, body] of [
      ["acquire", { key: "d/pg/leader", ttlMs: 5000, value: "x" }],
      ["renew", { key: "d/pg/leader", token: leader.token }],
      ["release", { key: "d/pg/leader", token: leader.token }],
    ] as const)
      assert.equal((await call(APP_VM, `/v1/leases/${route}`, body)).status, 401, route);
    assert.deepEqual(await leases.read("d/pg/leader"), {
      ...leader,
      expiresAt: (await leases.read("d/pg/leader"))!.expiresAt,
    });
    await assert.rejects(clusters.fence(APP_VM, "d/pg", "vm-pg0"), /not a member of cluster d\/pg/);
    await assert.rejects(clusters.moveVip(APP_VM, "d/pg", leader.token), /not a member of cluster d\/pg/);
  });

  it("sets the init marker for the leader only, held by the control plane", async () => {
    const byReplica = await call(PG1, "/v1/clusters/initialized", { key: "d/pg" });
    assert.equal(byReplica.status, 409);
    assert.equal(await leases.read("d/pg/initialized"), undefined);
    assert.equal((await call(PG0, "/v1/clusters/initialized", { key: "d/pg" })).status, 200);
    const marker = (await leases.read("d/pg/initialized"))!;
    assert.equal(marker.holder, "control-plane", "no VM holds it: fencing a VM never breaks it");
    assert.equal(marker.value, "m0");
  });

  it("gives the control plane's token every key", async () => {
    assert.deepEqual(await clusters.authorize(ADMIN, "d/pg/leader", "write"), { access: "admin" });
    assert.equal((await call(ADMIN, "/v1/leases/read?key=d/pg/initialized")).status, 200);
  });

  it("gives the database passwords to the cluster's group only", () => {
    const extras = {
      secrets: { postgres_password: "s3cret", replication_password: "r3pl" },
      clusters: {},
    };
    const spec = (group: string) =>
      buildSpec({
        manifest,
        group: manifest.instance_groups.find((g) => g.name === group)!,
        instance: { id: `i-${group}`, index: 0 },
        diskId: null,
        links: {},
        extras,
      });
    assert.deepEqual(spec("web").secrets, {});
    assert.equal(spec("pg").secrets.postgres_password, "s3cret");
  });
});
