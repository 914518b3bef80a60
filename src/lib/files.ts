/** Small file helpers: crash-safe writes and tolerant reads. */
import { closeSync, fsyncSync, openSync, renameSync, writeSync, readFileSync, existsSync } from "node:fs";
import { dirname, basename, join } from "node:path";

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
