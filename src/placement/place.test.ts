import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { place } from "./place.js";
import type { HostRequest, PlacementHost } from "./types.js";

const host = (id: string, o: Partial<PlacementHost> = {}): PlacementHost => ({
  id,
  zone: id.split("/")[0]!,
  up: true,
  attributes: {},
  capacity: { cpu: 16, ramMb: 16384 },
  used: { cpu: 0, ramMb: 0 },
  ...o,
});
const HOSTS = ["z1", "z2", "z3"].flatMap((z) => [
  host(`${z}/h1`, { attributes: { ssd: true } }),
  host(`${z}/h2`),
]);
const req = (key: string, zone: string, o: Partial<HostRequest["resources"]> = {}): HostRequest => ({
  key,
  group: key.split("/")[0]!,
  zone,
  resources: { cpu: 1, ramMb: 512, ...o },
});

describe("place", () => {
  it("puts two instances of a group in one zone on different hosts (anti-affinity)", () => {
    const r = place({ hosts: HOSTS, requests: [req("web/0", "z1"), req("web/3", "z1")] });
    assert.deepEqual(new Set(r.hosts.values()), new Set(["z1/h1", "z1/h2"]));
    assert.deepEqual(r.notes, []);
  });

  it("relaxes anti-affinity only when no other host fits, and says so", () => {
    const r = place({ hosts: HOSTS, requests: [req("web/0", "z2"), req("web/3", "z2"), req("web/6", "z2")] });
    assert.equal(r.hosts.size, 3);
    assert.deepEqual(r.notes, ["web/6: every fitting host in z2 already runs web; anti-affinity relaxed"]);
  });

  it("respects instances already running on hosts", () => {
    const r = place({
      hosts: HOSTS,
      requests: [req("web/3", "z1")],
      groupHosts: new Map([["web", new Map([["z1/h2", 1]])]]),
    });
    assert.equal(r.hosts.get("web/3"), "z1/h1");
  });

  it("puts a vm_type that needs ssd only on ssd hosts", () => {
    const requests = [0, 1, 2, 3, 4, 5].map((i) =>
      req(`cache/${i}`, ["z1", "z2", "z3"][i % 3]!, { hostAttributes: { ssd: true } }),
    );
    const r = place({ hosts: HOSTS, requests });
    assert.deepEqual([...r.hosts.values()].sort(), ["z1/h1", "z1/h1", "z2/h1", "z2/h1", "z3/h1", "z3/h1"]);
  });

  it("fails with one reason per host of the zone, counting what earlier requests reserved", () => {
    const hosts = [
      host("z2/h1"),
      host("z2/h2", { attributes: { ssd: true }, capacity: { cpu: 4, ramMb: 4608 } }),
    ];
    const ssd = { ramMb: 2048, hostAttributes: { ssd: true } };
    const r = place({
      hosts,
      requests: [req("db/0", "z2", ssd), req("db/1", "z2", ssd), req("db/2", "z2", ssd)],
    });
    assert.equal(r.hosts.get("db/0"), "z2/h2");
    assert.equal(r.hosts.get("db/1"), "z2/h2");
    assert.deepEqual(r.failures, [
      { key: "db/2", zone: "z2", reasons: ["z2/h1: lacks ssd", "z2/h2: 512 MiB RAM free, needs 2048"] },
    ]);
  });

  it("names failed hosts and zones without hosts", () => {
    const r = place({
      hosts: [host("z1/h1", { up: false })],
      requests: [req("web/0", "z1"), req("web/1", "z9")],
    });
    assert.deepEqual(
      r.failures.map((f) => f.reasons),
      [["z1/h1: host has failed"], ["zone z9 has no hosts"]],
    );
  });
});
