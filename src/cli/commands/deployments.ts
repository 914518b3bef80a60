/** `zonal deploy | deployments | instances | delete-deployment | recreate | stop | start | upgrade-agents | cloud-config`. */
import { Command } from "commander";
import { stringify } from "yaml";
import type { DirectorClient } from "../../director/client.js";
import type { TaskRecord } from "../../wire/tasks.js";
import { directorClient } from "../context.js";
import { followTask } from "../follow.js";
import { print, printJson, table } from "../output.js";
import { readYamlFile } from "./control-plane.js";

/** Follows a task unless --no-follow; exit code 1 when it failed. */
async function finish(
  client: DirectorClient,
  task: TaskRecord,
  follow: boolean,
  json?: boolean,
): Promise<void> {
  if (!follow) {
    if (json) return printJson(task);
    return print(`task ${task.id} started: ${task.description} (zonal task ${task.id} --follow)`);
  }
  if (!json) print(`task ${task.id}: ${task.description}`);
  const done = await followTask(
    client,
    task.id,
    json ? (devNull as unknown as NodeJS.WriteStream) : process.stdout,
  );
  if (json) printJson(done);
  else print(`task ${done.id} ${done.state}: ${done.result ?? ""}`);
  if (done.state !== "done") process.exitCode = 1;
}

const devNull = { isTTY: false, write: () => true };

function addFollowOptions(c: Command): Command {
  return c
    .option("--no-follow", "return once the task has started")
    .option("--json", "print the task as JSON");
}

export function deploymentCommands(): Command[] {
  const deploy = addFollowOptions(
    new Command("deploy")
      .argument("<manifest>", "deployment manifest (YAML)")
      .description("deploy a manifest: validate, place, then converge under the update policy"),
  ).action(async (file: string, o: { follow: boolean; json?: boolean }, cmd: Command) => {
    const manifest = readYamlFile(file, "manifest");
    const client = directorClient(cmd);
    await finish(client, await client.deploy(manifest), o.follow, o.json);
  });

  const deployments = new Command("deployments")
    .description("list deployments")
    .option("--json", "print JSON")
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const list = await directorClient(cmd).deployments();
      if (o.json) return printJson(list);
      print(
        table(
          ["DEPLOYMENT", "GROUPS", "INSTANCES", "RUNNING", "UPDATED"],
          list.map((d) => [
            d.name,
            d.groups.map((g) => `${g.name}x${g.instances}`).join(","),
            d.instances,
            d.running,
            d.updatedAt,
          ]),
        ),
      );
    });

  const instances = new Command("instances")
    .description("list instances with zone, host, address and state")
    .option("-d, --deployment <name>", "only this deployment")
    .option("--json", "print JSON")
    .action(async (o: { deployment?: string; json?: boolean }, cmd: Command) => {
      const list = await directorClient(cmd).instances(o.deployment);
      if (o.json) return printJson(list);
      print(
        table(
          ["INSTANCE", "DEPLOYMENT", "ZONE", "HOST", "ADDRESS", "VIP", "STATE", "JOBS", "VM", "DISK", "ID"],
          list.map((i) => [
            `${i.group}/${i.index}`,
            i.deployment,
            i.zone,
            i.host ?? undefined,
            i.address ?? undefined,
            i.vip ?? undefined,
            i.state,
            i.jobsState ?? undefined,
            i.vmId ?? undefined,
            i.diskId ?? undefined,
            i.id,
          ]),
        ),
      );
    });

  const del = addFollowOptions(
    new Command("delete-deployment")
      .argument("<name>")
      .description("delete a deployment: drain and delete its VMs and disks"),
  ).action(async (name: string, o: { follow: boolean; json?: boolean }, cmd: Command) => {
    const client = directorClient(cmd);
    await finish(client, await client.deleteDeployment(name), o.follow, o.json);
  });

  const actions = (["recreate", "stop", "start", "upgrade-agents"] as const).map((action) =>
    addFollowOptions(
      new Command(action)
        .argument("[target]", "GROUP or GROUP/INDEX (default: every instance)")
        .requiredOption("-d, --deployment <name>", "the deployment")
        .description(
          {
            recreate: "rebuild instances on new VMs (disks kept) under the update policy",
            stop: "drain and stop the jobs of instances (VMs keep running)",
            start: "start the jobs of stopped instances",
            "upgrade-agents":
              "hand each agent over to the zonal version the control plane runs, one VM at a time, leaders last; jobs keep running (same PIDs)",
          }[action],
        ),
    ).action(
      async (
        target: string | undefined,
        o: { deployment: string; follow: boolean; json?: boolean },
        cmd: Command,
      ) => {
        const client = directorClient(cmd);
        await finish(client, await client.action(action, o.deployment, target), o.follow, o.json);
      },
    ),
  );

  const cloudConfig = new Command("cloud-config")
    .argument("[file]", "a cloud config to upload; without it, prints the current one")
    .description("show or set the cloud config: zones, vm_types, disk_types, networks")
    .option("--json", "print JSON")
    .action(async (file: string | undefined, o: { json?: boolean }, cmd: Command) => {
      const client = directorClient(cmd);
      const doc = file ? readYamlFile(file, "cloud config") : undefined;
      const cc = doc !== undefined ? await client.setCloudConfig(doc) : await client.cloudConfig();
      if (o.json) return printJson(cc);
      if (file)
        print(
          `cloud config updated: ${cc.zones.length} zones, ${cc.vm_types.length} vm_types, ${cc.disk_types.length} disk_types`,
        );
      else print(stringify(cc).trimEnd());
    });

  return [deploy, deployments, instances, del, ...actions, cloudConfig];
}
