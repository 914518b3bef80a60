/**
 * The Neutron stub of the test OpenStack speaks Neutron's wire format: wrapped bodies,
 * 201/204, NeutronError bodies, list filters, port tags, floating IPs, and tokens checked
 * against Keystone when it is given one.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { EXT_NETWORK_ID, NETWORK_ID, type RunningStub, startNeutronStub } from "./neutron-stub.js";

type Json = Record<string, unknown>;

async function call(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  token = "t",
): Promise<{ status: number; body: Json }> {
  const res = await fetch(base + path, {
    method,
    headers: { "Content-Type": "application/json", "X-Auth-Token": token },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text === "" ? {} : (JSON.parse(text) as Json) };
}

describe("neutron stub", () => {
  let stub: RunningStub;
  const api = (method: string, path: string, body?: unknown) => call(stub.url, method, path, body);
  const port = async (body: Json) => {
    const r = await api("POST", "/v2.0/ports", { port: { network_id: NETWORK_ID, ...body } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body["port"] as Json;
  };
  before(async () => {
    stub = await startNeutronStub({ projectId: "p1" });
  });
  after(() => stub.close());

  it("creates ports with addresses from the loopback subnet, and refuses a taken one", async () => {
    const a = await port({ name: "a", device_owner: "compute:z1", tags: ["x"] });
    assert.deepEqual(a["fixed_ips"], [
      { subnet_id: stub.state.subnets.keys().next().value, ip_address: "127.77.0.10" },
    ]);
    assert.match(a["mac_address"] as string, /^fa:16:3e(:[0-9a-f]{2}){3}$/);
    assert.equal(a["status"], "DOWN");
    assert.equal(a["binding:vif_type"], "unbound");
    assert.equal(a["tenant_id"], "p1");
    assert.deepEqual(a["tags"], ["x"]);
    const b = await port({ fixed_ips: [{ ip_address: "127.77.0.200" }] });
    assert.equal((b["fixed_ips"] as Json[])[0]!["ip_address"], "127.77.0.200");
    const taken = await api("POST", "/v2.0/ports", {
      port: { network_id: NETWORK_ID, fixed_ips: [{ ip_address: "127.77.0.10" }] },
    });
    assert.equal(taken.status, 409);
    assert.equal((taken.body["NeutronError"] as Json)["type"], "IpAddressAlreadyAllocated");
    const noNet = await api("POST", "/v2.0/ports", { port: { network_id: "nope" } });
    assert.equal(noNet.status, 404);
    assert.deepEqual(Object.keys(noNet.body["NeutronError"] as Json).sort(), ["detail", "message", "type"]);
  });

  it("filters lists the way Neutron does", async () => {
    const a = await port({ name: "f1", device_id: "vm-1", tags: ["zonal", "g1"] });
    const b = await port({ name: "f2", device_id: "vm-2", tags: ["zonal"] });
    const ip = (p: Json) => (p["fixed_ips"] as Json[])[0]!["ip_address"] as string;
    const ids = async (query: string) =>
      ((await api("GET", `/v2.0/ports?${query}`)).body["ports"] as Json[]).map((p) => p["id"]).sort();
    assert.deepEqual(await ids("device_id=vm-1"), [a["id"]]);
    assert.deepEqual(await ids("name=f2"), [b["id"]]);
    assert.deepEqual(await ids("tags=zonal,g1"), [a["id"]]);
    assert.deepEqual(await ids("tags=zonal&name=f1&name=f2"), [a["id"], b["id"]].sort());
    assert.deepEqual(
      await ids(`fixed_ips=ip_address%3D${ip(a)}&fixed_ips=ip_address%3D${ip(b)}`),
      [a["id"], b["id"]].sort(),
    );
    assert.deepEqual(await ids(`id=${b["id"]}&network_id=${NETWORK_ID}`), [b["id"]]);
    const projected = await api("GET", `/v2.0/ports/${a["id"]}?fields=id&fields=name`);
    assert.deepEqual(projected.body, { port: { id: a["id"], name: "f1" } });
  });

  it("updates ports: binding, address pairs; read-only fields are refused", async () => {
    const p = await port({});
    const r = await api("PUT", `/v2.0/ports/${p["id"]}`, {
      port: {
        "binding:host_id": "c2",
        device_id: "vm-9",
        allowed_address_pairs: [{ ip_address: "127.77.9.9" }],
      },
    });
    assert.equal(r.status, 200);
    const updated = r.body["port"] as Json;
    assert.equal(updated["binding:vif_type"], "ovs");
    assert.equal(updated["status"], "ACTIVE");
    assert.deepEqual(updated["allowed_address_pairs"], [
      { ip_address: "127.77.9.9", mac_address: p["mac_address"] },
    ]);
    const unbound = await api("PUT", `/v2.0/ports/${p["id"]}`, {
      port: { "binding:host_id": null, device_id: "" },
    });
    assert.equal((unbound.body["port"] as Json)["binding:vif_type"], "unbound");
    for (const field of ["network_id", "tags"]) {
      const bad = await api("PUT", `/v2.0/ports/${p["id"]}`, { port: { [field]: "x" } });
      assert.equal(bad.status, 400, field);
    }
  });

  it("keeps port tags through the tags sub-resource", async () => {
    const p = await port({});
    const base = `/v2.0/ports/${p["id"]}/tags`;
    assert.deepEqual((await api("PUT", base, { tags: ["a", "b"] })).body, { tags: ["a", "b"] });
    assert.equal((await api("PUT", `${base}/c`)).status, 201);
    assert.deepEqual((await api("GET", base)).body, { tags: ["a", "b", "c"] });
    assert.equal((await api("DELETE", `${base}/a`)).status, 204);
    assert.equal((await api("GET", `${base}/a`)).status, 404);
    assert.equal((await api("GET", `${base}/b`)).status, 204);
    assert.equal((await api("DELETE", base)).status, 204);
    assert.deepEqual(((await api("GET", `/v2.0/ports/${p["id"]}`)).body["port"] as Json)["tags"], []);
  });

  it("deletes ports with 204, then answers 404 PortNotFound", async () => {
    const p = await port({});
    assert.equal((await api("DELETE", `/v2.0/ports/${p["id"]}`)).status, 204);
    const gone = await api("GET", `/v2.0/ports/${p["id"]}`);
    assert.equal(gone.status, 404);
    assert.deepEqual(gone.body, {
      NeutronError: { type: "PortNotFound", message: `Port ${p["id"]} could not be found.`, detail: "" },
    });
    assert.equal((await api("DELETE", `/v2.0/ports/${p["id"]}`)).status, 404);
  });

  it("allocates, moves and releases floating IPs", async () => {
    const p = await port({});
    const fixed = (p["fixed_ips"] as Json[])[0]!["ip_address"];
    const made = await api("POST", "/v2.0/floatingips", {
      floatingip: { floating_network_id: EXT_NETWORK_ID, port_id: p["id"] },
    });
    assert.equal(made.status, 201);
    const fip = made.body["floatingip"] as Json;
    assert.equal(fip["floating_ip_address"], "127.78.0.10");
    assert.equal(fip["fixed_ip_address"], fixed);
    assert.equal(fip["port_id"], p["id"]);
    const second = await api("POST", "/v2.0/floatingips", {
      floatingip: { floating_network_id: EXT_NETWORK_ID, port_id: p["id"] },
    });
    assert.equal(second.status, 409);
    const listed = await api("GET", `/v2.0/floatingips?port_id=${p["id"]}`);
    assert.deepEqual(
      (listed.body["floatingips"] as Json[]).map((f) => f["id"]),
      [fip["id"]],
    );
    const off = await api("PUT", `/v2.0/floatingips/${fip["id"]}`, { floatingip: { port_id: null } });
    assert.equal((off.body["floatingip"] as Json)["fixed_ip_address"], null);
    assert.equal((await api("DELETE", `/v2.0/floatingips/${fip["id"]}`)).status, 204);
    assert.equal((await api("GET", `/v2.0/floatingips/${fip["id"]}`)).status, 404);
    const internal = await api("POST", "/v2.0/floatingips", {
      floatingip: { floating_network_id: NETWORK_ID },
    });
    assert.equal(internal.status, 400);
  });

  it("answers what Nova asks at boot: extensions, networks, subnets, security groups, quotas", async () => {
    const ext = await api("GET", "/v2.0/extensions");
    const aliases = (ext.body["extensions"] as Json[]).map((e) => e["alias"]);
    for (const changesNova of ["binding-extended", "port-resource-request-groups", "dns-integration"]) {
      assert.ok(!aliases.includes(changesNova), changesNova);
    }
    assert.equal((await api("GET", "/v2.0/extensions/binding-extended")).status, 404);
    const nets = await api("GET", "/v2.0/networks?shared=True");
    assert.deepEqual(
      (nets.body["networks"] as Json[]).map((n) => n["name"]),
      ["zonal-test-net"],
    );
    const ext2 = await api("GET", "/v2.0/networks?router%3Aexternal=True");
    assert.deepEqual(
      (ext2.body["networks"] as Json[]).map((n) => n["id"]),
      [EXT_NETWORK_ID],
    );
    const sgs = await api("GET", "/v2.0/security-groups?tenant_id=p1&fields=id&fields=name");
    assert.deepEqual(Object.keys((sgs.body["security_groups"] as Json[])[0]!).sort(), ["id", "name"]);
    const quota = await api("GET", "/v2.0/quotas/p1");
    assert.equal((quota.body["quota"] as Json)["port"], -1);
  });
});

describe("neutron stub with Keystone", () => {
  let keystone: Server;
  let stub: RunningStub;
  before(async () => {
    keystone = createServer((req, res) => {
      const ok = req.url === "/v3/auth/tokens" && req.headers["x-subject-token"] === "good";
      res.writeHead(ok ? 200 : 404, { "Content-Type": "application/json" });
      res.end(
        JSON.stringify(
          ok ? { token: { project: { id: "p-from-token" }, expires_at: "2999-01-01T00:00:00Z" } } : {},
        ),
      );
    });
    await new Promise<void>((resolve) => keystone.listen(0, "127.0.0.1", resolve));
    const { port } = keystone.address() as AddressInfo;
    stub = await startNeutronStub({ keystone: `http://127.0.0.1:${port}`, projectId: "p1" });
  });
  after(async () => {
    await stub.close();
    keystone.close();
  });

  it("refuses unknown tokens with 401 and gives the token's project what it creates", async () => {
    assert.equal((await call(stub.url, "GET", "/v2.0/ports", undefined, "bad")).status, 401);
    const made = await call(stub.url, "POST", "/v2.0/ports", { port: { network_id: NETWORK_ID } }, "good");
    assert.equal(made.status, 201);
    assert.equal((made.body["port"] as Json)["project_id"], "p-from-token");
  });
});
