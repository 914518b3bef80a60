/**
 * The local cloud as an operator drives it, through the real `zonal` command:
 * start the daemon, create a VM and a disk, apply a spec by hand, reach the job on
 * the VM's address, inject faults, and get clear errors (exit code 2 for bad input).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, it } from "node:test";
import { stringify } from "yaml";
import { CloudHarness } from "../../src/testing/cloud-harness.js";
import { HTTP_SERVER, nodeJob } from "../../src/testing/vms.js";
import { waitFor } from "../../src/lib/sleep.js";

const BIN = fileURLToPath(new URL("../../../bin/zonal.js", import.meta.url));

describe("zonal cloud / vm / fault", () => {
  const harness = new CloudHarness();
  const zonal = (...args: string[]) => {
    const r = spawnSync(process.execPath, [BIN, "--home", harness.home, ...args], {
      encoding: "utf8",
      timeout: 60_000,
    });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };
  const json = <T>(...args: string[]): T => {
    const r = zonal(...args, "--json");
    assert.equal(r.code, 0, r.err);
    return JSON.parse(r.out) as T;
  };
  after(() => harness.teardown());

  it("starts the cloud, runs a hand-applied process job on a VM's address, and injects faults", async () => {
    const started = zonal("cloud", "start", "--config", harness.configPath, "--listen", "127.0.0.1:0");
    assert.equal(started.code, 0, started.err);
    assert.match(started.out, /local cloud listening on http:\/\/127\.0\.0\.1:\d+/);

    const tree = zonal("cloud");
    assert.equal(tree.code, 0, tree.err);
    assert.match(tree.out, /zone z1\n {2}host z1\/h1 \[up\] \{ssd=true\}/);

    const { vm } = json<{ vm: { id: string; address: string; host: string } }>(
      "cloud",
      "create-vm",
      "--zone",
      "z1",
      "--require",
      "ssd=true",
      "--metadata",
      "role=web",
    );
    assert.equal(vm.host, "z1/h1");
    const disk = json<{ id: string }>("cloud", "create-disk", "--zone", "z1", "--size-mb", "32");
    assert.equal(zonal("cloud", "attach-disk", disk.id, vm.id).code, 0);

    const specPath = join(harness.dir, "spec.yml");
    writeFileSync(
      specPath,
      stringify({ persistent_disk: { id: disk.id }, jobs: [nodeJob("web", HTTP_SERVER(8080), 8080)] }),
    );
    await waitFor(() => (zonal("vm", "state", vm.id).code === 0 ? true : undefined), {
      timeoutMs: 20_000,
      what: "the VM's agent",
    });
    const applied = zonal("vm", "apply", vm.id, specPath);
    assert.equal(applied.code, 0, applied.err);
    const start = zonal("vm", "start", vm.id);
    assert.equal(start.code, 0, start.err);
    assert.match(start.out, /web +process +running/);
    assert.equal(await (await fetch(`http://${vm.address}:8080/`)).text(), `hello from ${vm.id}`);
    assert.ok(json<string[]>("vm", "logs", vm.id, "web").some((l) => l.includes("healthy: TCP connect")));

    const vms = json<Array<{ id: string; state: string }>>("cloud", "vms", "--metadata", "role=web");
    assert.deepEqual(
      vms.map((v) => [v.id, v.state]),
      [[vm.id, "running"]],
    );

    assert.equal(zonal("fault", "freeze", vm.id).code, 0);
    assert.deepEqual(json<{ frozenVms: string[] }>("fault", "list").frozenVms, [vm.id]);
    assert.equal(zonal("fault", "thaw", vm.id).code, 0);
    assert.equal(zonal("fault", "crash", vm.id).code, 0);
    const stuck = zonal("cloud", "detach-disk", disk.id);
    assert.equal(stuck.code, 1);
    assert.match(stuck.err, /stays attached: VM .* is crashed/);
    assert.equal(zonal("cloud", "detach-disk", disk.id, "--force").code, 0);

    assert.equal(zonal("fault", "fail-host", "z1/h2", "--power-off-after", "0s").code, 0);
    const failed = zonal(
      "cloud",
      "create-vm",
      "--zone",
      "z1",
      "--host-hint",
      "z1/h2",
      "--require",
      "ssd=false",
    );
    assert.equal(failed.code, 1);
    assert.match(failed.err, /z1\/h1: ssd is true, needs false; z1\/h2: host has failed/);
    assert.equal(zonal("fault", "restore-host", "z1/h2").code, 0);

    const stopped = zonal("cloud", "stop", "--purge");
    assert.equal(stopped.code, 0, stopped.err);
    assert.match(stopped.out, /deleted 1 VMs and 1 disks; local cloud \(pid \d+\) stopped/);
  });

  it("names the bad flag or field and exits 2, changing nothing", () => {
    const cases: Array<[string[], RegExp]> = [
      [
        ["cloud", "create-vm", "--zone", "z1", "--cpu", "two"],
        /--cpu: expected a positive integer, got "two"/,
      ],
      [
        ["cloud", "create-vm", "--zone", "z1", "--metadata", "novalue"],
        /--metadata: expected KEY=VALUE, got "novalue"/,
      ],
      [
        ["fault", "fail-host", "z1/h1", "--power-off-after", "soon"],
        /--power-off-after: expected a duration/,
      ],
      [["cloud", "nosuch"], /unknown command "cloud nosuch"/],
      [
        ["cloud", "serve", "--config", harness.configPath, "--listen", "nowhere"],
        /--listen: expected HOST:PORT/,
      ],
    ];
    for (const [args, message] of cases) {
      const r = zonal(...args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.err}`);
      assert.match(r.err, message);
    }
  });
});
