/**
 * `zonal demo`: the local cloud with one VM running a `process` job that answers on
 * the VM's own address, with a persistent disk. Prints what to try next.
 */
import { readFileSync } from "node:fs";
import { Command } from "commander";
import { parse as parseYaml } from "yaml";
import { AgentClient } from "../../agent/client.js";
import { LocalCloudClient } from "../../cloud/local/client.js";
import { waitFor } from "../../lib/sleep.js";
import { homeOf } from "../context.js";
import { cloudDataDir, repoPath } from "../home.js";
import { print } from "../output.js";
import { DEFAULT_CLOUD_LISTEN, startCloudInBackground } from "./cloud.js";

const DEMO = { demo: "hello" };

export function demoCommand(): Command {
  return new Command("demo")
    .description("start the local cloud and a VM serving HTTP on its own address")
    .option("--listen <host:port>", "local cloud API address", DEFAULT_CLOUD_LISTEN)
    .action(async (o: { listen: string }, cmd: Command) => {
      const dataDir = cloudDataDir(homeOf(cmd));
      const ep = await startCloudInBackground({
        configPath: repoPath("examples", "cloud.yml"),
        dataDir,
        listen: o.listen,
      });
      print(`local cloud: ${ep.url} (data in ${dataDir})`);
      const cloud = new LocalCloudClient(ep);

      for (const old of await cloud.listVms({ metadata: DEMO })) await cloud.deleteVm(old.id);
      let disk = (await cloud.listDisks({ metadata: DEMO }))[0];
      disk ??= await cloud.createDisk({ zone: "z1", sizeMb: 64, metadata: DEMO });
      const { vm, agentToken } = await cloud.createVm({
        zone: "z1",
        vmType: { cpu: 1, ramMb: 512 },
        metadata: DEMO,
      });
      print(`VM ${vm.id} on host ${vm.host}, address ${vm.address}`);
      await cloud.attachDisk(disk.id, vm.id);
      print(`disk ${disk.id} attached`);

      const agent = new AgentClient({ address: vm.address, port: vm.agentPort, token: agentToken });
      await waitFor(() => agent.info(), { timeoutMs: 20_000, what: `the agent of ${vm.id}` });
      const spec = parseYaml(readFileSync(repoPath("examples", "hello-vm.yml"), "utf8")) as Record<
        string,
        unknown
      >;
      await agent.apply({ ...spec, persistent_disk: { id: disk.id } });
      const state = await agent.start(30_000);
      if (state.jobsState !== "running") {
        throw new Error(`job did not start: ${JSON.stringify(state.jobs)}`);
      }
      const url = `http://${vm.address}:8080/`;
      const answer = await (await fetch(url)).text();
      print(`job "hello" is running: curl ${url}\n  -> ${answer.trim()}`);
      print(
        [
          "",
          "Try:",
          `  zonal cloud                         zones -> hosts -> VMs`,
          `  zonal vm state ${vm.id}       the agent's view of its jobs`,
          `  zonal vm logs ${vm.id} hello  the job's log (hooks included)`,
          `  zonal fault freeze ${vm.id}   silent: curl ${url} now hangs`,
          `  zonal fault thaw ${vm.id}`,
          `  zonal fault crash ${vm.id}    kernel panic; the disk stays attached`,
          `  zonal cloud detach-disk ${disk.id} --force`,
          `  zonal cloud stop --purge             delete every VM and disk, stop the cloud`,
        ].join("\n"),
      );
    });
}
