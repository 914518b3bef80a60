/** `zonal fault …`: break the local cloud the way real clouds break. */
import { Command } from "commander";
import { parseDuration } from "../../lib/duration.js";
import { addTargetCommand, cloudClient } from "../context.js";
import { print, printJson, table } from "../output.js";

export function faultCommand(): Command {
  const fault = new Command("fault").description(
    "inject faults into the local cloud: crash/freeze/thaw a VM, fail/restore a host or a zone",
  );
  addTargetCommand(
    fault,
    "crash <vm>",
    "kernel panic: SIGKILL every process of the VM; its disks stay attached",
    (c, vm) => c.crashVm(vm),
    "crashed",
  );
  addTargetCommand(
    fault,
    "freeze <vm>",
    "suspend the VM: silent, connections stay open, nothing answers",
    (c, vm) => c.freezeVm(vm),
    "frozen",
  );
  addTargetCommand(fault, "thaw <vm>", "resume a frozen VM", (c, vm) => c.thawVm(vm), "thawed");
  addTargetCommand(
    fault,
    "restore-host <zone/host>",
    "bring a failed host back; its VMs come back powered off",
    (c, host) => c.restoreHost(host),
    "restored (its VMs are powered off)",
  );
  addTargetCommand(
    fault,
    "restore-zone <zone>",
    "restore every host of a zone; their VMs come back powered off",
    (c, zone) => c.restoreZone(zone),
    "restored (its VMs are powered off)",
  );
  const powerOff = "--power-off-after <duration>";
  const powerOffHelp = "how long its VMs stay silent before losing power";
  fault
    .command("fail-host <zone/host>")
    .description("host failure: its VMs go silent, then lose power; no new VMs there")
    .option(powerOff, powerOffHelp, "2s")
    .action(async (host: string, o: { powerOffAfter: string }, cmd: Command) => {
      const powerOffAfterMs = parseDuration(o.powerOffAfter, "--power-off-after");
      await cloudClient(cmd).failHost(host, { powerOffAfterMs });
      print(`${host}: failed`);
    });
  fault
    .command("fail-zone <zone>")
    .description("fail every host of a zone")
    .option(powerOff, powerOffHelp, "2s")
    .action(async (zone: string, o: { powerOffAfter: string }, cmd: Command) => {
      const powerOffAfterMs = parseDuration(o.powerOffAfter, "--power-off-after");
      await cloudClient(cmd).failZone(zone, { powerOffAfterMs });
      print(`zone ${zone}: failed`);
    });
  fault
    .command("list")
    .description("faults in effect: frozen VMs and failed hosts")
    .option("--json", "print JSON")
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const report = await cloudClient(cmd).faults();
      if (o.json) return printJson(report);
      const rows = [
        ...report.frozenVms.map((vm) => ["vm", vm, "frozen", "-"]),
        ...report.failedHosts.map((h) => ["host", h.id, "failed", h.failedAt]),
      ];
      print(rows.length === 0 ? "no faults in effect" : table(["KIND", "TARGET", "FAULT", "SINCE"], rows));
    });
  return fault;
}
