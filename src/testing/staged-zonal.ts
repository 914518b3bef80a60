/**
 * A copy of this build of zonal in a directory of its own (dist, bin, examples, package.json;
 * node_modules linked), for tests that upgrade zonal in place: the control plane,
 * the local cloud and every agent run from the copy, and `setVersion` changes the
 * version its files say — what installing a new release over it does — so that a
 * control plane restarted afterwards, and any agent started from those files, runs
 * the new version.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoPath } from "../cli/home.js";

export class StagedZonal {
  readonly root = mkdtempSync(join(tmpdir(), "zonal-staged-"));
  /** The staged CLI (ZonalHarness's `bin`). */
  readonly bin = join(this.root, "bin", "zonal.js");

  constructor() {
    for (const part of ["dist", "bin", "examples", "package.json"])
      cpSync(repoPath(part), join(this.root, part), { recursive: true });
    symlinkSync(repoPath("node_modules"), join(this.root, "node_modules"));
  }

  get version(): string {
    return (JSON.parse(readFileSync(join(this.root, "package.json"), "utf8")) as { version: string }).version;
  }

  /** Installs "a new release": the staged files now say `version`. */
  setVersion(version: string): void {
    const path = join(this.root, "package.json");
    const pkg = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
    writeFileSync(path, JSON.stringify({ ...pkg, version }, null, 2));
  }

  remove(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}
