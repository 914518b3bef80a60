/** Job logs: one append-only file per job, read back from the end. */
import { appendFileSync, openSync, renameSync, statSync } from "node:fs";

const ROTATE_AT_BYTES = 16 * 1024 * 1024;

/** Opens `path` for appending, rotating it to `path.1` first when it has grown too big. */
export function openLogForAppend(path: string): number {
  try {
    if (statSync(path).size > ROTATE_AT_BYTES) renameSync(path, `${path}.1`);
  } catch {
    /* no log yet */
  }
  return openSync(path, "a");
}

/** Appends a line from the agent (not from the job's own output) to a job's log. */
export function appendAgentLine(path: string, line: string): void {
  try {
    appendFileSync(path, `[zonal-agent ${new Date().toISOString()}] ${line}\n`);
  } catch {
    /* a missing log never stops supervision */
  }
}
