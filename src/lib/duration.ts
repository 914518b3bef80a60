/** Durations as people write them ("500ms", "5s", "2m") to milliseconds. */
import { z } from "zod";
import { InvalidInput } from "./errors.js";

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export function parseDuration(text: string, field = "duration"): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new InvalidInput(`${field}: expected a duration such as 500ms, 5s or 2m, got "${text}"`);
  return Math.round(Number(m[1]) * UNITS[m[2] ?? "ms"]!);
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)}s`;
  return `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`;
}

/** A zod schema for a duration: milliseconds as a number, or a string like "5s". */
export function durationMs(opts: { min?: number; max?: number } = {}) {
  const min = opts.min ?? 0;
  const max = opts.max ?? 24 * 3_600_000;
  return z.union([z.number(), z.string()]).transform((v, ctx) => {
    const ms =
      typeof v === "number" ? v : /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.test(v.trim()) ? parseDuration(v) : NaN;
    if (!Number.isFinite(ms)) {
      ctx.addIssue({
        code: "custom",
        message: `expected a duration such as 500ms, 5s or 2m, got "${String(v)}"`,
      });
      return z.NEVER;
    }
    if (ms < min || ms > max) {
      ctx.addIssue({
        code: "custom",
        message: `expected a duration from ${min} ms to ${max} ms, got ${ms} ms`,
      });
      return z.NEVER;
    }
    return ms;
  });
}
