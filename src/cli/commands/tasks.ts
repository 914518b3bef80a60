/** `zonal tasks | task | events | logs`. */
import { Command } from "commander";
import { InvalidInput } from "../../lib/errors.js";
import { directorClient } from "../context.js";
import { followTask, formatEvent, progressBar } from "../follow.js";
import { positiveInt, print, printJson, table } from "../output.js";

export function taskCommands(): Command[] {
  const tasks = new Command("tasks")
    .description("recent tasks, newest first")
    .option("-d, --deployment <name>", "only this deployment")
    .option("-n, --limit <n>", "how many", positiveInt("--limit"), 30)
    .option("--json", "print JSON")
    .action(async (o: { deployment?: string; limit: number; json?: boolean }, cmd: Command) => {
      const list = await directorClient(cmd).tasks({
        ...(o.deployment ? { deployment: o.deployment } : {}),
        limit: o.limit,
      });
      if (o.json) return printJson(list);
      print(
        table(
          ["ID", "STATE", "DEPLOYMENT", "KIND", "PROGRESS", "CREATED", "DESCRIPTION"],
          list.map((t) => [
            t.id,
            t.state,
            t.deployment ?? undefined,
            t.kind,
            `${t.progress.done}/${t.progress.total}`,
            t.createdAt,
            t.description,
          ]),
        ),
      );
    });

  const task = new Command("task")
    .argument("<id>", "task id")
    .description("a task and its events; --follow shows them as they happen, with a progress bar")
    .option("-f, --follow", "follow until the task ends")
    .option("--json", "print JSON")
    .action(async (idText: string, o: { follow?: boolean; json?: boolean }, cmd: Command) => {
      const id = Number(idText);
      if (!Number.isInteger(id) || id <= 0)
        throw new InvalidInput(`task id: expected a positive integer, got "${idText}"`);
      const client = directorClient(cmd);
      if (o.follow && !o.json) {
        const done = await followTask(client, id);
        print(`task ${done.id} ${done.state}: ${done.result ?? ""}`);
        if (done.state === "failed") process.exitCode = 1;
        return;
      }
      const [t, events] = await Promise.all([client.task(id), client.taskEvents(id)]);
      if (o.json) return printJson({ ...t, events });
      print(`task ${t.id} ${t.state} ${progressBar(t.progress.done, t.progress.total)}: ${t.description}`);
      for (const e of events) print(formatEvent(e));
      if (t.result) print(`result: ${t.result}`);
    });

  const events = new Command("events")
    .description("recent events of tasks and of the director")
    .option("-d, --deployment <name>", "only this deployment")
    .option("--task <id>", "only this task", positiveInt("--task"))
    .option("-n, --limit <n>", "how many", positiveInt("--limit"), 50)
    .option("--json", "print JSON")
    .action(
      async (o: { deployment?: string; task?: number; limit: number; json?: boolean }, cmd: Command) => {
        const list = await directorClient(cmd).events({
          ...(o.deployment ? { deployment: o.deployment } : {}),
          ...(o.task ? { task: o.task } : {}),
          limit: o.limit,
        });
        if (o.json) return printJson(list);
        for (const e of list)
          print(
            `${e.taskId ? `#${e.taskId} ` : ""}${e.deployment ? `${e.deployment} ` : ""}${formatEvent(e)}`,
          );
      },
    );

  const logs = new Command("logs")
    .argument("<instance>", "GROUP/INDEX")
    .requiredOption("-d, --deployment <name>", "the deployment")
    .option("--job <name>", "only this job")
    .option("-n, --lines <n>", "how many lines per job", positiveInt("--lines"), 100)
    .option("--json", "print JSON")
    .description("recent log lines of an instance's jobs, from its agent")
    .action(
      async (
        instance: string,
        o: { deployment: string; job?: string; lines: number; json?: boolean },
        cmd: Command,
      ) => {
        const out = await directorClient(cmd).logs(o.deployment, instance, o.job, o.lines);
        if (o.json) return printJson(out);
        for (const j of out) {
          print(`==> ${instance} ${j.job} <==`);
          print(j.lines.join("\n"));
        }
      },
    );

  return [tasks, task, events, logs];
}
