/** Job logs: one append-only file per job, read back from the end. */
import { appendFileSync, closeSync, fstatSync, openSync, readSync, renameSync, statSync } from "node:fs";

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

/** The last `lines` lines of a file ([] when it does not exist). */
export function tailFile(path: string, lines: number): string[] {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return [];
  }
  try {
    const size = fstatSync(fd).size;
    let start = size;
    let text = "";
    const chunk = 64 * 1024;
    while (start > 0) {
      const len = Math.min(chunk, start);
      start -= len;
      const buf = Buffer.alloc(len);
      readSync(fd, buf, 0, len, start);
      text = buf.toString("utf8") + text;
      if (text.split("\n").length > lines + 1) break;
    }
    const all = text.split("\n");
    if (all[all.length - 1] === "") all.pop();
    return all.slice(-lines);
  } finally {
    closeSync(fd);
  }
}

/** Appends a line from the agent (not from the job's own output) to a job's log. */
export function appendAgentLine(path: string, line: string): void {
  try {
    appendFileSync(path, `[zonal-agent ${new Date().toISOString()}] ${line}\n`);
  } catch {
    /* a missing log never stops supervision */
  }
}
