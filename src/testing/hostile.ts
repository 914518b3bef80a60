/**
 * Hostile input for property-based tests (fast-check): bodies that are a good one
 * with one thing broken — a value replaced by any JSON, a field dropped, an unknown
 * field added, anywhere in the tree — or any JSON at all, and strings that have
 * broken parsers and lookups before (`__proto__`, `..`, NUL, newlines, very long).
 *
 * `npm test` runs every property with a fixed seed and a bounded count; `npm run
 * test:hostile` runs them longer with a random seed (ZONAL_FUZZ_SEED,
 * ZONAL_FUZZ_RUNS). Each suite prints its tally: inputs tried, 5xx (or crashes)
 * seen, state changes after a refusal.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { fieldPath } from "../lib/validate.js";

/** The seed and count every property runs with. */
export function fuzzSettings(): { seed: number; numRuns: number } {
  const seed = Number(process.env.ZONAL_FUZZ_SEED ?? 20261202);
  const numRuns = Number(process.env.ZONAL_FUZZ_RUNS ?? 150);
  return { seed, numRuns };
}

/** Strings that broke parsers, lookups and renderers somewhere once. */
export const NASTY = [
  "",
  "__proto__",
  "constructor",
  "prototype",
  "..",
  "../../etc/passwd",
  "a/b",
  "%00",
  "\u0000",
  "line\nbreak",
  "tab\there",
  "quote\"'`",
  "${x}",
  "#",
  " ",
  "é😀",
  "x".repeat(10_000),
];

export const hostileString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...NASTY),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 40 }),
);

/** Any JSON value, hostile strings among its leaves. */
export const hostileJson: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  hostileString,
  fc.constantFrom(null, true, 0, -1, 1e308, 2 ** 53 + 1, [], {}),
);

type Path = Array<string | number>;

/** Every path into `value` (objects and arrays), the root excluded. */
function pathsOf(value: unknown, at: Path = []): Path[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => [[...at, i], ...pathsOf(v, [...at, i])]);
  if (value && typeof value === "object")
    return Object.entries(value).flatMap(([k, v]) => [[...at, k], ...pathsOf(v, [...at, k])]);
  return [];
}

function edit(
  root: unknown,
  path: Path,
  change: (parent: Record<string | number, unknown>, key: string | number) => void,
) {
  const copy = structuredClone(root) as Record<string | number, unknown>;
  let parent = copy;
  for (const k of path.slice(0, -1)) parent = parent[k] as Record<string | number, unknown>;
  change(parent, path.at(-1)!);
  return copy;
}

export interface Mutation {
  value: unknown;
  /** What was broken, as a field path (`instance_groups[0].jobs`); "(root)" for a body replaced whole. */
  field: string;
  how: "replaced" | "dropped" | "added" | "whole";
}

/** `valid` with one thing broken somewhere, or replaced whole. */
export function mutations(valid: unknown): fc.Arbitrary<Mutation> {
  const paths = pathsOf(valid);
  const whole = hostileJson.map((value): Mutation => ({ value, field: "(root)", how: "whole" }));
  if (paths.length === 0) return whole;
  const path = fc.constantFrom(...paths);
  const at = (p: Path) => p.reduce<unknown>((o, k) => (o as Record<string | number, unknown>)[k], valid);
  const isObject = (v: unknown) => !!v && typeof v === "object" && !Array.isArray(v);
  const objects: Path[] = [...(isObject(valid) ? [[]] : []), ...paths.filter((p) => isObject(at(p)))];
  const replaced = fc.tuple(path, hostileJson).map(([p, v]): Mutation => ({
    value: edit(valid, p, (parent, k) => (parent[k] = v)),
    field: fieldPath(p),
    how: "replaced",
  }));
  const dropped = path.map((p): Mutation => ({
    value: edit(valid, p, (parent, k) => {
      if (Array.isArray(parent)) parent.splice(k as number, 1);
      else delete parent[k];
    }),
    field: fieldPath(p),
    how: "dropped",
  }));
  const arms: Array<fc.WeightedArbitrary<Mutation>> = [
    { weight: 4, arbitrary: replaced },
    { weight: 2, arbitrary: dropped },
    { weight: 1, arbitrary: whole },
  ];
  if (objects.length > 0) {
    const added = fc
      .tuple(fc.constantFrom(...objects), hostileString, hostileJson)
      .map(([p, key, v]): Mutation => {
        const name = `zz_${key}`;
        const value =
          p.length === 0
            ? { ...(valid as object), [name]: v }
            : edit(valid, p, (parent, k) => ((parent[k] as Record<string, unknown>)[name] = v));
        return { value, field: fieldPath(p) || "(root)", how: "added" };
      });
    arms.push({ weight: 1, arbitrary: added });
  }
  return fc.oneof(...arms);
}

/** Per surface: inputs tried, 5xx or crashes seen, state changes after a refusal. */
export class Tally {
  tried = 0;
  failures = 0;
  stateChanges = 0;

  constructor(readonly surface: string) {}

  line(): string {
    return `# hostile ${this.surface}: ${this.tried} inputs, ${this.failures} 5xx or crashes, ${this.stateChanges} state changes after a refusal (seed ${fuzzSettings().seed})`;
  }
}

/**
 * A suite's scratch directory and tallies: `tally(surface)` starts one; when the
 * suite ends each prints its line and the directory is removed.
 */
export function hostileSuite(prefix: string): { dir: string; tally: (surface: string) => Tally } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const tallies: Tally[] = [];
  after(() => {
    for (const t of tallies) console.log(t.line());
    rmSync(dir, { recursive: true, force: true });
  });
  const tally = (surface: string) => {
    const t = new Tally(surface);
    tallies.push(t);
    return t;
  };
  return { dir, tally };
}

/** A URL can carry only whole code points: a lone surrogate becomes U+FFFD, as UTF-8 would make it. */
const wellFormed = (s: string) => Buffer.from(s, "utf8").toString("utf8");

export interface Answer {
  status: number;
  body: string;
}

/** 2xx or 4xx, never 5xx; a 400 names the field (its first segment) unless the body was replaced whole. */
function judge(tally: Tally, what: string, a: Answer, m?: Mutation): void {
  tally.tried += 1;
  if (a.status >= 500) {
    tally.failures += 1;
    assert.fail(`${what}: ${a.status} ${a.body}`);
  }
  assert.ok(a.status < 500 && a.status >= 200, `${what}: ${a.status}`);
  if (a.status === 400 && m && m.how !== "whole" && m.field !== "(root)") {
    const head = /^[^.[]*/.exec(m.field)![0];
    assert.ok(
      a.body.includes(head) || a.body.includes("zz_"),
      `${what}: the 400 names ${m.field}: ${a.body}`,
    );
  }
}

async function unchanged(tally: Tally, before: unknown, after: unknown, what: string): Promise<void> {
  if (JSON.stringify(before) !== JSON.stringify(after)) {
    tally.stateChanges += 1;
    assert.fail(`${what}: refused, yet the state changed`);
  }
}

/** An HTTP API that answers a request in-process: a Fastify app, or the agent's JsonApi. */
export interface InjectableApp {
  inject(r: {
    method: string;
    url: string;
    headers: Record<string, string>;
    payload?: string;
  }): Promise<{ statusCode: number; body: string }>;
}

/** One request in-process; `auth` is a bearer token, or the headers to send. */
export const send = async (
  app: InjectableApp,
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE",
  url: string,
  body: unknown,
  auth: string | Record<string, string>,
): Promise<Answer> => {
  const headers = typeof auth === "string" ? { authorization: `Bearer ${auth}` } : auth;
  const res = await app.inject({
    method,
    url,
    headers: { ...headers, "content-type": "application/json" },
    ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
  });
  return { status: res.statusCode, body: res.body };
};

export type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

/** One HTTP surface under test: its app, its tally, how callers authenticate, and the state a refusal must not change. */
export interface Surface {
  app: InjectableApp;
  tally: Tally;
  auth: string | Record<string, string>;
  state: () => Promise<unknown> | unknown;
}

/**
 * Each request with its body broken one way at a time (`bodies`: a mutation per
 * draw): a 2xx or a 4xx naming the field, and a refusal changes nothing. `after`
 * runs after each answer (to undo what an accepted one did).
 */
export async function fuzzBodies(
  s: Surface,
  requests: ReadonlyArray<readonly [Method, string, fc.Arbitrary<Mutation>]>,
  after?: (url: string, a: Answer) => Promise<void> | void,
): Promise<void> {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...requests).chain(([m, u, arb]) => arb.map((x) => [m, u, x] as const)),
      async ([method, url, m]) => {
        const before = JSON.stringify(await s.state());
        const a = await send(s.app, method, url, m.value, s.auth);
        judge(s.tally, `${method} ${url} ${m.how} ${m.field}`, a, m);
        if (a.status >= 400) await unchanged(s.tally, before, JSON.stringify(await s.state()), url);
        await after?.(url, a);
      },
    ),
    fuzzSettings(),
  );
}

/**
 * Each route with a hostile string in place of every `:x` (path segments and query
 * strings alike): never a 5xx, and a refusal changes nothing. `body` gives the
 * body a method sends; `after` sees each answer (to check more of it).
 */
export async function fuzzPaths(
  s: Surface,
  routes: ReadonlyArray<readonly [Method, string]>,
  body: (method: Method) => unknown = (m) => (m === "POST" ? {} : undefined),
  after?: (method: Method, url: string, a: Answer) => void,
): Promise<void> {
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...routes), hostileString, async ([method, route], x) => {
      const before = JSON.stringify(await s.state());
      const url = route.replaceAll(":x", encodeURIComponent(wellFormed(x)));
      const a = await send(s.app, method, url, body(method), s.auth);
      judge(s.tally, `${method} ${url.slice(0, 80)}`, a);
      if (a.status >= 400)
        await unchanged(s.tally, before, JSON.stringify(await s.state()), url.slice(0, 80));
      after?.(method, url, a);
    }),
    fuzzSettings(),
  );
}
