/**
 * `zonal demo`: zonal on the embedded local cloud, with something deployed.
 * Starts the local cloud and the control plane in the background (like
 * `zonal up --detach`), deploys examples/web.yml (six web servers over three
 * zones) and examples/lb.yml (an HAProxy pair in front of them), shows where they
 * answer (the pair's VIP URL), and prints what to try next.
 */
import { Command } from "commander";
import { DirectorClient } from "../../director/client.js";
import type { LbView } from "../../director/lb-service.js";
import { waitFor } from "../../lib/sleep.js";
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
    .description(
      "start zonal on the local cloud and deploy examples/web.yml (6 web servers over 3 zones) behind examples/lb.yml (an HAProxy pair with a VIP)",
    )
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

      print("\n$ zonal deploy examples/lb.yml        # an HAProxy pair in front of web, one VIP");
      const lbTask = await director.deploy(readYamlFile(repoPath("examples", "lb.yml"), "manifest"));
      const lbDone = await followTask(director, lbTask.id);
      print(`task ${lbDone.id} ${lbDone.state}: ${lbDone.result ?? ""}`);
      if (lbDone.state !== "done") {
        process.exitCode = 1;
        return;
      }
      const pair = await waitFor(
        async () => {
          const [p] = await director.http.request<LbView[]>("GET", "/v1/deployments/lb/lb");
          return p?.vip && p.nodes.some((n) => n.role === "active") ? p : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 250, what: "the load-balancer pair to serve its VIP" },
      );
      const vipUrl = `http://${pair.vip}:8000/`;
      const answer = await waitFor(
        async () => {
          const r = await fetch(vipUrl, { signal: AbortSignal.timeout(1000) });
          return `${(await r.text()).trimEnd()}   (served by ${r.headers.get("x-zonal-lb") ?? "?"})`;
        },
        { timeoutMs: 15_000, intervalMs: 250, what: `${vipUrl} to answer` },
      );
      print(`\nthe load balancer's VIP: ${vipUrl}\n$ curl ${vipUrl}\n${answer}`);
      print(
        [
          "",
          "Try next:",
          "  zonal lb -d lb                           the pair: active, standby, config version, backends",
          "  zonal fault crash <active node's VM>     the standby takes the VIP in about a second",
          "  zonal create-service postgresql cluster orders --wait   then: zonal bind orders app --json",
          "  zonal cloud                              zones -> hosts -> VMs",
          "  zonal deploy examples/ssd.yml            a vm_type that needs ssd: only ssd hosts, with disks",
          "  (edit GREETING in examples/web.yml)      zonal deploy examples/web.yml: canary, then batches, zone by zone",
          `  zonal logs -d web web/0                  the job's log from its agent`,
          `  zonal fault crash ${first.vmId}         the health monitor rebuilds it in seconds; watch: zonal events -d web`,
          "  zonal recreate -d web web/1              a new VM under the update policy",
          "  zonal tasks / zonal task 1 / zonal events",
          "  zonal down --purge                       delete everything and stop",
        ].join("\n"),
      );
    });
}
