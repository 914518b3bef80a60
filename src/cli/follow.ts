/**
 * Following a task: its events as they happen and, on a terminal, a progress bar
 * redrawn in place. Returns the finished task.
 */
import type { DirectorClient } from "../director/client.js";
import { sleep } from "../lib/sleep.js";
import type { EventRecord, TaskRecord } from "../wire/tasks.js";

export function progressBar(done: number, total: number, width = 30): string {
  const filled = total === 0 ? 0 : Math.round((done / total) * width);
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${done}/${total}`;
}

export function formatEvent(e: EventRecord): string {
  const time = e.at.slice(11, 19);
  const who = e.instance && !e.message.startsWith(e.instance) ? `${e.instance} ` : "";
  const level = e.level === "info" ? "" : `${e.level.toUpperCase()} `;
  return `${time} ${level}${e.stage}: ${who}${e.message}`;
}

export async function followTask(
  client: DirectorClient,
  id: number,
  out: NodeJS.WriteStream = process.stdout,
): Promise<TaskRecord> {
  const tty = out.isTTY === true;
  let after = 0;
  let barShown = false;
  for (;;) {
    const [events, task] = await Promise.all([client.taskEvents(id, after), client.task(id)]);
    if (barShown && (events.length > 0 || task.state === "done" || task.state === "failed"))
      out.write("\r\x1b[K");
    for (const e of events) {
      out.write(formatEvent(e) + "\n");
      after = e.id;
    }
    if (task.state === "done" || task.state === "failed") {
      if (events.length === 0 || after === 0) {
        const rest = await client.taskEvents(id, after);
        for (const e of rest) out.write(formatEvent(e) + "\n");
      }
      return task;
    }
    if (tty) {
      out.write(`\r\x1b[Ktask ${id} ${task.state} ${progressBar(task.progress.done, task.progress.total)}`);
      barShown = true;
    }
    await sleep(250);
  }
}
