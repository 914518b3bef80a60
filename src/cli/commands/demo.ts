/**
 * `zonal demo`: zonal on the embedded local cloud, with something deployed.
 * Starts the local cloud and the control plane in the background (like
 * `zonal up --detach`), deploys examples/web.yml (six web servers over three
 * zones), shows where they answer, and prints what to try next.
 */
import { Command } from "commander";
import { DirectorClient } from "../../director/client.js";
import { homeOf } from "../context.js";
import { followTask } from "../follow.js";
import { cloudDataDir, repoPath } from "../home.js";
import { print, table } from "../output.js";
import { DEFAULT_CLOUD_LISTEN, startCloudInBackground } from "./cloud.js";
import {
  DEFAULT_DIRECTOR_LISTEN,
  ensureCloudConfig,
  readYamlFile,
  startControlPlaneInBackground,
} from "./control-plane.js";

export function demoCommand(): Command {
  return new Command("demo")
    .description("start zonal on the local cloud and deploy examples/web.yml (6 web servers over 3 zones)")
    .option("--cloud-listen <host:port>", "local cloud API address", DEFAULT_CLOUD_LISTEN)
    .option("--listen <host:port>", "director API address", DEFAULT_DIRECTOR_LISTEN)
    .action(async (o: { cloudListen: string; listen: string }, cmd: Command) => {
      const home = homeOf(cmd);
      const cloud = await startCloudInBackground({
        configPath: repoPath("examples", "cloud.yml"),
        dataDir: cloudDataDir(home),
        listen: o.cloudListen,
      });
      print(`local cloud:   ${cloud.url}  (zones z1 z2 z3, two hosts each; examples/cloud.yml)`);
      const ep = await startControlPlaneInBackground(home, o.listen);
      print(`control plane: ${ep.url}  (director API; data in ${home})`);
      const director = new DirectorClient(ep);
      print(await ensureCloudConfig(director, undefined));

      print("\n$ zonal deploy examples/web.yml");
      const task = await director.deploy(readYamlFile(repoPath("examples", "web.yml"), "manifest"));
      const done = await followTask(director, task.id);
      print(`task ${done.id} ${done.state}: ${done.result ?? ""}`);
      if (done.state !== "done") {
        process.exitCode = 1;
        return;
      }
      const instances = await director.instances("web");
      print("\n$ zonal instances -d web");
      print(
        table(
          ["INSTANCE", "ZONE", "HOST", "ADDRESS", "STATE"],
          instances.map((i) => [
            `${i.group}/${i.index}`,
            i.zone,
            i.host ?? undefined,
            i.address ?? undefined,
            i.state,
          ]),
        ),
      );
      const first = instances[0]!;
      const url = `http://${first.address}:8080/`;
      print(`\n$ curl ${url}\n${(await (await fetch(url)).text()).trimEnd()}`);
      print(
        [
          "",
          "Try next:",
          "  zonal cloud                              zones -> hosts -> VMs",
          "  zonal deploy examples/ssd.yml            a vm_type that needs ssd: only ssd hosts, with disks",
          "  (edit GREETING in examples/web.yml)      zonal deploy examples/web.yml: canary, then batches, zone by zone",
          `  zonal logs -d web web/0                  the job's log from its agent`,
          `  zonal fault crash ${first.vmId}         then "zonal deploy examples/web.yml" rebuilds it`,
          "  zonal recreate -d web web/1              a new VM under the update policy",
          "  zonal tasks / zonal task 1 / zonal events",
          "  zonal down --purge                       delete everything and stop",
        ].join("\n"),
      );
    });
}
