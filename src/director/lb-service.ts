/**
 * The control plane's side of load-balancer pairs (groups whose data service is a
 * load balancer): the backends each node should serve (its group's links, resolved against
 * the instances the director knows now, so a scaled or recovered backend group
 * reaches every node within a second, with no deploy), the pair's status for
 * `zonal lb`, and an operator's switchover (the only way the VIP goes back).
 */
import { Conflict, InvalidInput, Unauthorized } from "../lib/errors.js";
import type { ClusterHealth } from "../jobs/cluster-order.js";
import type { LbNodeStatus } from "../jobs/data-service.js";
import { serviceOf } from "../jobs/services.js";
import { clusterVip, leaseStoreOf, storedManifest } from "./clusters.js";
import { agentOf, type DirectorContext } from "./context.js";
import type { GroupManifest, Manifest } from "../manifest/manifest.js";
import type { InstanceRecord } from "../store/instances.js";
import { resolveLinks } from "./spec-builder.js";

/** The group's load-balancer service and its job, when it runs one. */
function balancerOf(g: GroupManifest) {
  const found = serviceOf(g);
  const lb = found?.service.loadBalancer;
  return found && lb ? { lb, job: found.job, service: found.service } : undefined;
}
const isLb = (g: GroupManifest) => balancerOf(g) !== undefined;

export interface LbView {
  group: string;
  vip: string | null;
  holder: { member: string; vmId: string; token: number } | null;
  /** Each node, with its HAProxy master's pid (a reload keeps it; a restart changes it). */
  nodes: Array<
    {
      member: string;
      key: string;
      zone: string;
      address: string | null;
      pid?: number | null;
    } & Partial<LbNodeStatus>
  >;
  /** Whole (active and a warm standby), degraded or down, as the service judges its nodes. */
  health: ClusterHealth | null;
}

/**
 * How long a drain waits for every LB node to stop sending an instance new
 * connections and for the connections it had to finish (HAProxy's old workers end
 * by `hard-stop-after`, 30 s, at the latest).
 */
export const DRAIN_TIMEOUT_MS = 35_000;

/** What a drain did: how many pairs send the instance traffic, how long it took, and what was still pending when it gave up. */
export interface DrainResult {
  pairs: string[];
  tookMs: number;
  pending: string[];
}

export class LbService {
  constructor(private readonly ctx: DirectorContext) {}

  /** For a node (by its VM token): its group's links as of now, and its pair's members. */
  async backends(token: string) {
    const inst = await this.ctx.store.instances.byToken(token);
    if (!inst) throw new Unauthorized("unknown VM token");
    const manifest = await storedManifest(this.ctx, inst.deployment);
    const group = manifest.instance_groups.find((g) => g.name === inst.group);
    const balancer = group && balancerOf(group);
    if (!balancer) throw new InvalidInput(`${inst.group} runs no load balancer`);
    const known = await this.ctx.store.instances.list();
    const statusPort = balancer.lb.statusPort(balancer.job.properties);
    const links = resolveLinks(manifest, group, known);
    const linked = new Set(Object.values(links).flatMap((l) => l.instances.map((i) => i.id)));
    return {
      links,
      // Being updated or rebuilt: no new connections until it runs again (see drain).
      draining: known.filter((i) => i.state === "updating" && linked.has(i.id)).map((i) => i.id),
      peers: known
        .filter((i) => i.deployment === inst.deployment && i.group === inst.group && i.address)
        .map((i) => ({ member: `m${i.index}`, address: i.address!, statusPort })),
    };
  }

  /** The LB pairs (`deployment/group`) whose backends link to `deployment`'s `group`. */
  private async pairsServing(
    deployment: string,
    group: string,
  ): Promise<Array<{ deployment: string; group: string }>> {
    const out: Array<{ deployment: string; group: string }> = [];
    for (const d of await this.ctx.store.deployments.list()) {
      const m = (d.manifest as { manifest: Manifest }).manifest;
      for (const g of m.instance_groups.filter(isLb))
        if (Object.values(g.links).some((l) => (l.deployment ?? m.name) === deployment && l.group === group))
          out.push({ deployment: m.name, group: g.name });
    }
    return out;
  }

  /**
   * Takes an instance out of every LB pair that sends it traffic, before it stops:
   * the control plane already lists it as draining (state `updating`) or not at all
   * (`deleting`); this waits until every node that answers has reloaded without it
   * (its server in maintenance, or gone) and no worker of an earlier config still
   * runs (their connections finished). Gives up after `timeoutMs`, saying what was pending.
   */
  async drain(inst: InstanceRecord, timeoutMs = DRAIN_TIMEOUT_MS): Promise<DrainResult> {
    const pairs = await this.pairsServing(inst.deployment, inst.group);
    const server = `${inst.group}-${inst.index}`;
    const t0 = Date.now();
    let pending: string[] = [];
    for (;;) {
      pending = [];
      for (const p of pairs) {
        const view = (await this.status(p.deployment).catch(() => [])).find((v) => v.group === p.group);
        for (const n of view?.nodes ?? []) {
          if ((n.role as string) === "unreachable") continue; // a dead node sends nothing
          const serving = (n.backends ?? []).filter(
            (b) => b.server === server && !b.status.startsWith("MAINT"),
          );
          // A status HAProxy did not give (its master socket is away for a moment
          // while it re-executes on a reload) proves nothing: ask again.
          if (n.oldWorkers === null || n.oldWorkers === undefined)
            pending.push(`${p.deployment}/${n.key} did not say what its HAProxy runs`);
          else if (serving.length > 0)
            pending.push(`${p.deployment}/${n.key} still sends it connections (${serving[0]!.status})`);
          else if (n.oldWorkers > 0)
            pending.push(
              `${p.deployment}/${n.key} has ${n.oldWorkers} worker(s) of an earlier config finishing connections`,
            );
        }
      }
      if (pending.length === 0 || Date.now() - t0 > timeoutMs) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    return { pairs: pairs.map((p) => `${p.deployment}/${p.group}`), tookMs: Date.now() - t0, pending };
  }

  async status(deployment: string): Promise<LbView[]> {
    const manifest = await storedManifest(this.ctx, deployment);
    const instances = await this.ctx.store.instances.list(deployment);
    const out: LbView[] = [];
    for (const g of manifest.instance_groups.filter(isLb)) {
      const lease = await leaseStoreOf(this.ctx, manifest)
        .read(`${deployment}/${g.name}/leader`)
        .catch(() => undefined);
      const job = balancerOf(g)!.job.name;
      const nodes = await Promise.all(
        instances
          .filter((i) => i.group === g.name)
          .map(async (i) => {
            let s: Partial<LbNodeStatus> & { pid?: number | null } = {};
            try {
              const js = await agentOf(this.ctx, i, 2000).jobStatus(job);
              s = {
                ...((js.controller ?? {}) as Partial<LbNodeStatus>),
                pid: (js.pid as number | undefined) ?? null,
              };
            } catch {
              s = { role: "unreachable" as LbNodeStatus["role"] };
            }
            return {
              member: `m${i.index}`,
              key: `${i.group}/${i.index}`,
              zone: i.zone,
              address: i.address,
              ...s,
            };
          }),
      );
      const holder = lease
        ? {
            member: (JSON.parse(lease.value) as { member: string }).member,
            vmId: lease.holder,
            token: lease.token,
          }
        : null;
      out.push({
        group: g.name,
        vip: await clusterVip(this.ctx, deployment, g, false),
        holder,
        nodes,
        health:
          balancerOf(g)!.service.health?.(
            nodes.map((n) => ({ member: n.member, role: n.role ?? "unknown" })),
            holder?.member ?? null,
          ) ?? null,
      });
    }
    return out;
  }

  /**
   * Moves the VIP of `group`'s pair (default: the deployment's first) to `to`
   * (default: the standby); resolves once `to` serves it.
   */
  async switchover(deployment: string, to?: string, timeoutMs = 30_000, group?: string) {
    const manifest = await storedManifest(this.ctx, deployment);
    const pairOf = (all: LbView[]) => (group ? all.find((p) => p.group === group) : all[0]);
    const pair = pairOf(await this.status(deployment));
    if (!pair)
      throw new InvalidInput(
        `deployment ${deployment} has no load-balancer group${group ? ` ${group}` : ""}`,
      );
    if (!pair.holder) throw new Conflict(`the pair ${deployment}/${pair.group} has no active node`);
    const target =
      to ?? pair.nodes.find((n) => n.member !== pair.holder!.member && n.role === "standby")?.member;
    if (!target) throw new Conflict("no standby node to switch over to");
    if (target === pair.holder.member) throw new InvalidInput(`to: ${target} is already active`);
    if (!pair.nodes.some((n) => n.member === target && n.role === "standby"))
      throw new InvalidInput(`to: ${target} is not a running standby`);
    const store = leaseStoreOf(this.ctx, manifest);
    const key = `${deployment}/${pair.group}/switchover`;
    const t0 = Date.now();
    const lease = await store.acquire(key, "operator", timeoutMs, target);
    if (!lease) throw new Conflict("another switchover is in progress");
    try {
      for (;;) {
        const now = pairOf(await this.status(deployment));
        if (now?.holder?.member === target && now.nodes.find((n) => n.member === target)?.role === "active")
          return { from: pair.holder.member, to: target, tookMs: Date.now() - t0 };
        if (Date.now() - t0 > timeoutMs)
          throw new Conflict(`${target} did not become active in ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      await store.release(key, "operator", lease.token).catch(() => undefined);
    }
  }
}
