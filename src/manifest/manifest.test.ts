import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { repoPath } from "../cli/home.js";
import { InvalidInput } from "../lib/errors.js";
import { parseCloudConfig } from "./cloud-config.js";
import { diskSizeMb, maxInFlightOf, parseManifest } from "./manifest.js";

const cc = parseCloudConfig(parse(readFileSync(repoPath("examples", "cloud-config.yml"), "utf8")));
const example = (name: string) =>
  parse(readFileSync(repoPath("examples", name), "utf8")) as Record<string, unknown>;

function problems(doc: unknown): string[] {
  try {
    parseManifest(doc, cc);
  } catch (err) {
    assert.ok(err instanceof InvalidInput, String(err));
    return err.problems.map((p) => `${p.field}: ${p.problem}`);
  }
  return assert.fail("expected InvalidInput");
}

describe("manifest", () => {
  it("parses the examples with defaults filled in", () => {
    const web = parseManifest(example("web.yml"), cc);
    assert.equal(web.instance_groups[0]!.instances, 6);
    assert.equal(web.instance_groups[0]!.strategy, "resurrect");
    assert.equal(web.update.canary_watch_time, 1000, "durations become milliseconds");
    assert.equal(web.instance_groups[0]!.jobs[0]!.stop_timeout, 10_000);
    const ssd = parseManifest(example("ssd.yml"), cc);
    assert.equal(diskSizeMb(ssd.instance_groups[0]!, cc), 1024);
  });

  it("names each bad field of the document's shape", () => {
    const text = problems({
      name: "Web!",
      instance_groups: [
        { name: "web", instances: 1.5, zones: ["z1"], vm_type: "small", jobs: [], strategy: "pray" },
      ],
      update: { max_in_flight: "150%", canary_watch_time: "soon" },
    }).join("\n");
    assert.match(text, /^name: expected a name/m);
    assert.match(text, /^instance_groups\[0\]\.instances: expected an integer/m);
    assert.match(text, /^instance_groups\[0\]\.jobs: expected at least one job/m);
    assert.match(text, /^instance_groups\[0\]\.strategy: /m);
    assert.match(text, /^update\.max_in_flight: /m);
    assert.match(
      text,
      /^update\.canary_watch_time: expected a duration such as 500ms, 5s or 2m, got "soon"/m,
    );
  });

  it("names each broken reference: zones, vm_types, disk types, job types and properties, links", () => {
    const job = { name: "j", type: "process", properties: { command: "true" } };
    const text = problems({
      name: "web",
      instance_groups: [
        {
          name: "a",
          instances: 2,
          zones: ["z1", "z9"],
          vm_type: "huge",
          persistent_disk_type: "tiny",
          jobs: [job],
        },
        {
          name: "a",
          instances: 1,
          zones: ["z1"],
          vm_type: "small",
          jobs: [
            { name: "j", type: "process", properties: { command: "x", health_check: { http: { port: 0 } } } },
            { ...job, type: "nope" },
          ],
          links: { backends: { group: "missing" } },
        },
      ],
    }).join("\n");
    assert.match(
      text,
      /^instance_groups\[0\]\.zones\[1\]: unknown zone "z9" \(cloud config has: z1, z2, z3\)/m,
    );
    assert.match(text, /^instance_groups\[0\]\.vm_type: unknown vm_type "huge"/m);
    assert.match(text, /^instance_groups\[0\]\.persistent_disk_type: unknown disk type "tiny"/m);
    assert.match(text, /^instance_groups\[1\]\.name: duplicate group "a"/m);
    assert.match(text, /^instance_groups\[1\]\.jobs\[0\]\.properties\.health_check/m);
    assert.match(text, /^instance_groups\[1\]\.jobs\[1\]\.type: unknown job type "nope"/m);
    assert.match(
      text,
      /^instance_groups\[1\]\.links\.backends\.group: no group "missing" in this deployment/m,
    );
  });

  it("refuses relocation for a group with a disk, and a standby group without ports", () => {
    const job = { name: "j", type: "process", properties: { command: "true" } };
    const text = problems({
      name: "web",
      instance_groups: [
        {
          name: "a",
          instances: 1,
          zones: ["z1"],
          vm_type: "small",
          persistent_disk: 512,
          relocate: true,
          jobs: [job],
        },
        { name: "b", instances: 1, zones: ["z1"], vm_type: "small", strategy: "standby", jobs: [job] },
      ],
    }).join("\n");
    assert.match(
      text,
      /^instance_groups\[0\]\.relocate: only groups without a persistent disk can relocate/m,
    );
    assert.match(text, /^instance_groups\[1\]\.ports: a standby group needs the ports its jobs serve/m);
  });

  it("reads max_in_flight as a number or a share of the group", () => {
    const m = parseManifest({ ...example("web.yml"), update: { max_in_flight: "50%" } }, cc);
    assert.equal(maxInFlightOf(m.update, 6), 3);
    assert.equal(maxInFlightOf(m.update, 1), 1, "never below one");
    assert.equal(maxInFlightOf({ ...m.update, max_in_flight: 4 }, 6), 4);
  });
});
