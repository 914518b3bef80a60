/** The agent's API in-process (Fastify inject): auth, spec validation, apply/start/state/logs/stop. */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { silentLogger } from "../lib/log.js";
import { claimAddressBlock } from "../testing/addresses.js";
import { Agent } from "./agent.js";
import { buildAgentApi } from "./api.js";

const dir = mkdtempSync(join(tmpdir(), "zonal-agent-api-"));
const block = claimAddressBlock();
const token = "a".repeat(32);
const address = `127.${block.base}.8.8`;
const agent = new Agent(
  {
    vmId: "vm-test",
    address,
    agentPort: 6868,
    token,
    disksDir: join(dir, "disks"),
    ephemeralDir: join(dir, "ephemeral"),
    env: {},
  },
  silentLogger,
);
const app = buildAgentApi(agent);
const auth = { authorization: `Bearer ${token}` };
const web = {
  name: "web",
  type: "process",
  config: {
    command: [
      process.execPath,
      "-e",
      `require("http").createServer((q, s) => s.end("hi")).listen(7101, "${address}")`,
    ],
    health_check: { http: { port: 7101 } },
  },
  hooks: { pre_start: "echo getting ready" },
};

describe("agent API", () => {
  after(async () => {
    await agent.shutdown();
    await app.close();
    rmSync(dir, { recursive: true, force: true });
    block.release();
  });

  it("needs the VM's token", async () => {
    assert.equal((await app.inject({ method: "GET", url: "/v1/state" })).statusCode, 401);
    assert.equal(
      (await app.inject({ method: "GET", url: "/v1/state", headers: { authorization: "Bearer x" } }))
        .statusCode,
      401,
    );
    assert.equal((await app.inject({ method: "GET", url: "/v1/state", headers: auth })).statusCode, 200);
  });

  it("refuses a bad spec with 400 naming the fields, and keeps the old one", async () => {
    const res = await app.inject({
      method: "PUT",
      url: "/v1/spec",
      headers: auth,
      payload: { jobs: [{ name: "web", type: "process", config: { health_check: { tcp: { port: "x" } } } }] },
    });
    assert.equal(res.statusCode, 400);
    const fields = (res.json() as { problems: { field: string }[] }).problems.map((p) => p.field);
    assert.ok(fields.includes("jobs[0].config.command"), fields.join());
    assert.equal(agent.spec(), undefined);
  });

  it("refuses a spec whose persistent disk is not attached (409)", async () => {
    const res = await app.inject({
      method: "PUT",
      url: "/v1/spec",
      headers: auth,
      payload: { persistent_disk: { id: "disk-missing" }, jobs: [] },
    });
    assert.equal(res.statusCode, 409);
    assert.match(res.json().message, /disk-missing is not attached/);
  });

  it("applies a spec, starts the jobs, reports state and logs, and stops them", async () => {
    mkdirSync(join(dir, "disks", "disk-1"), { recursive: true });
    const applied = await app.inject({
      method: "PUT",
      url: "/v1/spec",
      headers: auth,
      payload: { version: "7", persistent_disk: { id: "disk-1" }, jobs: [web] },
    });
    assert.equal(applied.statusCode, 200, applied.body);
    assert.equal(applied.json().state.jobs[0].state, "stopped", "apply does not start jobs");
    const started = await app.inject({ method: "POST", url: "/v1/start?wait_ms=20000", headers: auth });
    assert.equal(started.json().jobsState, "running");
    const state = (await app.inject({ method: "GET", url: "/v1/state", headers: auth })).json();
    assert.equal(state.specVersion, "7");
    assert.equal(state.disk.persistent.id, "disk-1");
    assert.ok(state.disk.persistent.totalBytes > 0);
    const logs = (
      await app.inject({ method: "GET", url: "/v1/jobs/web/logs?lines=20", headers: auth })
    ).json();
    assert.ok(logs.lines.includes("getting ready"), logs.lines.join("\n"));
    assert.equal(
      (await app.inject({ method: "GET", url: "/v1/jobs/nope/logs", headers: auth })).statusCode,
      404,
    );
    assert.equal(
      (await app.inject({ method: "GET", url: "/v1/jobs/web/logs?lines=-1", headers: auth })).statusCode,
      400,
    );
    const stopped = (await app.inject({ method: "POST", url: "/v1/stop", headers: auth })).json();
    assert.equal(stopped.jobsState, "stopped");
  });
});
