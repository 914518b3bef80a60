/** `zonal health [override|pause|resume]`: what the health monitor sees and decides, and the operator's switches. */
import { Command } from "commander";
import { directorClient } from "../context.js";
import { print, printJson, table } from "../output.js";

interface HealthView {
  downZones: string[];
  meltdown: { all: boolean; deployments: string[] };
  overrides: { all: boolean; deployments: string[] };
  paused: { all: boolean; deployments: string[] };
  deployments: Array<{
    name: string;
    instances: number;
    healthy: number;
    unresponsive: number;
    recovering: number;
    waiting: number;
    meltdown: boolean;
    overridden: boolean;
    paused: boolean;
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
          [
            "DEPLOYMENT",
            "INSTANCES",
            "HEALTHY",
            "UNRESPONSIVE",
            "RECOVERING",
            "WAITING",
            "MELTDOWN",
            "RECOVERY",
          ],
          h.deployments.map((d) => [
            d.name,
            d.instances,
            d.healthy,
            d.unresponsive,
            d.recovering,
            d.waiting,
            d.meltdown ? (d.overridden ? "yes (overridden)" : "yes") : "no",
            d.paused ? "paused" : "on",
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
  switchCommand(health, "override", "override", {
    description:
      "let the monitor recover despite a meltdown (for one deployment, or all); --off puts the guard back",
    off: "put the guard back in force",
    said: (on) => `meltdown guard ${on ? "overridden" : "in force"}`,
  });
  switchCommand(health, "pause", "pause", {
    description:
      "pause recovery (for one deployment, or all): the monitor watches and judges but rebuilds no VM (a VM that boots again still gets its jobs started), e.g. while an operator works on VMs by hand",
    said: () => "recovery paused",
  });
  switchCommand(health, "resume", "pause", {
    description: "resume recovery paused by `zonal health pause`",
    resume: true,
    said: () => "recovery resumed",
  });
  return health;
}

/** A subcommand that sets one of the monitor's switches (PUT /v1/health/<which>). */
function switchCommand(
  health: Command,
  name: string,
  which: "override" | "pause",
  o: { description: string; off?: string; resume?: boolean; said: (on: boolean) => string },
): void {
  const sub = health
    .command(name)
    .description(o.description)
    .option("-d, --deployment <name>", "only this deployment")
    .option("--json", "print JSON");
  if (o.off) sub.option("--off", o.off);
  sub.action(async (_o: unknown, cmd: Command) => {
    // -d and --json may be given before the subcommand too (they are also options of `zonal health`).
    const f = cmd.optsWithGlobals() as { deployment?: string; off?: boolean; json?: boolean };
    const on = !(f.off ?? o.resume ?? false);
    const client = directorClient(cmd);
    const now = await client.http.request<{ all: boolean; deployments: string[] }>(
      "PUT",
      `/v1/health/${which}`,
      { body: { on, ...(f.deployment ? { deployment: f.deployment } : {}) } },
    );
    if (f.json) return printJson(now);
    print(`${o.said(on)} for ${f.deployment ?? "all deployments"}`);
  });
}
