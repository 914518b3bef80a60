/**
 * zonal's version, as package.json says: the CLI, the control plane and every agent
 * report it (`zonal version`), so an upgrade shows which parts run which.
 */
import { readFileSync } from "node:fs";

function read(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as {
      version?: unknown;
    };
    return typeof pkg.version === "string" ? pkg.version : "unknown";
  } catch {
    return "unknown";
  }
}

export const ZONAL_VERSION = read();
