import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { InvalidInput } from "../../lib/errors.js";
import { loadOpenStackConfig } from "./config.js";

describe("OpenStack driver settings", () => {
  const dir = mkdtempSync(join(tmpdir(), "zonal-os-config-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  file(
    "clouds.yaml",
    [
      "clouds:",
      "  prod:",
      "    region_name: RegionTwo",
      "    auth:",
      "      auth_url: https://keystone.example:5000/v3",
      "      username: zonal",
      "      password: s3cret",
      "      project_name: platform",
      "      user_domain_name: Corp",
      "",
    ].join("\n"),
  );

  it("reads a clouds.yaml entry, with defaults for what the settings leave out", () => {
    const cfg = loadOpenStackConfig(
      file("a.yml", "cloud: prod\nclouds_file: clouds.yaml\nimage: zonal-agent\nnetwork: net\n"),
      {},
    );
    assert.deepEqual(cfg.credentials, {
      authUrl: "https://keystone.example:5000/v3",
      username: "zonal",
      password: "s3cret",
      projectName: "platform",
      userDomainName: "Corp",
      projectDomainName: "Default",
      region: "RegionTwo",
    });
    assert.equal(cfg.settings.agent_port, 6868);
    assert.equal(cfg.settings.server_group_policy, "soft-anti-affinity");
    assert.match(cfg.source, /clouds\.yaml \(cloud prod\)/);
  });

  it("takes OS_* variables when no cloud is named, and names each missing one", () => {
    const path = file("b.yml", "image: i\nnetwork: n\n");
    const cfg = loadOpenStackConfig(path, {
      OS_AUTH_URL: "http://k:5000/v3",
      OS_USERNAME: "u",
      OS_PASSWORD: "p",
      OS_PROJECT_NAME: "x",
      OS_REGION_NAME: "R1",
    });
    assert.equal(cfg.credentials.region, "R1");
    assert.equal(cfg.source, "OS_* environment variables");
    assert.throws(
      () => loadOpenStackConfig(path, { OS_AUTH_URL: "http://k:5000/v3" }),
      (err: unknown) =>
        err instanceof InvalidInput &&
        /OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME/.test(err.message) &&
        err.problems.length === 3,
    );
  });

  it("names every bad field of the settings, and an unknown cloud with the ones there are", () => {
    assert.throws(
      () => loadOpenStackConfig(file("c.yml", "image: x\nnetwrk: y\nagent_port: 70000\n"), {}),
      (err: unknown) => {
        assert.ok(err instanceof InvalidInput);
        assert.deepEqual(err.problems.map((p) => p.field).sort(), ["(root)", "agent_port", "network"]);
        return true;
      },
    );
    assert.throws(
      () =>
        loadOpenStackConfig(
          file("d.yml", "cloud: staging\nclouds_file: clouds.yaml\nimage: i\nnetwork: n\n"),
          {},
        ),
      /no cloud named staging \(has prod\)/,
    );
  });
});
