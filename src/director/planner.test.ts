import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { repoPath } from "../cli/home.js";
import type { PlacementHost } from "../placement/types.js";
import type { InstanceRecord } from "../store/instances.js";
import { parseCloudConfig } from "../manifest/cloud-config.js";
import { parseManifest, type Manifest } from "../manifest/manifest.js";
import { plan, type Observed, type PlanInput } from "./planner.js";
import { buildSpec } from "./spec-builder.js";

const cc = parseCloudConfig(parse(readFileSync(repoPath("examples", "cloud-config.yml"), "utf8")));
const web = parseManifest(parse(readFileSync(repoPath("examples", "web.yml"), "utf8")), cc);
const HOSTS: PlacementHost[] = ["z1", "z2", "z3"].flatMap((z) =>
  ["h1", "h2"].map((h) => ({
    id: `${z}/${h}`,
    zone: z,
    up: true,
    attributes: (h === "h1" ? { ssd: true } : {}) as PlacementHost["attributes"],
    capacity: { cpu: 16, ramMb: 32768 },
    used: { cpu: 0, ramMb: 0 },
  })),
);

let ids = 0;
function run(o: Partial<PlanInput> & { manifest?: Manifest }) {
  return plan({
    manifest: web,
    cloudConfig: cc,
    instances: [],
    observed: new Map(),
    hosts: HOSTS,
    known: o.instances ?? [],
    newId: () => `new-${ids++}`,
    ...o,
  });
}

/** Instances as a finished deploy of `m` leaves them: running, spec applied. */
function deployed(m: Manifest): { instances: InstanceRecord[]; observed: Map<string, Observed> } {
  const first = run({ manifest: m });
  const instances = first.steps.map((s, i): InstanceRecord => {
    const group = m.instance_groups.find((g) => g.name === s.group)!;
    const spec = buildSpec({
      manifest: m,
      group,
      instance: { id: s.instanceId, index: s.index },
      diskId: null,
      links: {},
    });
    return {
      id: s.instanceId,
      deployment: m.name,
      group: s.group,
      index: s.index,
      zone: s.zone,
      state: "running",
      desired: "started",
      vmId: `vm-${i}`,
      host: s.host!,
      address: `127.9.9.${i + 1}`,
      agentPort: 6868,
      agentToken: "t",
      vmResources: s.resources,
      diskId: null,
      diskSizeMb: null,
      specHash: spec.version,
      vip: null,
      createdAt: "",
      updatedAt: "",
    };
  });
  const observed = new Map<string, Observed>(
    instances.map((i) => [
      i.id,
      { vmState: "running", agent: { reachable: true, specVersion: i.specHash, jobsState: "running" } },
    ]),
  );
  return { instances, observed };
}

describe("planner", () => {
  it("creates a new group 2 per zone, on different hosts within each zone", () => {
    const p = run({});
    assert.deepEqual(p.errors, []);
    assert.deepEqual(
      p.steps.map((s) => s.action),
      Array(6).fill("create"),
    );
    const perZone = new Map<string, Set<string>>();
    for (const s of p.steps) perZone.set(s.zone, (perZone.get(s.zone) ?? new Set()).add(s.host!));
    assert.deepEqual(
      [...perZone.values()].map((hosts) => hosts.size),
      [2, 2, 2],
    );
  });

  it("finds nothing to do when everything runs the deployed spec", () => {
    const d = deployed(web);
    const p = run({ ...d, known: d.instances });
    assert.deepEqual(p.steps, []);
    assert.equal(p.unchanged.length, 6);
  });

  it("updates every instance when a job property changes", () => {
    const d = deployed(web);
    const changed = structuredClone(web);
    changed.instance_groups[0]!.jobs[0]!.properties.env = { GREETING: "howdy" };
    const p = run({ ...d, known: d.instances, manifest: changed });
    assert.deepEqual(
      new Set(p.steps.map((s) => `${s.action}: ${s.reasons.join()}`)),
      new Set(["update: spec changed"]),
    );
  });

  it("recreates on a vm_type change, a crashed VM, a silent agent, and on request", () => {
    const d = deployed(web);
    const [a, b, c] = d.instances;
    d.observed.set(b!.id, { vmState: "crashed", agent: { reachable: false } });
    d.observed.set(c!.id, { vmState: "running", agent: { reachable: false } });
    const p1 = run({ ...d, known: d.instances, recreate: new Set([a!.id]) });
    const reasons = new Map(p1.steps.map((s) => [s.instanceId, `${s.action}: ${s.reasons.join("; ")}`]));
    assert.equal(reasons.get(a!.id), "recreate: recreate requested");
    assert.equal(reasons.get(b!.id), "recreate: VM vm-1 is crashed");
    assert.equal(reasons.get(c!.id), "recreate: agent on vm-2 does not answer");
    assert.ok(
      p1.steps.every((s) => s.host),
      "recreated instances are placed again",
    );

    const bigger = structuredClone(web);
    bigger.instance_groups[0]!.vm_type = "medium";
    const p2 = run({ ...deployed(web), manifest: bigger });
    assert.ok(
      p2.steps.every(
        (s) =>
          s.action === "recreate" && /vm_type changed: 1 CPU\/512 MiB -> 2 CPU\/2048 MiB/.test(s.reasons[0]!),
      ),
    );
  });

  it("scales down from the fullest zone, and deletes groups that left the manifest", () => {
    const d = deployed(web);
    const fewer = structuredClone(web);
    fewer.instance_groups[0]!.instances = 4;
    const p = run({ ...d, known: d.instances, manifest: fewer });
    assert.deepEqual(
      p.steps.map((s) => `${s.action} ${s.key}`),
      ["delete web/4", "delete web/5"],
    );
    const none = { ...structuredClone(web), instance_groups: [] };
    const gone = run({ ...d, known: d.instances, manifest: none });
    assert.equal(gone.steps.filter((s) => s.action === "delete").length, 6);
    assert.match(gone.steps[0]!.reasons[0]!, /group web is no longer in the manifest/);
  });

  it("refuses what cannot be placed, with one reason per host", () => {
    const ssd = structuredClone(web);
    ssd.instance_groups[0]!.vm_type = "medium-ssd";
    ssd.instance_groups[0]!.instances = 30;
    const p = run({ manifest: ssd });
    assert.ok(p.errors.length > 0);
    assert.match(p.errors[0]!, /^web\/\d+ \(z\d\): z\d\/h1: 0 CPUs free, needs 2; z\d\/h2: lacks ssd$/);
  });

  it("refuses to shrink a persistent disk, to grow one that holds the only copy of its data, or to drop one", () => {
    const d = deployed(web);
    const withDisk = d.instances.map((i) => ({ ...i, diskId: `disk-${i.index}`, diskSizeMb: 1024 }));
    const sized = (mb: number) => {
      const m = structuredClone(web);
      m.instance_groups[0]!.persistent_disk = mb;
      return m;
    };
    const grown = run({ ...d, instances: withDisk, manifest: sized(2048) });
    assert.deepEqual(grown.steps, []);
    assert.match(
      grown.errors[0]!,
      /^instance_groups\.web\.persistent_disk: web\/0's disk has 1024 MiB, the manifest asks 2048; growing a disk that holds the only copy of its data needs the cloud to resize it in place/,
    );
    assert.match(
      run({ ...d, instances: withDisk, manifest: sized(512) }).errors[0]!,
      /web\/0's disk has 1024 MiB, the manifest asks 512; a disk is never shrunk \(its data may not fit\): ask for 1024 MiB or more/,
    );
    assert.match(run({ ...d, instances: withDisk }).errors[0]!, /removing disks is not supported/);
  });

  it("grows a cluster member's disk as a new disk its peers fill, each member recreated", () => {
    const pg = parseManifest(parse(readFileSync(repoPath("examples", "postgres-cluster.yml"), "utf8")), cc);
    const d = deployed(pg);
    const withDisk = d.instances.map((i) => ({ ...i, diskId: `disk-${i.index}`, diskSizeMb: 1024 }));
    const bigger = structuredClone(pg);
    delete bigger.instance_groups[0]!.persistent_disk_type;
    bigger.instance_groups[0]!.persistent_disk = 4096;
    const p = run({ ...d, instances: withDisk, manifest: bigger });
    assert.deepEqual(p.errors, []);
    assert.deepEqual(
      p.steps.map((s) => [s.key, s.action, s.newDisk, s.diskSizeMb]),
      withDisk.map((i) => [`${i.group}/${i.index}`, "recreate", true, 4096]),
    );
    for (const s of p.steps)
      assert.deepEqual(s.reasons, [
        "grow its persistent disk from 1024 to 4096 MiB: a new disk, filled by the cluster",
      ]);
    // Grown from one member in the same deploy: the new members hold nothing yet.
    const one = withDisk.filter((i) => i.index === 0);
    const grown = run({ ...d, instances: one, known: one, manifest: bigger });
    assert.match(
      grown.errors.join("\n"),
      /postgres\/0's disk has 1024 MiB, the manifest asks 4096; growing a disk that holds the only copy/,
    );
  });

  it("moves what runs on a host in maintenance to another host of its zone, and places nothing there", () => {
    const { instances, observed } = deployed(web);
    const drained = instances[0]!.host!;
    const hosts = HOSTS.map((h) => (h.id === drained ? { ...h, maintenance: "kernel update" } : h));
    const p = run({
      instances,
      observed,
      hosts,
      maintenance: { hosts: new Map([[drained, "kernel update"]]), zones: new Map() },
    });
    assert.deepEqual(p.errors, []);
    const moved = p.steps.filter((s) => s.action === "recreate");
    assert.deepEqual(
      moved.map((s) => s.key).sort(),
      instances
        .filter((i) => i.host === drained)
        .map((i) => `${i.group}/${i.index}`)
        .sort(),
    );
    for (const s of moved) {
      assert.notEqual(s.host, drained);
      assert.equal(s.zone, drained.split("/")[0]);
      assert.match(s.reasons.join("; "), /is in maintenance \(kernel update\): moves off it/);
    }
  });

  it("moves a zone's instances to the group's other zones; refuses a group that would lose its last zone", () => {
    const { instances, observed } = deployed(web);
    const z3 = { hosts: new Map<string, string>(), zones: new Map([["z3", "power work"]]) };
    const hosts = HOSTS.map((h) => (h.zone === "z3" ? { ...h, maintenance: "zone z3: power work" } : h));
    const p = run({ instances, observed, hosts, maintenance: z3 });
    assert.deepEqual(p.errors, []);
    const moved = p.steps.filter((s) => s.action === "recreate");
    assert.equal(moved.length, 2);
    for (const s of moved) {
      assert.notEqual(s.zone, "z3");
      assert.match(s.reasons[0]!, /zone z3 is in maintenance \(power work\): moves to z[12]/);
    }
    const onlyZ3 = { ...web, instance_groups: [{ ...web.instance_groups[0]!, zones: ["z3"], instances: 1 }] };
    const refused = run({ manifest: onlyZ3, hosts, maintenance: z3 });
    assert.match(
      refused.errors.join("\n"),
      /web: would lose its last zone: every zone it lists is in maintenance \(z3: power work\)/,
    );
  });
});
