/** `zonal cloud …`: run the local cloud daemon and use its IaaS API by hand. */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, openSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Command } from "commander";
import { startDaemon } from "../../cloud/local/daemon.js";
import { ENDPOINT_FILE, LocalCloudClient, type CloudEndpoint } from "../../cloud/local/client.js";
import type { Vm } from "../../cloud/cloud.js";
import { InvalidInput, Unavailable } from "../../lib/errors.js";
import { parseDuration } from "../../lib/duration.js";
import { isAlive, signalPid } from "../../lib/proc.js";
import { GiveUp, sleep, waitFor } from "../../lib/sleep.js";
import { addTargetCommand, cloudClient, homeOf } from "../context.js";
import { cloudDataDir, repoPath } from "../home.js";
import {
  collect,
  formatMetadata,
  parseAttributes,
  parsePairs,
  positiveInt,
  print,
  printJson,
  table,
} from "../output.js";

export const DEFAULT_CLOUD_LISTEN = "127.0.0.1:25550";

function vmRows(vms: Vm[]) {
  return table(
    ["VM", "ZONE", "HOST", "ADDRESS", "STATE", "CPU", "RAM_MB", "DISKS", "METADATA"],
    vms.map((vm) => [
      vm.id,
      vm.zone,
      vm.host,
      vm.address,
      vm.state,
      vm.vmType.cpu,
      vm.vmType.ramMb,
      vm.disks.join(",") || "-",
      formatMetadata(vm.metadata),
    ]),
  );
}

/** Starts `zonal cloud serve` in the background; resolves once it answers. */
export async function startCloudInBackground(o: {
  configPath: string;
  dataDir: string;
  listen: string;
}): Promise<CloudEndpoint> {
  mkdirSync(o.dataDir, { recursive: true, mode: 0o711 });
  const endpointPath = join(o.dataDir, ENDPOINT_FILE);
  if (existsSync(endpointPath)) {
    const ep = JSON.parse(readFileSync(endpointPath, "utf8")) as CloudEndpoint;
    if (isAlive(ep.pid)) return ep;
  }
  const logPath = join(o.dataDir, "cloud.log");
  const out = openSync(logPath, "a");
  const main = fileURLToPath(new URL("../main.js", import.meta.url));
  const child = spawn(
    process.execPath,
    [main, "cloud", "serve", "--config", o.configPath, "--data-dir", o.dataDir, "--listen", o.listen],
    { detached: true, stdio: ["ignore", out, out] },
  );
  child.unref();
  try {
    return await waitFor(
      async () => {
        if (child.exitCode !== null) throw new GiveUp(`the cloud daemon exited; see ${logPath}`);
        if (!existsSync(endpointPath)) return undefined;
        const ep = JSON.parse(readFileSync(endpointPath, "utf8")) as CloudEndpoint;
        if (ep.pid !== child.pid) return undefined;
        await new LocalCloudClient(ep).zones();
        return ep;
      },
      { timeoutMs: 20_000, intervalMs: 100, what: "the local cloud daemon to answer" },
    );
  } catch (err) {
    const tail = readFileSync(logPath, "utf8").trim().split("\n").slice(-5).join("\n");
    throw new Unavailable(`${(err as Error).message}\n${tail}`);
  }
}

/** Stops the daemon of `dataDir` (SIGTERM, then waits). Its VMs keep running unless purged first. */
export async function stopCloud(dataDir: string, purge: boolean): Promise<string> {
  const endpointPath = join(dataDir, ENDPOINT_FILE);
  if (!existsSync(endpointPath)) return "no local cloud is running";
  const ep = JSON.parse(readFileSync(endpointPath, "utf8")) as CloudEndpoint;
  let sentence = "";
  if (purge) {
    const client = new LocalCloudClient(ep);
    const vms = await client.listVms();
    for (const vm of vms) await client.deleteVm(vm.id);
    const disks = await client.listDisks();
    for (const d of disks) await client.deleteDisk(d.id);
    sentence = `deleted ${vms.length} VMs and ${disks.length} disks; `;
  }
  signalPid(ep.pid, "SIGTERM");
  for (let i = 0; i < 100 && isAlive(ep.pid); i++) await sleep(100);
  if (purge) rmSync(dataDir, { recursive: true, force: true });
  return `${sentence}local cloud (pid ${ep.pid}) stopped`;
}

export function cloudCommand(): Command {
  const cloud = new Command("cloud").description(
    "the embedded local cloud: run its daemon, list zones/hosts/VMs/disks, drive its IaaS API by hand; " +
      "alone, prints zones → hosts → VMs",
  );

  cloud
    .command("serve")
    .description("run the local cloud daemon in the foreground (its VMs outlive it)")
    .option("--config <file>", "cloud file with zones and hosts", repoPath("examples", "cloud.yml"))
    .option("--data-dir <dir>", "state, VMs and disks (default: $ZONAL_HOME/cloud)")
    .option("--listen <host:port>", "API address; port 0 picks a free port", DEFAULT_CLOUD_LISTEN)
    .action(async (o: { config: string; dataDir?: string; listen: string }, cmd: Command) => {
      const daemon = await startDaemon({
        configPath: o.config,
        dataDir: o.dataDir ?? cloudDataDir(homeOf(cmd)),
        listen: o.listen,
      });
      const stop = () => void daemon.close().then(() => process.exit(0));
      process.once("SIGTERM", stop);
      process.once("SIGINT", stop);
    });

  cloud
    .command("start")
    .description("start the local cloud daemon in the background")
    .option("--config <file>", "cloud file with zones and hosts", repoPath("examples", "cloud.yml"))
    .option("--listen <host:port>", "API address", DEFAULT_CLOUD_LISTEN)
    .action(async (o: { config: string; listen: string }, cmd: Command) => {
      const dataDir = cloudDataDir(homeOf(cmd));
      const ep = await startCloudInBackground({ configPath: o.config, dataDir, listen: o.listen });
      print(`local cloud listening on ${ep.url} (pid ${ep.pid}, data in ${dataDir})`);
    });

  cloud
    .command("stop")
    .description("stop the local cloud daemon; its VMs keep running unless --purge")
    .option("--purge", "first delete every VM and disk, then remove the data dir")
    .action(async (o: { purge?: boolean }, cmd: Command) => {
      print(await stopCloud(cloudDataDir(homeOf(cmd)), Boolean(o.purge)));
    });

  const printTree = async (o: { json?: boolean }, cmd: Command): Promise<void> => {
    const client = cloudClient(cmd);
    const [zones, vms] = await Promise.all([client.zones(), client.listVms()]);
    if (o.json) return printJson({ zones, vms });
    for (const zone of zones) {
      print(`zone ${zone.name}`);
      for (const host of zone.hosts) {
        const attrs = Object.entries(host.attributes)
          .map(([k, v]) => `${k}=${String(v)}`)
          .join(",");
        print(
          `  host ${host.id} [${host.state}] ${attrs ? `{${attrs}} ` : ""}` +
            `cpu ${host.used.cpu}/${host.capacity.cpu}, ram ${host.used.ramMb}/${host.capacity.ramMb} MiB`,
        );
        for (const vm of vms.filter((v) => v.host === host.id)) {
          print(`    ${vm.id} ${vm.address} ${vm.state} ${formatMetadata(vm.metadata)}`);
        }
      }
    }
  };
  // `zonal cloud` alone prints the tree, like `zonal cloud tree`.
  cloud.argument("[command]").action(async (unknown: string | undefined, _o: unknown, cmd: Command) => {
    if (unknown !== undefined)
      throw new InvalidInput(`unknown command "cloud ${unknown}" (see zonal cloud --help)`);
    await printTree({}, cmd);
  });
  cloud
    .command("tree")
    .description("zones → hosts → VMs (what `zonal cloud` alone prints)")
    .option("--json", "print JSON")
    .action(printTree);

  cloud
    .command("hosts")
    .description("list hosts with attributes, capacity and state")
    .option("--json", "print JSON")
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const hosts = await cloudClient(cmd).hosts();
      if (o.json) return printJson(hosts);
      print(
        table(
          ["HOST", "ZONE", "STATE", "ATTRIBUTES", "CPU_USED", "RAM_USED_MB", "VMS"],
          hosts.map((h) => [
            h.id,
            h.zone,
            h.state,
            formatMetadata(Object.fromEntries(Object.entries(h.attributes).map(([k, v]) => [k, String(v)]))),
            `${h.used.cpu}/${h.capacity.cpu}`,
            `${h.used.ramMb}/${h.capacity.ramMb}`,
            h.used.vms,
          ]),
        ),
      );
    });

  cloud
    .command("vms")
    .description("list VMs")
    .option("--metadata <key=value>", "only VMs with this metadata (repeatable)", collect)
    .option("--json", "print JSON")
    .action(async (o: { json?: boolean; metadata?: string[] }, cmd: Command) => {
      const metadata = parsePairs("--metadata", o.metadata);
      const vms = await cloudClient(cmd).listVms({ metadata });
      if (o.json) return printJson(vms);
      print(vmRows(vms));
    });

  cloud
    .command("disks")
    .description("list persistent disks")
    .option("--json", "print JSON")
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const disks = await cloudClient(cmd).listDisks();
      if (o.json) return printJson(disks);
      print(
        table(
          ["DISK", "ZONE", "SIZE_MB", "STATE", "ATTACHED_TO", "METADATA"],
          disks.map((d) => [d.id, d.zone, d.sizeMb, d.state, d.attachedTo, formatMetadata(d.metadata)]),
        ),
      );
    });

  cloud
    .command("create-vm")
    .description("create a VM running an agent")
    .requiredOption("--zone <zone>", "availability zone")
    .option("--cpu <n>", "CPUs", positiveInt("--cpu"), 1)
    .option("--ram-mb <n>", "RAM in MiB", positiveInt("--ram-mb"), 512)
    .option("--require <key=value>", "required host attribute, e.g. ssd=true (repeatable)", collect)
    .option("--host-hint <zone/host>", "preferred host (repeatable)", collect)
    .option("--metadata <key=value>", "metadata (repeatable)", collect)
    .option("--heartbeat-url <url>", "where the agent sends heartbeats")
    .option("--heartbeat-interval <duration>", "heartbeat interval", "1s")
    .option("--json", "print JSON (includes the agent token)")
    .action(
      async (
        o: {
          zone: string;
          cpu: number;
          ramMb: number;
          require?: string[];
          hostHint?: string[];
          metadata?: string[];
          heartbeatUrl?: string;
          heartbeatInterval: string;
          json?: boolean;
        },
        cmd: Command,
      ) => {
        const hostAttributes = parseAttributes("--require", o.require);
        const request = {
          zone: o.zone,
          vmType: { cpu: o.cpu, ramMb: o.ramMb, ...(o.require ? { hostAttributes } : {}) },
          ...(o.hostHint ? { hostHints: o.hostHint } : {}),
          metadata: parsePairs("--metadata", o.metadata),
          agent: o.heartbeatUrl
            ? {
                heartbeat: {
                  url: o.heartbeatUrl,
                  intervalMs: parseDuration(o.heartbeatInterval, "--heartbeat-interval"),
                },
              }
            : {},
        };
        const created = await cloudClient(cmd).createVm(request);
        if (o.json) return printJson(created);
        print(`created ${created.vm.id} on ${created.vm.host} at ${created.vm.address}`);
      },
    );

  addTargetCommand(
    cloud,
    "delete-vm <vm>",
    "delete a VM (its disks are detached, not deleted)",
    (c, id) => c.deleteVm(id),
    "deleted",
  );
  addTargetCommand(
    cloud,
    "reboot <vm>",
    "hard-reboot a VM (powers on a stopped one)",
    (c, id) => c.rebootVm(id),
    "rebooted",
  );
  addTargetCommand(
    cloud,
    "power-off <vm>",
    "hard power off (fencing): returns once nothing of the VM runs",
    (c, id) => c.powerOffVm(id),
    "powered off",
  );
  addTargetCommand(
    cloud,
    "delete-disk <disk>",
    "delete a detached disk and its data",
    (c, id) => c.deleteDisk(id),
    "deleted",
  );

  cloud
    .command("set-metadata <vm> <pairs...>")
    .description("merge KEY=VALUE pairs into a VM's metadata")
    .action(async (vm: string, pairs: string[], _o: unknown, cmd: Command) => {
      const metadata = parsePairs("metadata", pairs);
      await cloudClient(cmd).setVmMetadata(vm, metadata);
      print(`${vm}: metadata set`);
    });

  cloud
    .command("create-disk")
    .description("create a persistent disk")
    .requiredOption("--zone <zone>", "availability zone")
    .requiredOption("--size-mb <n>", "size in MiB", positiveInt("--size-mb"))
    .option("--metadata <key=value>", "metadata (repeatable)", collect)
    .option("--json", "print JSON")
    .action(
      async (o: { zone: string; sizeMb: number; metadata?: string[]; json?: boolean }, cmd: Command) => {
        const disk = await cloudClient(cmd).createDisk({
          zone: o.zone,
          sizeMb: o.sizeMb,
          metadata: parsePairs("--metadata", o.metadata),
        });
        if (o.json) return printJson(disk);
        print(`created ${disk.id} in ${disk.zone} (${disk.sizeMb} MiB)`);
      },
    );

  cloud
    .command("attach-disk <disk> <vm>")
    .description("attach a disk to a VM in the same zone")
    .action(async (disk: string, vm: string, _o: unknown, cmd: Command) => {
      const a = await cloudClient(cmd).attachDisk(disk, vm);
      print(`${disk} attached to ${vm} at ${a.device}`);
    });

  cloud
    .command("detach-disk <disk>")
    .description("detach a disk; --force for a disk stuck on a dead VM (fence it first)")
    .option("--force", "detach even when the VM cannot release it")
    .action(async (disk: string, o: { force?: boolean }, cmd: Command) => {
      await cloudClient(cmd).detachDisk(disk, { force: Boolean(o.force) });
      print(`${disk} detached${o.force ? " (forced)" : ""}`);
    });

  return cloud;
}
