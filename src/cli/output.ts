/** How the CLI prints: aligned tables for people, `--json` for scripts, errors on stderr. */
import { InvalidInput, ZonalError } from "../lib/errors.js";

export function table(headers: string[], rows: Array<Array<string | number | undefined>>): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (c === undefined ? "-" : String(c))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  return cells
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + "\n");
}

export function print(text: string): void {
  process.stdout.write(text + "\n");
}

/** Prints an error the way a person can act on it, and returns the exit code. */
export function reportError(err: unknown): number {
  if (err instanceof ZonalError) {
    process.stderr.write(`error: ${err.message}\n`);
    return err instanceof InvalidInput ? 2 : 1;
  }
  const e = err as { code?: string; message?: string };
  if (e.code?.startsWith("commander.")) return 2;
  process.stderr.write(`error: ${e.message ?? String(err)}\n`);
  return 1;
}

export function formatMetadata(md: Record<string, string>): string {
  const entries = Object.entries(md);
  return entries.length === 0 ? "-" : entries.map(([k, v]) => `${k}=${v}`).join(",");
}

/** Parses repeated `KEY=VALUE` options into a record; names the flag when one is malformed. */
export function parsePairs(flag: string, pairs: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const i = pair.indexOf("=");
    if (i <= 0) throw new InvalidInput(`${flag}: expected KEY=VALUE, got "${pair}"`);
    out[pair.slice(0, i)] = pair.slice(i + 1);
  }
  return out;
}

/** Typed attribute values: "true"/"false" become booleans, numbers become numbers. */
export function parseAttributes(
  flag: string,
  pairs: string[] = [],
): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(parsePairs(flag, pairs))) {
    out[k] = v === "true" ? true : v === "false" ? false : /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v;
  }
  return out;
}

export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

export function positiveInt(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n <= 0)
      throw new InvalidInput(`${flag}: expected a positive integer, got "${value}"`);
    return n;
  };
}
