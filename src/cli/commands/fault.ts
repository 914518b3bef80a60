/** `zonal fault …`: break the local cloud the way real clouds break. */
import { Command } from "commander";
import { parseDuration } from "../../lib/duration.js";
import { cloudClient } from "../context.js";
import { print, printJson, table } from "../output.js";

export function faultCommand(): Command {
  const fault = new Command("fault").description(
    "inject faults into the local cloud: crash/freeze/thaw a VM, fail/restore a host or a zone",
  );
  fault
    .command("crash <vm>")
    .description("kernel panic: SIGKILL every process of the VM; its disks stay attached")
    .action(async (vm: string, _o: unknown, cmd: Command) => {
      await cloudClient(cmd).crashVm(vm);
      print(`${vm}: crashed`);
    });
  fault
    .command("freeze <vm>")
    .description("suspend the VM: silent, connections stay open, nothing answers")
    .action(async (vm: string, _o: unknown, cmd: Command) => {
      await cloudClient(cmd).freezeVm(vm);
      print(`${vm}: frozen`);
    });
  fault
    .command("thaw <vm>")
    .description("resume a frozen VM")
    .action(async (vm: string, _o: unknown, cmd: Command) => {
      await cloudClient(cmd).thawVm(vm);
      print(`${vm}: thawed`);
    });
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
    .command("restore-host <zone/host>")
    .description("bring a failed host back; its VMs come back powered off")
    .action(async (host: string, _o: unknown, cmd: Command) => {
      await cloudClient(cmd).restoreHost(host);
      print(`${host}: restored (its VMs are powered off)`);
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
    .command("restore-zone <zone>")
    .description("restore every host of a zone; their VMs come back powered off")
    .action(async (zone: string, _o: unknown, cmd: Command) => {
      await cloudClient(cmd).restoreZone(zone);
      print(`zone ${zone}: restored (its VMs are powered off)`);
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
