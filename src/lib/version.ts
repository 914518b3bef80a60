/**
 * zonal's version, as package.json says: the CLI, the control plane and every agent
 * report it (`zonal version`), so an upgrade shows which parts run which. The file is
 * found by walking up from this module: compiled (dist/src/lib) and bundled into the
 * agent (dist/agent) it sits at different depths.
 */
import { readFileSync } from "node:fs";

function read(): string {
  for (let dir = new URL(".", import.meta.url), up = 0; up < 6; dir = new URL("..", dir), up++) {
    try {
      const pkg = JSON.parse(readFileSync(new URL("package.json", dir), "utf8")) as {
        name?: unknown;
        version?: unknown;
      };
      if (pkg.name === "zonal") return typeof pkg.version === "string" ? pkg.version : "unknown";
    } catch {
      // no package.json here, or not one we can read: look further up
    }
  }
  return "unknown";
}

export const ZONAL_VERSION = read();
