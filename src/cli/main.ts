/** The `zonal` command. */
import { Command } from "commander";
import { runAgent } from "../agent/main.js";
import { cloudCommand } from "./commands/cloud.js";
import { clusterCommands, lbCommands } from "./commands/cluster.js";
import { serviceCommands } from "./commands/services.js";
import { upgradeServicesCommand } from "./commands/upgrade-services.js";
import { openstackCommand } from "./commands/openstack.js";
import { controlPlaneCommand, downCommand, statusCommand, upCommand } from "./commands/control-plane.js";
import { deploymentCommands } from "./commands/deployments.js";
import { maintenanceCommands } from "./commands/maintenance.js";
import { versionCommand } from "./commands/version.js";
import { ZONAL_VERSION } from "../lib/version.js";
import { healthCommand } from "./commands/health.js";
import { taskCommands } from "./commands/tasks.js";
import { demoCommand } from "./commands/demo.js";
import { faultCommand } from "./commands/fault.js";
import { vmCommand } from "./commands/vm.js";
import { reportError } from "./output.js";

const program = new Command("zonal")
  .description("keeps a platform's VMs and data services available across availability zones")
  .version(ZONAL_VERSION)
  .option("--home <dir>", "where zonal keeps its files (default: $ZONAL_HOME or ~/.zonal)")
  .showHelpAfterError("(run with --help for usage)");

program.addCommand(upCommand());
program.addCommand(downCommand());
program.addCommand(statusCommand());
for (const c of deploymentCommands()) program.addCommand(c);
for (const c of taskCommands()) program.addCommand(c);
program.addCommand(healthCommand());
program.addCommand(versionCommand());
for (const c of maintenanceCommands()) program.addCommand(c);
for (const c of clusterCommands()) program.addCommand(c);
for (const c of lbCommands()) program.addCommand(c);
for (const c of serviceCommands()) program.addCommand(c);
program.addCommand(upgradeServicesCommand());
program.addCommand(cloudCommand());
program.addCommand(faultCommand());
program.addCommand(vmCommand());
program.addCommand(demoCommand());
program.addCommand(controlPlaneCommand());
program.addCommand(openstackCommand());
program
  .command("agent")
  .description("run the agent (inside a VM; the cloud starts it)")
  .requiredOption("--vm-dir <dir>", "the VM's directory with settings.json")
  .option("--adopt <file>", "take over from the agent that wrote this handover (it starts the successor)")
  .action(async (o: { vmDir: string; adopt?: string }) => runAgent(o.vmDir, o.adopt));

try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.exitCode = reportError(err);
}
