/** `zonal version`: the CLI's, the control plane's and every agent's zonal version. */
import { Command } from "commander";
import { ZONAL_VERSION } from "../../lib/version.js";
import { directorClient } from "../context.js";
import { print, printJson, table } from "../output.js";

export function versionCommand(): Command {
  return new Command("version")
    .description("what zonal version the CLI, the control plane and each agent run")
    .option("--json", "print JSON")
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const v = await directorClient(cmd).versions();
      if (o.json) return printJson({ cli: ZONAL_VERSION, ...v });
      print(`cli            ${ZONAL_VERSION}`);
      print(`control plane  ${v.controlPlane}`);
      if (v.agents.length === 0) return print("no agents (no deployment has VMs)");
      const behind = v.agents.filter((a) => a.version !== v.controlPlane);
      print(
        table(
          ["DEPLOYMENT", "VM", "VM ID", "AGENT", "PID"],
          v.agents.map((a) => [
            a.deployment,
            a.vm,
            a.vmId ?? "-",
            a.version ?? `unreachable (${a.error})`,
            a.pid !== undefined ? String(a.pid) : "-",
          ]),
        ),
      );
      const behindIn = [...new Set(behind.map((a) => a.deployment))];
      print(
        behind.length === 0
          ? `every agent runs ${v.controlPlane}`
          : `${behind.length} of ${v.agents.length} agent(s) do not run ${v.controlPlane}; to hand them over (jobs keep running): ${behindIn.map((d) => `zonal upgrade-agents -d ${d}`).join("; ")}`,
      );
    });
}
