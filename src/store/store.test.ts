/** One suite, two databases: the store behaves the same on SQLite and on a real PostgreSQL 15. */
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { TestPostgres } from "../testing/postgres.js";
import { Store } from "./store.js";

function storeContract(
  name: string,
  open: () => Promise<{ store: Store; reopen: () => Promise<Store>; done: () => Promise<void> }>,
) {
  describe(`store on ${name}`, () => {
    let store: Store;
    let reopen: () => Promise<Store>;
    let done: () => Promise<void>;
    before(async () => {
      ({ store, reopen, done } = await open());
    });
    after(async () => {
      await store.close();
      await done();
    });

    it("migrates once: reopening keeps the data", async () => {
      await store.settings.set("director_id", "d-1");
      await store.settings.set("director_id", "d-2");
      const again = await reopen();
      assert.equal(await again.settings.get("director_id"), "d-2");
      await again.close();
    });

    it("saves, lists and deletes deployments", async () => {
      await store.deployments.save("web", { name: "web", v: 1 });
      await store.deployments.save("web", { name: "web", v: 2 });
      await store.deployments.save("db", { name: "db" });
      assert.deepEqual((await store.deployments.get("web"))?.manifest, { name: "web", v: 2 });
      assert.deepEqual(
        (await store.deployments.list()).map((d) => d.name),
        ["db", "web"],
      );
      await store.deployments.delete("db");
      assert.equal(await store.deployments.get("db"), undefined);
    });

    it("keeps instances unique per group and index, and round-trips every field", async () => {
      const base = {
        deployment: "web",
        group: "web",
        zone: "z1",
        state: "creating" as const,
        desired: "started" as const,
        vmId: null,
        host: null,
        address: null,
        agentPort: null,
        agentToken: null,
        vmResources: null,
        diskId: null,
        diskSizeMb: null,
        specHash: null,
        vip: null,
      };
      await store.instances.insert({ ...base, id: "i-0", index: 0 });
      await store.instances.insert({ ...base, id: "i-1", index: 1, zone: "z2" });
      await assert.rejects(store.instances.insert({ ...base, id: "i-dup", index: 1 }));
      await store.instances.update("i-1", {
        state: "running",
        vmId: "vm-1",
        host: "z2/h1",
        address: "127.2.1.1",
        agentPort: 6868,
        agentToken: "t".repeat(32),
        vmResources: { cpu: 1, ramMb: 512, hostAttributes: { ssd: true } },
        diskId: "disk-1",
        diskSizeMb: 1024,
        specHash: "abc",
      });
      const i1 = await store.instances.byVm("vm-1");
      assert.equal(i1?.id, "i-1");
      assert.equal(i1?.index, 1);
      assert.deepEqual(i1?.vmResources, { cpu: 1, ramMb: 512, hostAttributes: { ssd: true } });
      assert.equal(i1?.diskSizeMb, 1024);
      assert.deepEqual(
        (await store.instances.list("web")).map((i) => i.id),
        ["i-0", "i-1"],
      );
      await store.instances.delete("i-0");
      assert.equal(await store.instances.get("i-0"), undefined);
    });

    it("keeps agent tokens and secrets sealed, and finds an instance by its token", async () => {
      const token = "agent-token-" + "k".repeat(24);
      await store.instances.update("i-1", { agentToken: token });
      assert.equal((await store.instances.byToken(token))?.id, "i-1");
      assert.equal(await store.instances.byToken(token + "x"), undefined);
      assert.equal((await store.instances.get("i-1"))?.agentToken, token);
      const row = await store.db
        .selectFrom("instances")
        .selectAll()
        .where("id", "=", "i-1")
        .executeTakeFirst();
      assert.ok(!JSON.stringify(row).includes(token), "the row holds no token in plain text");
      await store.setSecret("secrets:web", '{"postgres_password":"pw-plain-123"}');
      assert.equal(await store.getSecret("secrets:web"), '{"postgres_password":"pw-plain-123"}');
      assert.ok(!(await store.settings.get("secrets:web"))!.includes("pw-plain-123"));
    });

    it("records tasks with progress and ordered events", async () => {
      const t = await store.tasks.create({
        deployment: "web",
        kind: "deploy",
        description: "deploy web",
        payload: { a: 1 },
      });
      assert.equal(t.state, "queued");
      await store.tasks.start(t.id, "director-1");
      await store.tasks.progress(t.id, 2, 6);
      const e1 = await store.tasks.addEvent({
        taskId: t.id,
        deployment: "web",
        instance: "web/0",
        level: "info",
        stage: "canary",
        message: "updating",
      });
      await store.tasks.addEvent({
        taskId: t.id,
        deployment: "web",
        instance: null,
        level: "error",
        stage: "done",
        message: "failed",
      });
      await store.tasks.finish(t.id, "failed", "canary web/0 failed");
      const got = await store.tasks.get(t.id);
      assert.deepEqual(
        [got?.state, got?.progress, got?.owner, got?.result],
        ["failed", { done: 2, total: 6 }, "director-1", "canary web/0 failed"],
      );
      assert.deepEqual(got?.payload, { a: 1 });
      const events = await store.tasks.events({ taskId: t.id });
      assert.deepEqual(
        events.map((e) => e.message),
        ["updating", "failed"],
      );
      assert.deepEqual(
        (await store.tasks.events({ taskId: t.id, afterId: e1.id })).map((e) => e.message),
        ["failed"],
      );
      assert.deepEqual(
        (await store.tasks.list({ states: ["failed"] })).map((x) => x.id),
        [t.id],
      );
    });

    it("gives a deployment lock to one task at a time", async () => {
      assert.deepEqual(await store.locks.acquire("deployment:web", 1), { acquired: true });
      assert.deepEqual(
        await store.locks.acquire("deployment:web", 1),
        { acquired: true },
        "re-entrant for its holder",
      );
      assert.deepEqual(await store.locks.acquire("deployment:web", 2), { acquired: false, holder: 1 });
      await store.locks.release("deployment:web", 2);
      assert.equal(await store.locks.holder("deployment:web"), 1, "only the holder releases");
      await store.locks.release("deployment:web", 1);
      assert.deepEqual(await store.locks.acquire("deployment:web", 2), { acquired: true });
    });
  });
}

storeContract("SQLite", async () => {
  const dir = mkdtempSync(join(tmpdir(), "zonal-store-"));
  return {
    store: await Store.open({ dataDir: dir }),
    reopen: () => Store.open({ dataDir: dir }),
    done: async () => rmSync(dir, { recursive: true, force: true }),
  };
});

storeContract("PostgreSQL 15", async () => {
  const server = await new TestPostgres().start();
  const keys = mkdtempSync(join(tmpdir(), "zonal-store-keys-")); // the secret key file only
  return {
    store: await Store.open({ dataDir: keys, databaseUrl: server.url }),
    reopen: () => Store.open({ dataDir: keys, databaseUrl: server.url }),
    done: async () => {
      await server.stop();
      rmSync(keys, { recursive: true, force: true });
    },
  };
});

describe("a copy of director.db alone", () => {
  it("yields no agent token and no password; the data dir's key opens them, another key does not", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zonal-store-copy-"));
    const stolen = mkdtempSync(join(tmpdir(), "zonal-store-stolen-"));
    try {
      const token = "vm-token-" + "z".repeat(30);
      const store = await Store.open({ dataDir: dir });
      await store.instances.insert({
        id: "i-0",
        deployment: "pg",
        group: "pg",
        index: 0,
        zone: "z1",
        state: "running",
        desired: "started",
        vmId: "vm-0",
        host: null,
        address: null,
        agentPort: 6868,
        agentToken: token,
        vmResources: null,
        diskId: null,
        diskSizeMb: null,
        specHash: null,
        vip: null,
      });
      await store.standbys.insert({ id: "s-0", deployment: "pg", group: "g", zone: "z1" });
      await store.standbys.update("s-0", { agentToken: token + "-standby" });
      await store.setSecret("secrets:pg", JSON.stringify({ postgres_password: "super-secret-pw" }));
      await store.close(); // checkpointed: director.db is the whole database
      copyFileSync(join(dir, "director.db"), join(stolen, "director.db"));
      const bytes = readFileSync(join(stolen, "director.db")).toString("latin1");
      for (const secret of [token, "super-secret-pw", "z".repeat(30)])
        assert.ok(!bytes.includes(secret), `the file holds ${secret.slice(0, 12)}… in plain text`);
      const copy = await Store.open({ dataDir: stolen }); // a new key: not the one that sealed them
      await assert.rejects(copy.instances.get("i-0"), /cannot be opened/);
      await assert.rejects(copy.getSecret("secrets:pg"), /cannot be opened/);
      assert.equal(
        await copy.instances.byToken(token),
        undefined,
        "without the key, the stored digest does not even confirm the token",
      );
      await copy.close();
      const again = await Store.open({ dataDir: dir });
      assert.equal((await again.instances.byToken(token))?.id, "i-0");
      assert.equal((await again.standbys.get("s-0"))?.agentToken, token + "-standby");
      await again.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
      rmSync(stolen, { recursive: true, force: true });
    }
  });

  it("seals what an earlier version stored in plain text when it opens", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zonal-store-legacy-"));
    try {
      const store = await Store.open({ dataDir: dir });
      await store.standbys.insert({ id: "s-0", deployment: "d", group: "g", zone: "z1" });
      await store.db.updateTable("standbys").set({ agent_token: "plain-old-token" }).execute();
      await store.settings.set("secrets:d", '{"postgres_password":"old-plain"}');
      await store.close();
      const again = await Store.open({ dataDir: dir });
      const raw = await again.db.selectFrom("standbys").select("agent_token").executeTakeFirst();
      assert.ok(raw?.agent_token?.startsWith("v1:"), "sealed on open");
      assert.equal((await again.standbys.get("s-0"))?.agentToken, "plain-old-token");
      assert.ok(
        (await again.settings.get("secrets:d"))!.startsWith("v1:"),
        "sealed on open, before any read",
      );
      assert.equal(await again.getSecret("secrets:d"), '{"postgres_password":"old-plain"}');
      await again.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
