import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { InvalidInput } from "../../lib/errors.js";
import { repoPath } from "../../cli/home.js";
import { loadCloudConfig, parseCloudConfig } from "./config.js";

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof InvalidInput, String(err));
    return err.problems.map((p) => `${p.field}: ${p.problem}`);
  }
  assert.fail("expected InvalidInput");
}

describe("cloud file", () => {
  it("examples/cloud.yml has zones z1-z3 with two hosts each, one with ssd per zone", () => {
    const config = loadCloudConfig(repoPath("examples", "cloud.yml"));
    assert.deepEqual(
      config.zones.map((z) => z.name),
      ["z1", "z2", "z3"],
    );
    for (const zone of config.zones) {
      assert.equal(zone.hosts.length, 2);
      assert.equal(zone.hosts.filter((h) => h.attributes.ssd === true).length, 1);
    }
    assert.deepEqual(
      config.zones.map((z) => z.hosts[1]!.zoneOctet * 1000 + z.hosts[1]!.hostOctet),
      [1002, 2002, 3002],
      "zone N, host H: addresses 127.N.H.x",
    );
  });

  it("names every bad field and what was expected", () => {
    const problems = problemsOf(() =>
      parseCloudConfig({
        agent_port: 70000,
        zones: [
          { name: "z1", hosts: [{ name: "h1", cpu: 0, ram_mb: 64 }] },
          { name: "z1", hosts: [{ name: "H 1", cpu: 2, ram_mb: 1024, colour: "red" }] },
        ],
      }),
    );
    const text = problems.join("\n");
    assert.match(text, /^agent_port: /m);
    assert.match(text, /^zones\[0\]\.hosts\[0\]\.cpu: expected a positive number of CPUs/m);
    assert.match(text, /^zones\[0\]\.hosts\[0\]\.ram_mb: expected at least 128 MiB/m);
    assert.match(text, /^zones\[1\]\.hosts\[0\]\.name: expected a lowercase name/m);
    assert.match(text, /^zones\[1\]\.hosts\[0\]: .*colour/m);
  });

  it("rejects duplicate zones and hosts, and addresses beyond 127.255", () => {
    const dup = problemsOf(() =>
      parseCloudConfig({
        zones: [
          {
            name: "z1",
            hosts: [
              { name: "h1", cpu: 1, ram_mb: 512 },
              { name: "h1", cpu: 1, ram_mb: 512 },
            ],
          },
          { name: "z1", hosts: [{ name: "h1", cpu: 1, ram_mb: 512 }] },
        ],
      }),
    );
    assert.ok(dup.includes('zones[1].name: duplicate zone "z1"'), dup.join("\n"));
    assert.ok(dup.includes('zones[0].hosts[1].name: duplicate host "h1" in zone z1'), dup.join("\n"));
    const overflow = problemsOf(() =>
      parseCloudConfig({
        address_base: 250,
        zones: ["a", "b", "c", "d", "e", "f"].map((name) => ({
          name,
          hosts: [{ name: "h1", cpu: 1, ram_mb: 512 }],
        })),
      }),
    );
    assert.match(overflow.join("\n"), /address_base: .* at most 255, got 256/);
  });

  it("says which file is unreadable or not YAML", () => {
    const dir = mkdtempSync(join(tmpdir(), "zonal-config-"));
    try {
      const bad = join(dir, "bad.yml");
      writeFileSync(bad, "zones: [\n");
      assert.throws(
        () => loadCloudConfig(bad),
        (e: unknown) => e instanceof InvalidInput && e.message.includes("not valid YAML"),
      );
      assert.throws(
        () => loadCloudConfig(join(dir, "missing.yml")),
        (e: unknown) => e instanceof InvalidInput && e.message.includes("cannot read cloud file"),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
