/**
 * What clustered groups get from the director: the passwords their data services
 * need (made once per deployment), a virtual address per cluster that follows the leader,
 * the lease store the members elect a leader in, and the spec's cluster section.
 * The director also breaks a fenced VM's leases, so a cluster fails over at once
 * instead of waiting out the TTL.
 */
import { randomBytes } from "node:crypto";
import type { ClusterSpec } from "../jobs/job-type.js";
import { EtcdLeaseStore } from "../ha/etcd/store.js";
import { fencedKey, type LeaseStore } from "../ha/lease-store.js";
import { NotFound } from "../lib/errors.js";
import { Mutex } from "../lib/mutex.js";
import type { DirectorContext } from "./context.js";
import { isClustered, type GroupManifest, type Manifest } from "../manifest/manifest.js";
import { secretNamesOf } from "../jobs/services.js";

/** What every spec of a deployment carries besides its group's jobs. */
export interface SpecExtras {
  secrets: Record<string, string>;
  /** Per clustered group: its cluster section, without the member's own name. */
  clusters: Record<string, Omit<ClusterSpec, "member">>;
}

/** Who holds the leases only the control plane writes (a cluster's markers). */
export const CONTROL_PLANE_HOLDER = "control-plane";

export const NO_EXTRAS: SpecExtras = { secrets: {}, clusters: {} };

/** The manifest a deployment was last deployed with. Rejects NotFound for an unknown deployment. */
export async function storedManifest(ctx: DirectorContext, deployment: string): Promise<Manifest> {
  const d = await ctx.store.deployments.get(deployment);
  if (!d) throw new NotFound(`deployment ${deployment} does not exist`);
  return (d.manifest as { manifest: Manifest }).manifest;
}

/**
 * The deployment's passwords, kept sealed in the store. With `make`, the manifest's
 * services' secrets that do not exist yet are generated (once: a deployment keeps
 * its passwords) and stored first.
 */
export async function deploymentSecrets(
  ctx: DirectorContext,
  deployment: string,
  make?: Manifest,
): Promise<Record<string, string>> {
  return secretsMade.run(async () => {
    const key = `secrets:${deployment}`;
    const text = await ctx.store.getSecret(key);
    const secrets = text ? (JSON.parse(text) as Record<string, string>) : {};
    const missing = make
      ? make.instance_groups.flatMap((g) => secretNamesOf(g)).filter((n) => secrets[n] === undefined)
      : [];
    if (missing.length === 0) return secrets;
    for (const n of missing) secrets[n] = randomBytes(18).toString("base64url");
    await ctx.store.setSecret(key, JSON.stringify(secrets));
    return secrets;
  });
}
/** One maker at a time: two specs built at once must carry the same passwords. */
const secretsMade = new Mutex();

/**
 * Each cluster's member token (members show it to each other's status API), made
 * once per clustered group and kept sealed with the deployment's other secrets.
 */
async function memberTokens(
  ctx: DirectorContext,
  deployment: string,
  groups: string[],
): Promise<Record<string, string>> {
  return tokensMade.run(() => readOrMakeTokens(ctx, deployment, groups));
}
/** One maker at a time: two specs built at once must carry the same token. */
const tokensMade = new Mutex();

async function readOrMakeTokens(
  ctx: DirectorContext,
  deployment: string,
  groups: string[],
): Promise<Record<string, string>> {
  const key = `member-tokens:${deployment}`;
  const text = await ctx.store.getSecret(key);
  const tokens = text ? (JSON.parse(text) as Record<string, string>) : {};
  const missing = groups.filter((g) => !tokens[g]);
  if (missing.length === 0) return tokens;
  for (const g of missing) tokens[g] = randomBytes(24).toString("base64url");
  await ctx.store.setSecret(key, JSON.stringify(tokens));
  return tokens;
}

const vipMetadata = (ctx: DirectorContext, deployment: string, group: string) => ({
  director: ctx.directorId,
  deployment,
  group,
  role: "cluster-vip",
});

/** The cluster's virtual address (allocated in its first zone when `allocate`, else null until it exists). */
export async function clusterVip(
  ctx: DirectorContext,
  deployment: string,
  g: GroupManifest,
  allocate: boolean,
): Promise<string | null> {
  const md = vipMetadata(ctx, deployment, g.name);
  const [found] = await ctx.cloud.listAddresses({ metadata: md });
  if (found) return found.address;
  if (!allocate || g.zones.length === 0) return null;
  return (await ctx.cloud.allocateAddress({ zone: g.zones[0]!, metadata: md })).address;
}

export async function specExtras(
  ctx: DirectorContext,
  m: Manifest,
  o: { allocate: boolean },
): Promise<SpecExtras> {
  const clustered = m.instance_groups.filter(isClustered);
  const secrets = await deploymentSecrets(ctx, m.name, o.allocate ? m : undefined);
  const clusters: SpecExtras["clusters"] = {};
  const tokens =
    clustered.length > 0
      ? await memberTokens(
          ctx,
          m.name,
          clustered.map((g) => g.name),
        )
      : {};
  for (const g of clustered) {
    clusters[g.name] = {
      key: `${m.name}/${g.name}`,
      members: Array.from({ length: g.instances }, (_, i) => `m${i}`),
      lease:
        m.leases.store === "etcd"
          ? { store: "etcd", endpoints: m.leases.etcd_endpoints }
          : { store: "embedded", url: ctx.controlPlaneUrl },
      ttl_ms: m.leases.ttl,
      renew_ms: m.leases.renew,
      vip: await clusterVip(ctx, m.name, g, o.allocate),
      control_plane_url: ctx.controlPlaneUrl,
      member_token: tokens[g.name]!,
    };
  }
  return { secrets, clusters };
}

/**
 * What a deleted deployment leaves outside its VMs and disks: its leases (live or
 * expired), its clusters' VIPs and its passwords. Only once its VMs are gone.
 * Idempotent; returns what it removed, for the task's events.
 */
export async function releaseDeploymentResources(
  ctx: DirectorContext,
  m: Pick<Manifest, "name" | "leases">,
): Promise<string[]> {
  const removed: string[] = [];
  const leases = await leaseStoreOf(ctx, m).purge(`${m.name}/`);
  if (leases > 0) removed.push(`${leases} lease(s)`);
  const vips = await ctx.cloud.listAddresses({ metadata: { director: ctx.directorId, deployment: m.name } });
  for (const v of vips) await ctx.cloud.releaseAddress(v.address);
  if (vips.length > 0) removed.push(`VIP(s) ${vips.map((v) => v.address).join(", ")}`);
  if (await ctx.store.settings.get(`secrets:${m.name}`)) {
    await ctx.store.settings.delete(`secrets:${m.name}`);
    removed.push("its passwords");
  }
  if (await ctx.store.settings.get(`member-tokens:${m.name}`)) {
    await ctx.store.settings.delete(`member-tokens:${m.name}`);
    removed.push("its clusters' member tokens");
  }
  return removed;
}

/** The lease store a deployment's clusters use. */
export function leaseStoreOf(ctx: DirectorContext, m: Pick<Manifest, "leases">): LeaseStore {
  return m.leases.store === "etcd" ? new EtcdLeaseStore(m.leases.etcd_endpoints) : ctx.leases;
}

/**
 * Breaks every lease a fenced VM holds in its deployment's store (leader, member
 * keys). Only ever called once the cloud has powered the VM off.
 */
export async function breakLeasesOf(
  ctx: DirectorContext,
  m: Pick<Manifest, "name" | "leases">,
  vmId: string,
): Promise<string[]> {
  const store = leaseStoreOf(ctx, m);
  const held =
    m.leases.store === "etcd"
      ? (await store.list(`${m.name}/`)).filter((l) => l.holder === vmId)
      : await ctx.leases.heldBy(vmId);
  const broken: string[] = [];
  for (const l of held) {
    if (!(await store.break(l.key, vmId))) continue;
    broken.push(l.key);
    // A leader's members may have promised it (failsafe) not to compete: the marker
    // tells them it was fenced, so the promise holds nobody back.
    if (l.key.endsWith("/leader"))
      await store.acquire(
        fencedKey(l.key.slice(0, -"/leader".length), vmId),
        CONTROL_PLANE_HOLDER,
        60_000,
        vmId,
      );
  }
  return broken;
}
