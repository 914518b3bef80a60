/** `zonal health [override]`: what the health monitor sees and decides. */
import { Command } from "commander";
import { directorClient } from "../context.js";
import { print, printJson, table } from "../output.js";

interface HealthView {
  downZones: string[];
  meltdown: { all: boolean; deployments: string[] };
  overrides: { all: boolean; deployments: string[] };
  deployments: Array<{
    name: string;
    instances: number;
    healthy: number;
    unresponsive: number;
    recovering: number;
    waiting: number;
    meltdown: boolean;
    overridden: boolean;
  }>;
  instances: Array<{
    key: string;
    deployment: string;
    zone: string;
    health: string;
    verdict: string;
    decision?: string;
  }>;
}

export function healthCommand(): Command {
  const health = new Command("health")
    .description(
      "per deployment: healthy, unresponsive, recovering, meltdown; zones down; the monitor's verdicts",
    )
    .option("-d, --deployment <name>", "only this deployment")
    .option("--json", "print JSON")
    .action(async (o: { deployment?: string; json?: boolean }, cmd: Command) => {
      const client = directorClient(cmd);
      const h = await client.http.request<HealthView>("GET", "/v1/health/status", {
        query: { deployment: o.deployment },
      });
      if (o.json) return printJson(h);
      print(
        table(
          ["DEPLOYMENT", "INSTANCES", "HEALTHY", "UNRESPONSIVE", "RECOVERING", "WAITING", "MELTDOWN"],
          h.deployments.map((d) => [
            d.name,
            d.instances,
            d.healthy,
            d.unresponsive,
            d.recovering,
            d.waiting,
            d.meltdown ? (d.overridden ? "yes (overridden)" : "yes") : "no",
          ]),
        ),
      );
      print(`zones down: ${h.downZones.join(", ") || "none"}`);
      const sick = h.instances.filter((i) => i.health !== "healthy" || i.decision);
      if (sick.length > 0) {
        print("");
        print(
          table(
            ["INSTANCE", "DEPLOYMENT", "ZONE", "HEALTH", "DECISION", "WHY"],
            sick.map((i) => [i.key, i.deployment, i.zone, i.health, i.decision, i.verdict]),
          ),
        );
      }
    });
  health
    .command("override")
    .description(
      "let the monitor recover despite a meltdown (for one deployment, or all); --off puts the guard back",
    )
    .option("-d, --deployment <name>", "only this deployment")
    .option("--off", "put the guard back in force")
    .option("--json", "print JSON")
    .action(async (_o: unknown, cmd: Command) => {
      // -d and --json may be given before "override" too (they are also options of `zonal health`).
      const o = cmd.optsWithGlobals() as { deployment?: string; off?: boolean; json?: boolean };
      const client = directorClient(cmd);
      const overrides = await client.http.request<{ all: boolean; deployments: string[] }>(
        "PUT",
        "/v1/health/override",
        {
          body: { on: !o.off, ...(o.deployment ? { deployment: o.deployment } : {}) },
        },
      );
      if (o.json) return printJson(overrides);
      print(`meltdown guard ${o.off ? "in force" : "overridden"} for ${o.deployment ?? "all deployments"}`);
    });
  return health;
}
