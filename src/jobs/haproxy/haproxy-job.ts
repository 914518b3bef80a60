/**
 * Job type `haproxy`: Debian's HAProxy 2.6 in master-worker mode, in front of
 * linked groups. prepare renders the config for the backends the node knows (the
 * spec's links, or what its controller last heard from the control plane), so it
 * starts even while the control plane is away; the controller (manager.ts) keeps it
 * current with seamless reloads and, in a pair (two instances), decides which node
 * serves the VIP.
 */
import { writeFileSync } from "node:fs";
import { defineJobType } from "../job-type.js";
import { haproxyConfigSchema, type HaproxyConfig } from "./config.js";
import { HAPROXY, haproxyPaths, LbManager } from "./manager.js";

export const haproxyJob = defineJobType<HaproxyConfig, LbManager>({
  type: "haproxy",
  description: "HAProxy 2.6 in front of linked groups; two instances make an active/standby pair with a VIP",
  configSchema: haproxyConfigSchema,
  clustered: () => true,
  clusterSizes: [1, 2],

  controller: (ctx, config, handle) => new LbManager(ctx, config, handle),

  async prepare(ctx, _config, manager) {
    if (!manager) throw new Error("no controller for this haproxy job");
    const { text, version } = manager.render();
    writeFileSync(haproxyPaths(ctx).cfg, text);
    manager.runningVersion = version;
  },

  process(ctx) {
    const paths = haproxyPaths(ctx);
    return {
      command: HAPROXY,
      // -W master-worker (reload through the master socket), -db foreground: the agent supervises it.
      args: ["-W", "-db", "-S", paths.master, "-f", paths.cfg],
      cwd: ctx.jobDir,
      stopSignal: "SIGUSR1", // soft stop: workers finish their connections
    };
  },

  healthCheck(ctx, config) {
    return { kind: "tcp", host: ctx.address, port: config.frontends[0]!.port };
  },
});
