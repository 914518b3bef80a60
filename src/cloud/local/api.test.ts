/** The local cloud API's answers to bad requests: 401, 400 naming the field, 404; nothing changes. */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { buildCloudApi } from "./api.js";
import { parseCloudConfig } from "./config.js";
import { LocalCloudService } from "./service.js";

const dir = mkdtempSync(join(tmpdir(), "zonal-cloud-api-"));
const config = parseCloudConfig({
  address_base: 200,
  zones: [{ name: "z1", hosts: [{ name: "h1", cpu: 2, ram_mb: 1024 }] }],
});
const service = new LocalCloudService({ config, dataDir: dir });
const app = buildCloudApi(service, "t".repeat(32));
const auth = { authorization: `Bearer ${"t".repeat(32)}` };

describe("local cloud API input handling", () => {
  after(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("requires the bearer token, except for /v1/health", async () => {
    assert.equal((await app.inject({ method: "GET", url: "/v1/zones" })).statusCode, 401);
    assert.equal(
      (await app.inject({ method: "GET", url: "/v1/zones", headers: { authorization: "Bearer wrong" } }))
        .statusCode,
      401,
    );
    assert.equal((await app.inject({ method: "GET", url: "/v1/health" })).statusCode, 200);
  });

  it("answers a bad VM request with 400 naming each field, and creates nothing", async () => {
    const res = await app.inject({
      method: "POST",
      url: "/v1/vms",
      headers: auth,
      payload: {
        zone: "z1",
        vmType: { cpu: "two", ramMb: -5 },
        agent: { heartbeat: { url: "not a url" } },
        extra: 1,
      },
    });
    assert.equal(res.statusCode, 400);
    const body = res.json() as { error: string; problems: { field: string; problem: string }[] };
    assert.equal(body.error, "invalid_input");
    const fields = body.problems.map((p) => p.field).sort();
    assert.deepEqual(fields, ["(root)", "agent.heartbeat.url", "vmType.cpu", "vmType.ramMb"]);
    assert.deepEqual(await service.listVms(), []);
  });

  it("answers bad JSON, unknown zones, unknown resources and bad disk bodies", async () => {
    const badJson = await app.inject({
      method: "POST",
      url: "/v1/disks",
      headers: { ...auth, "content-type": "application/json" },
      payload: "{not json",
    });
    assert.equal(badJson.statusCode, 400);
    const zone = await app.inject({
      method: "POST",
      url: "/v1/disks",
      headers: auth,
      payload: { zone: "z9", sizeMb: 10 },
    });
    assert.equal(zone.statusCode, 400);
    assert.match(zone.json().message, /zone: unknown zone "z9" \(known: z1\)/);
    const size = await app.inject({
      method: "POST",
      url: "/v1/disks",
      headers: auth,
      payload: { zone: "z1", sizeMb: 0 },
    });
    assert.equal(size.statusCode, 400);
    assert.match(size.json().message, /sizeMb: expected a positive size in MiB/);
    assert.equal(
      (await app.inject({ method: "GET", url: "/v1/vms/vm-nope", headers: auth })).statusCode,
      404,
    );
    for (const lines of ["0", "abc", "1001"]) {
      const console = await app.inject({
        method: "GET",
        url: `/v1/vms/vm-nope/console?lines=${lines}`,
        headers: auth,
      });
      assert.equal(console.statusCode, 400, `lines=${lines}`);
      assert.match(console.json().message, /^lines: expected a whole number from 1 to 1000/);
    }
    assert.equal(
      (await app.inject({ method: "GET", url: "/v1/vms/vm-nope/console?lines=5", headers: auth })).statusCode,
      404,
    );
    assert.equal(
      (await app.inject({ method: "PUT", url: "/v1/disks/disk-nope/attachment", headers: auth, payload: {} }))
        .statusCode,
      400,
    );
    assert.equal(
      (await app.inject({ method: "POST", url: "/v1/faults/hosts/z1/h9/fail", headers: auth, payload: {} }))
        .statusCode,
      404,
    );
    const badFault = await app.inject({
      method: "POST",
      url: "/v1/faults/hosts/z1/h1/fail",
      headers: auth,
      payload: { powerOffAfterMs: -1 },
    });
    assert.equal(badFault.statusCode, 400);
    assert.match(badFault.json().message, /powerOffAfterMs/);
    assert.deepEqual((await service.faults()).failedHosts, [], "a refused fault changes nothing");
    assert.deepEqual(await service.listDisks(), []);
  });

  it("finds no resource named after an Object property, and changes nothing asking", async () => {
    for (const id of ["__proto__", "constructor", "toString", "hasOwnProperty"]) {
      for (const [method, url] of [
        ["GET", `/v1/vms/${id}`],
        ["DELETE", `/v1/vms/${id}`],
        ["POST", `/v1/vms/${id}/power-off`],
        ["GET", `/v1/vms/${id}/agent`],
        ["GET", `/v1/disks/${id}`],
        ["DELETE", `/v1/disks/${id}`],
      ] as const) {
        const res = await app.inject({ method, url, headers: auth });
        // As for any id nobody made: 404, or a DELETE's idempotent 204.
        const unknown = await app.inject({ method, url: url.replace(id, "vm-nobody"), headers: auth });
        assert.equal(res.statusCode, unknown.statusCode, `${method} ${url}: ${res.body}`);
        assert.ok([404, 204].includes(res.statusCode), `${method} ${url}: ${res.statusCode}`);
      }
    }
    assert.deepEqual(await service.listVms(), []);
  });

  it("refuses a VM that does not fit with 409 and the host's reason", async () => {
    const res = await app.inject({
      method: "POST",
      url: "/v1/vms",
      headers: auth,
      payload: { zone: "z1", vmType: { cpu: 1, ramMb: 4096 } },
    });
    assert.equal(res.statusCode, 409);
    assert.equal(res.json().error, "no_valid_host");
    assert.match(res.json().message, /z1\/h1: 1024 MiB RAM free, needs 4096/);
  });
});
