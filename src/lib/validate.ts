/**
 * Validation of untrusted input (files, API bodies, CLI flags) with zod. Every
 * failure becomes one `InvalidInput` listing each bad field by its dotted path and
 * what was expected, e.g. `zones[1].hosts[0].ram_mb: expected a positive integer`.
 */
import type { z } from "zod";
import { InvalidInput, type FieldProblem } from "./errors.js";

export function fieldPath(path: ReadonlyArray<PropertyKey>): string {
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else out += out === "" ? String(key) : `.${String(key)}`;
  }
  return out;
}

export function problemsOf(error: z.ZodError): FieldProblem[] {
  return error.issues.map((issue) => ({ field: fieldPath(issue.path) || "(root)", problem: issue.message }));
}

export function formatProblems(what: string, problems: FieldProblem[]): string {
  const lines = problems.map((p) => `  ${p.field}: ${p.problem}`);
  return `invalid ${what}:\n${lines.join("\n")}`;
}

/** One bad field, as an error: `field: problem`. */
export function invalidField(field: string, problem: string): InvalidInput {
  return new InvalidInput(`${field}: ${problem}`, [{ field, problem }]);
}

/** Parses `value` with `schema`; throws InvalidInput naming every bad field of `what`. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems = problemsOf(result.error);
  throw new InvalidInput(formatProblems(what, problems), problems);
}
