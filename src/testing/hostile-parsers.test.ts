/**
 * Hostile input against every file zonal reads from an operator or a platform:
 * manifests (every example), the director's cloud config, the local cloud's file,
 * the broker config, and the agent's spec. Each is a good file with one thing
 * broken, or anything at all: the parser either accepts it or throws InvalidInput
 * naming where — never another error.
 */
import assert from "node:assert/strict";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import fc from "fast-check";
import { parse, stringify } from "yaml";
import { parseSpec } from "../agent/spec.js";
import { loadCatalog } from "../broker/catalog.js";
import { repoPath } from "../cli/home.js";
import { parseCloudConfig as parseLocalCloud } from "../cloud/local/config.js";
import { parseCloudConfig } from "../manifest/cloud-config.js";
import { parseManifest } from "../manifest/manifest.js";
import { InvalidInput } from "../lib/errors.js";
import { fuzzSettings, hostileSuite, mutations, type Mutation, type Tally } from "./hostile.js";
import "../jobs/registry.js"; // every job type loaded: specs are checked against them

const example = (name: string) => parse(readFileSync(repoPath("examples", name), "utf8")) as unknown;
const cloudConfig = parseCloudConfig(example("cloud-config.yml"));

/** The first segment of a field path: `instance_groups` of `instance_groups[0].jobs`. */
const head = (field: string) => /^[^.[]*/.exec(field)![0];

/**
 * Runs `parse` on every mutation of `valid`: it returns, or throws InvalidInput whose
 * message names the broken field (its first segment; an added field by its name).
 */
function check(tally: Tally, valid: unknown, parse: (value: unknown) => unknown): void {
  fc.assert(
    fc.property(mutations(valid), (m: Mutation) => {
      tally.tried += 1;
      try {
        parse(m.value);
      } catch (err) {
        if (!(err instanceof InvalidInput)) {
          tally.failures += 1;
          throw err;
        }
        if (m.how === "whole") return;
        const named =
          m.how === "added"
            ? err.message.includes("zz_") || err.message.includes(head(m.field))
            : m.field === "" || err.message.includes(head(m.field));
        assert.ok(named, `${m.how} ${m.field}: the message names it:\n${err.message}`);
      }
    }),
    fuzzSettings(),
  );
}

describe("hostile files", () => {
  const { dir, tally } = hostileSuite("zonal-hostile-");

  const manifests = readdirSync(repoPath("examples")).filter((f) => {
    if (!f.endsWith(".yml")) return false;
    const doc = example(f) as { instance_groups?: unknown };
    return doc !== null && typeof doc === "object" && "instance_groups" in doc;
  });

  it("finds the example manifests", () => assert.ok(manifests.length >= 5, manifests.join(", ")));

  for (const file of manifests) {
    it(`manifest ${file}: accepted, or refused naming the field`, () =>
      check(tally(`manifest ${file}`), example(file), (v) => parseManifest(v, cloudConfig)));
  }

  it("the director's cloud config", () =>
    check(tally("cloud config"), example("cloud-config.yml"), (v) => parseCloudConfig(v)));

  it("the local cloud's file", () =>
    check(tally("local cloud file"), example("cloud.yml"), (v) => parseLocalCloud(v)));

  it("the agent's spec", () =>
    check(
      tally("agent spec"),
      {
        version: "3",
        instance: { deployment: "d", group: "web", index: 0, id: "i-1" },
        persistent_disk: { id: "disk-1" },
        jobs: [{ name: "web", type: "process", config: { command: "node -e 1" } }],
      },
      (v) => parseSpec(v),
    ));

  /** examples/broker.yml with its templates made absolute (the copy is written elsewhere). */
  const brokerExample = () => {
    const doc = example("broker.yml") as {
      services: Array<Record<string, unknown> & { plans: Array<{ id: string; template: string }> }>;
    };
    for (const svc of doc.services)
      for (const p of svc.plans) p.template = join(repoPath("examples"), p.template);
    return doc;
  };

  it("the broker config of one service (service, maintenance_info, plans)", () => {
    const { plans, maintenance_info, ...service } = brokerExample().services[0]!;
    const valid = { service, maintenance_info, plans };
    const path = join(dir, "broker.yml");
    writeFileSync(path, stringify(valid));
    assert.deepEqual(
      loadCatalog(path).services.map((s) => [s.name, s.plans.length]),
      [["postgresql", 4]],
    );
    check(tally("broker config"), valid, (v) => {
      writeFileSync(path, stringify(v));
      return loadCatalog(path);
    });
  });

  it("the broker config with several services (examples/broker.yml)", () => {
    const valid = brokerExample();
    const path = join(dir, "broker-services.yml");
    writeFileSync(path, stringify(valid));
    assert.deepEqual(
      loadCatalog(path).services.map((s) => [s.name, s.plans.length]),
      [
        ["postgresql", 4],
        ["mariadb", 2],
      ],
    );
    check(tally("broker config (services)"), valid, (v) => {
      writeFileSync(path, stringify(v));
      return loadCatalog(path);
    });
  });
});
