/** `zonal fault …`: break the local cloud the way real clouds break. */
import { Command } from "commander";
import { parseDuration } from "../../lib/duration.js";
import { InvalidInput } from "../../lib/errors.js";
import type { NetworkFault } from "../../cloud/local/network/faults.js";
import { addTargetCommand, cloudClient } from "../context.js";
import { print, printJson, table } from "../output.js";

export function faultCommand(): Command {
  const fault = new Command("fault")
    .description(
      "inject faults into the local cloud: crash/freeze/thaw a VM, fail/restore a host or a zone, " +
        "partition, isolate or slow down parts of its network",
    )
    .addHelpText(
      "after",
      `
Targets of network faults: a zone (z1), a host (z1/h1), a VM (vm-…), one service of a
VM (vm-…:5432) or control-plane. Packets are dropped, never refused: a cut-off peer
sees silence, as on a real network. Every network fault lasts until "zonal fault heal",
"zonal down" or a restart of the local cloud.`,
    );
  addTargetCommand(
    fault,
    "crash <vm>",
    "kernel panic: the VM answers nothing from now on (no resets), every process of it is killed; its disks stay attached",
    (c, vm) => c.crashVm(vm),
    "crashed",
  );
  addTargetCommand(
    fault,
    "kill-processes <vm>",
    "OOM or segfault inside a live VM: its processes die, its kernel answers with resets",
    (c, vm) => c.killVmProcesses(vm),
    "its processes were killed",
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
  const done = (f: NetworkFault & { description: string }, o: { json?: boolean }) =>
    o.json ? printJson(f) : print(`${f.id}: ${f.description} (heal with "zonal fault heal ${f.id}")`);
  fault
    .command("partition <a> <b>")
    .description("packets between A and B are dropped (both ways, or only from A to B)")
    .option("--one-way", "drop only the packets from A to B")
    .option("--json", "print JSON")
    .action(async (a: string, b: string, o: { oneWay?: boolean; json?: boolean }, cmd: Command) =>
      done(await cloudClient(cmd).addNetworkFault({ kind: "partition", a, b, oneWay: Boolean(o.oneWay) }), o),
    );
  fault
    .command("isolate <target>")
    .description(
      "cut the target off from every other zonal party (VMs, virtual addresses, the control plane); " +
        "clients outside zonal still reach it",
    )
    .option("--json", "print JSON")
    .action(async (target: string, o: { json?: boolean }, cmd: Command) =>
      done(await cloudClient(cmd).addNetworkFault({ kind: "isolate", target }), o),
    );
  fault
    .command("slow <target>")
    .description("a slow, lossy link between the target and everything outside it")
    .option("--delay <duration>", "added to every packet each way, e.g. 200ms", "0ms")
    .option("--loss <percent>", "share of packets lost each way, e.g. 5%", "0%")
    .option("--json", "print JSON")
    .action(async (target: string, o: { delay: string; loss: string; json?: boolean }, cmd: Command) => {
      const delayMs = parseDuration(o.delay, "--delay");
      const lossPct = Number(o.loss.replace(/%$/, ""));
      if (!/^\d+(\.\d+)?%?$/.test(o.loss) || !(lossPct >= 0 && lossPct <= 100))
        throw new InvalidInput(`--loss: expected a share from 0% to 100%, got "${o.loss}"`);
      if (delayMs === 0 && lossPct === 0)
        throw new InvalidInput("--delay or --loss: a slow link needs one of them");
      done(await cloudClient(cmd).addNetworkFault({ kind: "slow", target, delayMs, lossPct }), o);
    });
  fault
    .command("heal [id]")
    .description("heal one network fault (by id, see fault list), or every one")
    .option("--json", "print JSON")
    .action(async (id: string | undefined, o: { json?: boolean }, cmd: Command) => {
      const healed = await cloudClient(cmd).healNetwork(id);
      if (o.json) return printJson({ healed });
      print(healed.length === 0 ? "no network fault was in effect" : `healed ${healed.join(", ")}`);
    });
  fault
    .command("list")
    .description("faults in effect: network faults, silent and frozen VMs, failed hosts")
    .option("--json", "print JSON")
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const report = await cloudClient(cmd).faults();
      if (o.json) return printJson(report);
      const rows = [
        ...report.network.map((f) => ["network", f.id, `${f.kind}: ${f.description}`, f.since]),
        ...report.frozenVms.map((vm) => ["vm", vm, "frozen", "-"]),
        ...report.silentVms
          .filter((vm) => !report.frozenVms.includes(vm))
          .map((vm) => ["vm", vm, "silent (not running)", "-"]),
        ...report.failedHosts.map((h) => ["host", h.id, "failed", h.failedAt]),
      ];
      print(rows.length === 0 ? "no faults in effect" : table(["KIND", "TARGET", "FAULT", "SINCE"], rows));
      if (report.networkUnavailable) print(`network faults unavailable: ${report.networkUnavailable}`);
    });
  return fault;
}
