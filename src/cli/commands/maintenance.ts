/** `zonal host drain|undrain`, `zonal zone drain|undrain`, `zonal maintenance`: planned maintenance of hosts and zones. */
import { Command } from "commander";
import type { DirectorClient } from "../../director/client.js";
import type { DrainView } from "../../director/maintenance.js";
import type { MaintenanceKind } from "../../wire/maintenance.js";
import { directorClient } from "../context.js";
import { followTask } from "../follow.js";
import { print, printJson, table } from "../output.js";

const devNull = { isTTY: false, write: () => true } as unknown as NodeJS.WriteStream;

/** Follows each drain task; exit code 1 when one failed or a deployment could not start moving. */
async function followDrain(client: DirectorClient, v: DrainView, json: boolean): Promise<void> {
  const m = v.maintenance;
  if (!json) {
    print(`${m.kind} ${m.target} is in maintenance (${m.reason}): nothing new is placed there`);
    if (v.cloud) print(v.cloud);
    if (v.tasks.length === 0) print("nothing runs there: nothing to move");
  }
  const done = [];
  for (const t of v.tasks) {
    if (!json) print(`task ${t.id}: ${t.description}`);
    const end = await followTask(client, t.id, json ? devNull : process.stdout);
    done.push(end);
    if (!json) print(`task ${end.id} ${end.state}: ${end.result ?? ""}`);
    if (end.state !== "done") process.exitCode = 1;
  }
  for (const d of v.deferred) {
    if (!json) print(`not moved yet: ${d} (deploy it again once its task ends)`);
    process.exitCode = 1;
  }
  if (json) printJson({ ...v, tasks: done.length > 0 ? done : v.tasks });
}

function targetCommands(kind: MaintenanceKind): Command {
  const arg = kind === "host" ? "<zone/host>" : "<zone>";
  const c = new Command(kind).description(
    kind === "host"
      ? "planned maintenance of a host: move everything off it, give it back"
      : "planned maintenance of a zone: move everything out of it, give it back",
  );
  c.command(`drain ${arg}`)
    .description(
      `put the ${kind} in maintenance and move every instance ${kind === "host" ? "off it" : "out of it"} with the ` +
        "care of a rolling update: primaries hand over first, instances behind an LB pair are drained " +
        "from it, cluster members move one at a time; refused, with the reasons and nothing changed, " +
        `when the rest of the cloud cannot take them${kind === "zone" ? " or a group would lose its last zone or its quorum" : ""}`,
    )
    .option("--reason <text>", "why (shown in zonal maintenance, and given to the cloud)")
    .option("--no-follow", "return once the moves have started")
    .option("--json", "print JSON")
    .action(async (target: string, o: { reason?: string; follow: boolean; json?: boolean }, cmd: Command) => {
      const client = directorClient(cmd);
      const v = await client.drain(kind, target, o.reason);
      if (!o.follow) {
        if (o.json) return printJson(v);
        print(
          `${kind} ${target} is in maintenance; tasks ${v.tasks.map((t) => t.id).join(", ") || "none"} move what ran there`,
        );
        return;
      }
      await followDrain(client, v, o.json === true);
    });
  c.command(`undrain ${arg}`)
    .description(`give the ${kind} back to placement (nothing moves back until the next deploy)`)
    .option("--json", "print JSON")
    .action(async (target: string, o: { json?: boolean }, cmd: Command) => {
      const r = await directorClient(cmd).undrain(kind, target);
      if (o.json) return printJson(r);
      print(`${kind} ${target} is back from maintenance${r.cloud ? `; ${r.cloud}` : ""}`);
    });
  return c;
}

export function maintenanceCommands(): Command[] {
  const list = new Command("maintenance")
    .description("hosts and zones in maintenance, and what still runs there")
    .option("--json", "print JSON")
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const all = await directorClient(cmd).maintenance();
      if (o.json) return printJson(all);
      if (all.length === 0) return print("no host or zone is in maintenance");
      print(
        table(
          ["KIND", "TARGET", "SINCE", "REASON", "STILL THERE"],
          all.map((m) => [m.kind, m.target, m.since, m.reason, m.instances.join(", ") || "-"]),
        ),
      );
    });
  return [targetCommands("host"), targetCommands("zone"), list];
}
