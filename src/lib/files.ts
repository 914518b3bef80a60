/** Small file helpers: crash-safe writes, tolerant reads, a file's last lines, a private run directory. */
import {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  writeSync,
} from "node:fs";
import { homedir } from "node:os";
import { basename, dirname, join } from "node:path";

/**
 * Writes `data` to `path` so that a crash leaves either the old or the new
 * content, never a torn file: write a temp file, fsync it, rename over, fsync dir.
 */
export function writeFileAtomic(path: string, data: string, mode = 0o644): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(tmp, "w", mode);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dirFd = openSync(dirname(path), "r");
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}

/** Reads and parses a JSON file, or returns undefined when it does not exist. */
export function readJsonIfExists(path: string): unknown {
  if (!existsSync(path)) return undefined;
  return JSON.parse(readFileSync(path, "utf8"));
}

/**
 * A directory of this machine's zonal state shared between processes (address
 * claims): `/run/zonal/<name>` for root, `~/.zonal/run/<name>` otherwise — never a
 * predictable path in a world-writable directory, where another user could plant
 * a symlink first. Made 0700; refused unless it is a real directory of this user.
 * So each user has its own: a root and a non-root local cloud on one machine do not
 * see each other's address claims (give them different address_base values).
 */
export function privateRunDir(name: string): string {
  const uid = process.getuid?.() ?? 0;
  const dir = uid === 0 ? join("/run/zonal", name) : join(homedir(), ".zonal", "run", name);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o022) !== 0)
    throw new Error(`${dir}: expected a directory of uid ${uid} that only it can write`);
  return dir;
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
