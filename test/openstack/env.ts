/**
 * The test OpenStack a test runs against: the one `test/openstack/up.sh DIR` started,
 * found through `ZONAL_TEST_OPENSTACK` (= DIR; `npm run test:openstack` sets it).
 * Gives its credentials (DIR/clouds.yaml) and a driver settings file for it.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { loadOpenStackConfig, type OpenStackConfig } from "../../src/cloud/openstack/config.js";

export interface TestOpenStack {
  dir: string;
  env: Record<string, string>;
  /** A driver settings file (openstack.yml) pointing at it. */
  settingsFile: string;
  config: OpenStackConfig;
}

export function testOpenStack(): TestOpenStack {
  const dir = process.env.ZONAL_TEST_OPENSTACK;
  if (!dir || !existsSync(join(dir, "env")))
    throw new Error(
      "no test OpenStack: run `npm run test:openstack` (or start one with test/openstack/up.sh DIR and set ZONAL_TEST_OPENSTACK=DIR)",
    );
  const env: Record<string, string> = {};
  for (const line of readFileSync(join(dir, "env"), "utf8").split("\n")) {
    const m = /^export\s+([A-Z0-9_]+)=["']?(.*?)["']?$/.exec(line.trim());
    if (m) env[m[1]!] = m[2]!;
  }
  // Beside the test OpenStack's own files: it goes when that directory does.
  const settingsFile = join(dir, "openstack.yml");
  writeFileSync(
    settingsFile,
    stringify({
      cloud: "zonal-test",
      clouds_file: join(dir, "clouds.yaml"),
      image: env.ZONAL_OS_IMAGE_ID,
      network: env.ZONAL_OS_NETWORK_ID,
      floating_network: env.ZONAL_OS_FLOATING_NETWORK_ID,
      server_timeout_s: 120,
    }),
  );
  return { dir, env, settingsFile, config: loadOpenStackConfig(settingsFile, {}) };
}
