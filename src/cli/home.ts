/**
 * Where zonal keeps its files on this machine: $ZONAL_HOME, or /var/lib/zonal for
 * root, or ~/.zonal.
 *   cloud/     the local cloud daemon's data dir (see src/cloud/local/daemon.ts)
 *   director/  the control plane's data dir (see src/director/server.ts)
 */
import { homedir } from "node:os";
import { join, resolve } from "node:path";

/**
 * root keeps zonal in /var/lib/zonal: job users (postgres) must be able to reach
 * their disks, and root's home directory is closed to them.
 */
export function zonalHome(option?: string): string {
  const fallback = process.getuid?.() === 0 ? "/var/lib/zonal" : join(homedir(), ".zonal");
  return resolve(option ?? process.env.ZONAL_HOME ?? fallback);
}

export function cloudDataDir(home: string): string {
  return join(home, "cloud");
}

export function directorDataDir(home: string): string {
  return join(home, "director");
}

/** The repository's own files (examples), relative to the compiled CLI. */
export function repoPath(...parts: string[]): string {
  return join(new URL("../../../", import.meta.url).pathname, ...parts);
}
