/** `GROUP` or `GROUP/INDEX`: which instances a recreate, stop or start acts on. */
import { InvalidInput, NotFound } from "../lib/errors.js";
import type { InstanceRecord } from "../store/instances.js";

export interface Target {
  group?: string;
  index?: number;
}

export function parseTarget(text: string | undefined): Target {
  if (text === undefined || text === "") return {};
  const m = /^([a-z0-9][a-z0-9_-]*)(?:\/(\d+))?$/.exec(text);
  if (!m) throw new InvalidInput(`target: expected GROUP or GROUP/INDEX, got "${text}"`);
  return { group: m[1]!, ...(m[2] !== undefined ? { index: Number(m[2]) } : {}) };
}

export function describeTarget(t: Target): string {
  if (t.group === undefined) return "all instances";
  return t.index === undefined ? `group ${t.group}` : `${t.group}/${t.index}`;
}

/** The instances a target names; NotFound when it names none. */
export function selectTargets(instances: InstanceRecord[], t: Target, deployment: string): InstanceRecord[] {
  const picked = instances.filter(
    (i) => (t.group === undefined || i.group === t.group) && (t.index === undefined || i.index === t.index),
  );
  if (picked.length === 0) throw new NotFound(`deployment ${deployment} has no ${describeTarget(t)}`);
  return picked;
}
