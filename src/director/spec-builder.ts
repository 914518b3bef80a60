/**
 * From a manifest group to the spec its instances' agents apply. Pure. The spec's
 * version is a hash of its content, so "did this instance's spec change?" is a
 * string comparison, for the planner and in heartbeats alike.
 */
import { createHash } from "node:crypto";
import type { Link } from "../agent/spec.js";
import type { ClusterSpec } from "../jobs/job-type.js";
import type { InstanceRecord } from "../store/instances.js";
import { NO_EXTRAS, type SpecExtras } from "./clusters.js";
import { secretNamesOf } from "../jobs/services.js";
import type { GroupManifest, Manifest } from "../manifest/manifest.js";

export interface AgentSpec {
  version: string;
  instance: { deployment: string; group: string; index: number; id: string };
  persistent_disk: { id: string } | null;
  jobs: Array<{
    name: string;
    type: string;
    config: Record<string, unknown>;
    hooks: GroupManifest["jobs"][number]["hooks"];
    hook_timeout_ms: number;
    start_timeout_ms: number;
    stop_timeout_ms: number;
  }>;
  links: Record<string, Link>;
  cluster: ClusterSpec | null;
  secrets: Record<string, string>;
}

/** Addresses of the instances a group links to, from the instances the director knows. */
export function resolveLinks(
  manifest: Manifest,
  group: GroupManifest,
  known: InstanceRecord[],
): Record<string, Link> {
  const links: Record<string, Link> = {};
  for (const [name, ref] of Object.entries(group.links)) {
    const deployment = ref.deployment ?? manifest.name;
    links[name] = {
      deployment,
      group: ref.group,
      instances: known
        .filter(
          (i) =>
            i.deployment === deployment &&
            i.group === ref.group &&
            i.address !== null &&
            i.state !== "deleting",
        )
        .sort((a, b) => a.index - b.index)
        .map((i) => ({ id: i.id, index: i.index, zone: i.zone, address: i.address! })),
    };
  }
  return links;
}

export function buildSpec(o: {
  manifest: Manifest;
  group: GroupManifest;
  instance: { id: string; index: number };
  diskId: string | null;
  links: Record<string, Link>;
  /** Secrets and cluster sections of the deployment (see clusters.ts). */
  extras?: SpecExtras;
}): AgentSpec {
  const extras = o.extras ?? NO_EXTRAS;
  const cluster = extras.clusters[o.group.name];
  const body = {
    instance: {
      deployment: o.manifest.name,
      group: o.group.name,
      index: o.instance.index,
      id: o.instance.id,
    },
    persistent_disk: o.diskId ? { id: o.diskId } : null,
    jobs: o.group.jobs.map((j) => ({
      name: j.name,
      type: j.type,
      config: j.properties,
      hooks: j.hooks,
      hook_timeout_ms: j.hook_timeout,
      start_timeout_ms: j.start_timeout,
      stop_timeout_ms: j.stop_timeout,
    })),
    links: o.links,
    cluster: cluster ? { ...cluster, member: `m${o.instance.index}` } : null,
    // A group gets only the passwords its own services need.
    secrets: Object.fromEntries(
      secretNamesOf(o.group).flatMap((k) =>
        extras.secrets[k] === undefined ? [] : [[k, extras.secrets[k]]],
      ),
    ),
  };
  return { version: specHash(body), ...body };
}

/** A stable hash of a spec's content (key order does not matter). */
export function specHash(value: unknown): string {
  return createHash("sha256").update(canonical(value)).digest("hex").slice(0, 16);
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v && typeof v === "object") {
    return `{${Object.keys(v)
      .sort()
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(v);
}
