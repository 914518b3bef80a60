/**
 * The control plane's side of clusters: who may use which leases, moving a
 * cluster's VIP to the lease holder (checking its fencing token first), fencing a
 * leader on a member's request (only when its agent does not answer), the
 * cluster's status, switchovers, and bindings (users of the group's data service,
 * made through its writer by the service's plug-in).
 */
import { randomBytes } from "node:crypto";
import { isIP } from "node:net";
import type { ServiceEndpoint } from "../jobs/data-service.js";
import { serviceOf } from "../jobs/services.js";
import {
  Conflict,
  InvalidInput,
  NotFound,
  TooManyRequests,
  Unauthorized,
  Unavailable,
} from "../lib/errors.js";
import { tokensEqual } from "../lib/http-errors.js";
import type { InstanceRecord } from "../store/instances.js";
import type { LeaseCaller, LeaseIntent } from "../ha/embedded/api.js";
import {
  CONTROL_PLANE_HOLDER,
  breakLeasesOf,
  clusterVip,
  deploymentSecrets,
  leaseStoreOf,
  storedManifest,
} from "./clusters.js";
import { agentOf, type DirectorContext, type ServiceCa } from "./context.js";
import type { HeartbeatBook } from "./heartbeats.js";
import { failureCode } from "../lib/fetch.js";

/**
 * A member asks to fence its leader once it refused a connection or went unanswered
 * for about a second; the control plane agrees only if the leader's agent is dead
 * to it as well: its agent port refuses connections (nothing listens there, on a VM
 * that did beat before: its processes died), or it is silent — no heartbeat for
 * FENCE_SILENCE_MS (agents beat every HEARTBEAT_INTERVAL_MS) and no answer at all to
 * a direct call within FENCE_PROBE_MS. Any answer — a 401, a 5xx, a TLS error —
 * means the VM runs: no fencing. A VM that has not beaten since this control plane
 * started (or since it was made: an agent still booting) is not silent either: there
 * is no silence to measure, and its lease expires by itself.
 */
export const FENCE_SILENCE_MS = 1000;
export const FENCE_PROBE_MS = 400;
/** A member may ask to fence at most this often (a hostile VM cannot make the control plane probe without end). */
export const FENCE_REQUEST_INTERVAL_MS = 200;
/** The longest TTL a VM may give a lease (the manifest's longest `leases.ttl`). */
export const AGENT_LEASE_TTL_MAX_MS = 120_000;
/** A cluster's init marker lasts a day past its leader's last refresh (once a minute). */
const INITIALIZED_TTL_MS = 86_400_000;
/** Who held init markers before the control plane kept them. */
const LEGACY_MARKER_HOLDER = "cluster";
/** Network failures that are silence (nothing answered), as fetch reports them. */
const SILENT = new Set([
  "TimeoutError",
  "AbortError",
  "ECONNREFUSED",
  "ECONNRESET",
  "EHOSTUNREACH",
  "ENETUNREACH",
]);
import type { ClusterHealth } from "../jobs/cluster-order.js";
import { isClustered, type GroupManifest, type Manifest } from "../manifest/manifest.js";

export interface MemberView {
  member: string;
  key: string;
  zone: string;
  address: string | null;
  role: string;
  timeline: number | null;
  /** Its position in the service's log (an LSN, a seqno). */
  position: string | null;
  /** How far behind the leader, in the service's unit (bytes of WAL, transactions). */
  lag: number | null;
  /** The member a replica streams WAL from now (its address if it is no member); null when it does not stream. */
  streamsFrom: string | null;
  /** Members in the component it belongs to, for services that have one (Galera); null otherwise. */
  size: number | null;
  decision: string | null;
}

export interface ClusterView {
  group: string;
  vip: string | null;
  leader: { member: string; vmId: string; token: number } | null;
  members: MemberView[];
  /** Whole, degraded or down, as the group's service judges its members (null: it does not say). */
  health: ClusterHealth | null;
}

/** A binding made through the director's API: the group, and the service's credentials. */
export interface BindingView {
  group: string;
  username: string;
  credentials: Record<string, unknown>;
}

/** Binding user names zonal makes: u_ and 12 hex digits. */
export const newUsername = () => `u_${randomBytes(6).toString("hex")}`;

/** At most one certificate per instance this often (each is an openssl run on the control plane). */
export const CERTIFICATE_INTERVAL_MS = 2000;

export class ClusterService {
  /** When a fencing request for each VM was last refused and recorded. */
  private readonly refusedAt = new Map<string, number>();
  /** When each member (instance id) last asked to fence. */
  private readonly askedAt = new Map<string, number>();
  /** When each instance last got a certificate. */
  private readonly certifiedAt = new Map<string, number>();

  constructor(
    private readonly ctx: DirectorContext,
    private readonly apiToken: string,
    private readonly heartbeats: HeartbeatBook,
  ) {}

  /**
   * Lease API access. The control plane's own token may do anything. A VM reads only
   * its own group's keys (`<deployment>/<group>/…`: an app beside a cluster can
   * neither read nor write that cluster's leases) and changes only the leader lease
   * and its own member key, always as itself: the markers (`initialized`, `fenced/`,
   * `switchover`) are the control plane's. What it publishes names only itself, and
   * its TTL is at most AGENT_LEASE_TTL_MAX_MS.
   */
  async authorize(token: string, key: string, intent: LeaseIntent): Promise<LeaseCaller | undefined> {
    if (tokensEqual(token, this.apiToken)) return { access: "admin" };
    const inst = await this.ctx.store.instances.byToken(token);
    // A VM not yet given an address publishes nothing: its identity could not be checked.
    if (!inst?.vmId || !inst.address) return undefined;
    const group = `${inst.deployment}/${inst.group}/`;
    if (!key.startsWith(group)) return undefined;
    const member = `m${inst.index}`;
    const rest = key.slice(group.length);
    if (intent === "write" && rest !== "leader" && rest !== `members/${member}`) return undefined;
    return {
      access: "agent",
      holder: inst.vmId,
      maxTtlMs: AGENT_LEASE_TTL_MAX_MS,
      identity: { vmId: inst.vmId, member, address: inst.address },
    };
  }

  /**
   * Records that the caller's cluster was initialized (its first leader ran initdb):
   * a marker the control plane holds, so no member of a cluster that has data ever
   * bootstraps a new one. Only the leader lease's holder may set (and refresh) it.
   */
  async markInitialized(token: string, key: string): Promise<{ initialized: true }> {
    const { inst, manifest } = await this.caller(token, key);
    const store = leaseStoreOf(this.ctx, manifest);
    const lease = await store.read(`${key}/leader`);
    if (!lease || lease.holder !== inst.vmId)
      throw new Conflict(`${inst.vmId} does not hold the leader lease of ${key}`);
    const marker = `${key}/initialized`;
    // A marker an earlier version left (held by "cluster") is taken over, so it is refreshed.
    if ((await store.read(marker))?.holder === LEGACY_MARKER_HOLDER)
      await store.break(marker, LEGACY_MARKER_HOLDER);
    if (!(await store.acquire(marker, CONTROL_PLANE_HOLDER, INITIALIZED_TTL_MS, `m${inst.index}`)))
      throw new Conflict(`the init marker of ${key} is held by someone else`);
    return { initialized: true };
  }

  private async caller(
    token: string,
    key: string,
  ): Promise<{ inst: InstanceRecord; manifest: Manifest; group: GroupManifest }> {
    const inst = await this.ctx.store.instances.byToken(token);
    if (!inst || key !== `${inst.deployment}/${inst.group}`)
      throw new Unauthorized(`not a member of cluster ${key}`);
    const manifest = await storedManifest(this.ctx, inst.deployment);
    const group = manifest.instance_groups.find((g) => g.name === inst.group);
    if (!group || !isClustered(group)) throw new InvalidInput(`${inst.group} is not a clustered group`);
    return { inst, manifest, group };
  }

  /** Moves the cluster's VIP to the caller's VM, if it holds the leader lease with `leaseToken`. */
  async moveVip(token: string, key: string, leaseToken: number): Promise<{ address: string }> {
    const { inst, manifest, group } = await this.caller(token, key);
    const lease = await leaseStoreOf(this.ctx, manifest).read(`${key}/leader`);
    if (!lease || lease.holder !== inst.vmId || lease.token !== leaseToken) {
      throw new Conflict(
        // The holder's token stays the holder's: a refusal never shows it.
        `${inst.vmId} does not hold the leader lease of ${key} with token ${leaseToken} (holder ${lease?.holder ?? "none"})`,
      );
    }
    const vip = await clusterVip(this.ctx, manifest.name, group, false);
    if (!vip) throw new NotFound(`cluster ${key} has no virtual address`);
    await this.ctx.cloud.assignAddress(vip, inst.vmId!);
    await this.event(
      manifest.name,
      `cluster VIP ${vip} moved to ${inst.group}/${inst.index} (${inst.vmId}, lease token ${leaseToken})`,
    );
    return { address: vip };
  }

  /**
   * Whether the control plane holds `inst`'s VM silent (it beat before, has not for
   * FENCE_SILENCE_MS, and a direct call gets no answer), and why (or why not).
   */
  private async silence(inst: InstanceRecord): Promise<{ silent: boolean; why: string }> {
    const now = Date.now();
    const beat = this.heartbeats.lastOf(inst.vmId);
    let code: string;
    try {
      await agentOf(this.ctx, inst, FENCE_PROBE_MS).info();
      return { silent: false, why: "its agent answers" };
    } catch (err) {
      code = failureCode((err as { cause?: unknown }).cause ?? err);
      if (!(err instanceof Unavailable) || !(err as { cause?: unknown }).cause || !SILENT.has(code))
        return { silent: false, why: `its agent answered (${code})` }; // an answer of any kind: the VM runs
    }
    if (!beat)
      return {
        silent: false,
        why: "it has not beaten since this control plane started (booting, or the control plane restarted): its lease expires by itself",
      };
    if (code === "ECONNREFUSED")
      return { silent: true, why: "its agent, which did beat, refuses connections" };
    if (now - beat.at < FENCE_SILENCE_MS)
      return { silent: false, why: `its last heartbeat came ${now - beat.at} ms ago` };
    return {
      silent: true,
      why: `no heartbeat for ${now - beat.at} ms and its agent did not answer (${code})`,
    };
  }

  /**
   * A member reports its leader unanswered (refused, or silent for about a second).
   * The control plane fences it only if it is silent to the control plane too, then
   * breaks its leases at once. Each request and its outcome is an event.
   */
  async fence(token: string, key: string, vmId: string): Promise<{ fenced: boolean; broken: string[] }> {
    const { inst: caller, manifest } = await this.caller(token, key);
    const now = Date.now();
    if (now - (this.askedAt.get(caller.id) ?? 0) < FENCE_REQUEST_INTERVAL_MS)
      throw new TooManyRequests(
        `${caller.group}/${caller.index} asked to fence less than ${FENCE_REQUEST_INTERVAL_MS} ms ago`,
      );
    this.askedAt.set(caller.id, now);
    const suspect = (await this.ctx.store.instances.list(manifest.name)).find(
      (i) => i.vmId === vmId && i.group === caller.group,
    );
    if (!suspect) throw new NotFound(`${vmId} is not a member of ${key}`);
    // Not under the instance's lock, on purpose: it acts only on the VM the member
    // names (powers it off, breaks the leases that VM holds), never on the instance's
    // next VM, so a deploy step or a recovery working on the instance meanwhile is no
    // danger — and a request refused or held while the health monitor recovers the
    // same instance delayed failovers by a second and more in our runs (an etcd-lease
    // crash failover took 3.9 s instead of 2.2 s when the two met).
    const { silent, why } = await this.silence(suspect);
    if (!silent) {
      await this.refused(manifest.name, suspect, caller, why);
      throw new Conflict(`${vmId}: ${why}; not fencing it`);
    }
    try {
      await this.ctx.cloud.powerOffVm(vmId);
    } catch (err) {
      if (!(err instanceof NotFound)) throw err;
    }
    const broken = await breakLeasesOf(this.ctx, manifest, vmId);
    await this.event(
      manifest.name,
      `fenced ${suspect.group}/${suspect.index} (${vmId}) for ${caller.group}/${caller.index}: ${why}; broke ${broken.join(", ") || "no leases"}`,
    );
    return { fenced: true, broken };
  }

  /** A refused fencing request, as an event (members ask again every few seconds: one per VM in 10 s). */
  private async refused(
    deployment: string,
    suspect: InstanceRecord,
    caller: InstanceRecord,
    why: string,
  ): Promise<void> {
    if (Date.now() - (this.refusedAt.get(suspect.vmId!) ?? 0) <= 10_000) return;
    this.refusedAt.set(suspect.vmId!, Date.now());
    await this.event(
      deployment,
      `not fencing ${suspect.group}/${suspect.index} (${suspect.vmId}) for ${caller.group}/${caller.index}: ${why} (repeated requests within 10 s are not recorded)`,
    );
  }

  /** Each clustered group's leader, VIP and members (their state as the group's service reads it). */
  async status(deployment: string): Promise<ClusterView[]> {
    const manifest = await storedManifest(this.ctx, deployment);
    const instances = await this.ctx.store.instances.list(deployment);
    const out: ClusterView[] = [];
    for (const g of manifest.instance_groups) {
      const found = isClustered(g) ? serviceOf(g) : undefined;
      const readMember = found?.service.member;
      if (!found || !readMember) continue;
      const { service, job } = found;
      const key = `${deployment}/${g.name}`;
      const lease = await leaseStoreOf(this.ctx, manifest)
        .read(`${key}/leader`)
        .catch(() => undefined);
      const leaderMember = lease ? (JSON.parse(lease.value) as { member: string }).member : null;
      const members = await Promise.all(
        instances
          .filter((i) => i.group === g.name)
          .map(async (i): Promise<MemberView> => {
            const state = await agentOf(this.ctx, i, 2000)
              .jobStatus(job.name)
              .then(
                (s) => readMember(s.controller ?? {}),
                () => ({ ...readMember({}), role: "unreachable" }),
              );
            return {
              member: `m${i.index}`,
              key: `${i.group}/${i.index}`,
              zone: i.zone,
              address: i.address,
              role: state.role,
              timeline: state.timeline,
              position: state.position,
              lag: null,
              streamsFrom: state.upstream,
              size: state.size ?? null,
              decision: state.decision,
            };
          }),
      );
      const leaderView = members.find((m) => m.member === leaderMember);
      const top = leaderView?.position ?? null;
      // A member on another timeline than the leader's is not behind by a distance: it
      // has not reached the leader's fork yet (its lag is unknown, so not caught up).
      const forked = (m: MemberView) =>
        m.timeline !== null && leaderView?.timeline != null && m.timeline !== leaderView.timeline;
      for (const m of members) {
        const upstream = members.find((x) => x.address !== null && x.address === m.streamsFrom);
        if (upstream) m.streamsFrom = upstream.member;
        if (top !== null && m.position !== null && !forked(m)) m.lag = service.lag?.(top, m.position) ?? null;
      }
      out.push({
        group: g.name,
        vip: await clusterVip(this.ctx, deployment, g, false),
        leader:
          lease && leaderMember ? { member: leaderMember, vmId: lease.holder, token: lease.token } : null,
        members,
        health: service.health?.(members, lease ? leaderMember : null) ?? null,
      });
    }
    return out;
  }

  /**
   * An operator's forced bootstrap of `group` from `member`, for a cluster that cannot
   * choose one itself (a member's position is unknown, or the histories differ): a
   * marker the members read while they wait to start. Resolves once `member` leads;
   * the marker is removed then (or after `timeoutMs`), so no later start reads it.
   */
  async forceBootstrap(
    deployment: string,
    group: string,
    member: string,
    timeoutMs = 300_000,
  ): Promise<{ group: string; member: string; warning: string; tookMs: number }> {
    const manifest = await storedManifest(this.ctx, deployment);
    const g = manifest.instance_groups.find((x) => x.name === group);
    if (!g) throw new NotFound(`deployment ${deployment} has no group ${group}`);
    const forced = isClustered(g) ? serviceOf(g)?.service.forcedBootstrap : undefined;
    if (!forced) throw new InvalidInput(`group: ${group}'s service has no forced bootstrap`);
    if (!Array.from({ length: g.instances }, (_, i) => `m${i}`).includes(member))
      throw new InvalidInput(`member: ${group} has no member ${member} (m0 to m${g.instances - 1})`);
    const key = `${deployment}/${group}`;
    const store = leaseStoreOf(this.ctx, manifest);
    const running = await store.read(`${key}/leader`);
    if (running)
      throw new Conflict(
        `${group} runs (${(JSON.parse(running.value) as { member: string }).member} leads): nothing to bootstrap`,
      );
    const t0 = Date.now();
    const marker = await store.acquire(`${key}/bootstrap`, "operator", timeoutMs, member);
    if (!marker) throw new Conflict("another forced bootstrap is in progress");
    await this.event(deployment, `an operator forced ${group}/${member} to bootstrap: ${forced.warning}`);
    try {
      for (;;) {
        const now = await store.read(`${key}/leader`);
        if (now && (JSON.parse(now.value) as { member: string }).member === member) break;
        if (Date.now() - t0 > timeoutMs)
          throw new Conflict(
            `${member} did not bootstrap ${group} in ${timeoutMs} ms (is it booted and stopped?)`,
          );
        await new Promise((r) => setTimeout(r, 250));
      }
    } finally {
      await store.release(`${key}/bootstrap`, "operator", marker.token).catch(() => undefined);
    }
    return { group, member, warning: forced.warning, tookMs: Date.now() - t0 };
  }

  /**
   * Planned switchover of `group` (default: the deployment's only clustered group):
   * the leader stops writes and hands its lease to `to` (default: the replica with
   * the least lag). Resolves once `to` leads.
   */
  async switchover(
    deployment: string,
    o: { group?: string; to?: string } = {},
    timeoutMs = 60_000,
  ): Promise<{ group: string; from: string; to: string; tookMs: number }> {
    const manifest = await storedManifest(this.ctx, deployment);
    const clusters = await this.status(deployment);
    if (clusters.length === 0) throw new InvalidInput(`deployment ${deployment} has no clustered group`);
    if (!o.group && clusters.length > 1)
      throw new InvalidInput(
        `group: deployment ${deployment} has several clustered groups (${clusters.map((c) => c.group).join(", ")}); name one`,
      );
    const cluster = o.group ? clusters.find((c) => c.group === o.group) : clusters[0];
    if (!cluster)
      throw new NotFound(
        `deployment ${deployment} has no clustered group ${o.group} (it has ${clusters.map((c) => c.group).join(", ")})`,
      );
    if (!cluster.leader)
      throw new Conflict(`cluster ${deployment}/${cluster.group} has no leader to switch over from`);
    const group = manifest.instance_groups.find((g) => g.name === cluster.group);
    const followerRole = (group && serviceOf(group)?.service.followerRole) ?? null;
    if (!followerRole) throw new InvalidInput(`group: ${cluster.group}'s service has no planned switchover`);
    const replicas = cluster.members.filter((m) => m.role === followerRole);
    const target = o.to ?? [...replicas].sort((a, b) => (a.lag ?? Infinity) - (b.lag ?? Infinity))[0]?.member;
    if (!target) throw new Conflict("no running replica to switch over to");
    if (target === cluster.leader.member) throw new InvalidInput(`to: ${target} already leads`);
    if (!replicas.some((m) => m.member === target)) {
      throw new InvalidInput(
        `to: ${target} is not a running replica (replicas: ${replicas.map((m) => m.member).join(", ") || "none"})`,
      );
    }
    const key = `${deployment}/${cluster.group}/switchover`;
    const store = leaseStoreOf(this.ctx, manifest);
    const t0 = Date.now();
    const lease = await store.acquire(key, "operator", 60_000, target);
    if (!lease) throw new Conflict("another switchover is in progress");
    try {
      for (;;) {
        const now = await store.read(`${deployment}/${cluster.group}/leader`);
        if (now && (JSON.parse(now.value) as { member: string }).member === target) break;
        if (Date.now() - t0 > timeoutMs)
          throw new Conflict(`switchover to ${target} did not finish in ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await store.release(key, "operator", lease.token).catch(() => undefined);
    }
    const tookMs = Date.now() - t0;
    await this.event(
      deployment,
      `switchover of ${cluster.group} from ${cluster.leader.member} to ${target} in ${tookMs} ms`,
    );
    return { group: cluster.group, from: cluster.leader.member, to: target, tookMs };
  }

  /**
   * The group with bindings (`groupName`, or the deployment's only one), its
   * service, and where its writer takes connections: the cluster VIP, a standby
   * group's VIP, or the single instance.
   */
  private async endpoint(deployment: string, groupName?: string) {
    const manifest = await storedManifest(this.ctx, deployment);
    const bindable = manifest.instance_groups.filter((g) => serviceOf(g)?.service.bindings);
    const g = groupName ? manifest.instance_groups.find((x) => x.name === groupName) : bindable[0];
    if (!g)
      throw new NotFound(
        groupName
          ? `deployment ${deployment} has no group ${groupName}`
          : `deployment ${deployment} has no group whose service has bindings`,
      );
    const found = serviceOf(g);
    if (!found?.service.bindings) throw new InvalidInput(`group: ${g.name} runs no service with bindings`);
    if (!groupName && bindable.length > 1)
      throw new InvalidInput(
        `group: deployment ${deployment} has several groups with bindings (${bindable.map((x) => x.name).join(", ")}); name one`,
      );
    const instances = (await this.ctx.store.instances.list(deployment)).filter(
      (i) => i.group === g.name && i.address,
    );
    const hosts = instances.map((i) => i.address!);
    // A cluster's VIP follows its leader; a standby group's VIP follows its instance.
    const host = isClustered(g)
      ? await clusterVip(this.ctx, deployment, g, false)
      : (instances[0]?.vip ?? hosts[0] ?? null);
    if (!host) throw new Conflict(`deployment ${deployment} has no address for ${g.name}'s writer yet`);
    const at: ServiceEndpoint = {
      deployment,
      group: g.name,
      host,
      hosts,
      properties: found.job.properties,
      secrets: await deploymentSecrets(this.ctx, deployment),
      ca: (await this.serviceCa()).caPem,
    };
    return { at, bindings: found.service.bindings };
  }

  private async serviceCa(): Promise<ServiceCa> {
    if (!this.ctx.serviceCa) throw new Unavailable("this control plane has no CA for data services");
    return this.ctx.serviceCa();
  }

  /**
   * A TLS certificate for the calling VM's data service, from the control plane's
   * CA, naming only what that VM is reached by: its address, its instance's VIP and
   * its cluster's VIP. A VM gets no certificate for anything else.
   */
  async serviceCertificate(
    token: string,
  ): Promise<{ cert: string; key: string; ca: string; names: string[] }> {
    const inst = await this.ctx.store.instances.byToken(token);
    if (!inst?.vmId) throw new Unauthorized("a certificate is only for an instance's VM (its bearer token)");
    if (!inst.address) throw new Conflict(`${inst.group}/${inst.index} has no address yet`);
    const now = Date.now();
    if (now - (this.certifiedAt.get(inst.id) ?? 0) < CERTIFICATE_INTERVAL_MS)
      throw new TooManyRequests(
        `${inst.group}/${inst.index} got a certificate less than ${CERTIFICATE_INTERVAL_MS} ms ago`,
      );
    this.certifiedAt.set(inst.id, now);
    const manifest = await storedManifest(this.ctx, inst.deployment);
    const group = manifest.instance_groups.find((g) => g.name === inst.group);
    const vip =
      group && isClustered(group) ? await clusterVip(this.ctx, inst.deployment, group, false) : null;
    const names = [...new Set([inst.address, inst.vip, vip].filter((n): n is string => n !== null))];
    const ca = await this.serviceCa();
    const issued = await ca.issue({
      commonName: inst.address,
      ips: names.filter((n) => isIP(n) !== 0),
      dnsNames: names.filter((n) => isIP(n) === 0),
    });
    return { cert: issued.certPem, key: issued.keyPem, ca: ca.caPem, names };
  }

  /**
   * A binding of the group's service (`group`, or the deployment's only one), made
   * through its writer. With `as`, that name and password (a broker binding's,
   * derived from its id): made if missing, its password set if present, so a repeat
   * after a crash converges.
   */
  async createBinding(
    deployment: string,
    group?: string,
    as?: { username: string; password: string },
  ): Promise<BindingView> {
    const { at, bindings } = await this.endpoint(deployment, group);
    const username = as?.username ?? newUsername();
    const password = as?.password ?? randomBytes(18).toString("base64url");
    await bindings.create(at, username, password);
    await this.event(deployment, `binding ${username} of ${at.group} created`);
    return { group: at.group, username, credentials: bindings.credentials(at, username, password) };
  }

  /** A binding's credentials as of now (the writer's address may have moved); no change to the service. */
  async credentials(
    deployment: string,
    username: string,
    password: string,
    group?: string,
  ): Promise<Record<string, unknown>> {
    const { at, bindings } = await this.endpoint(deployment, group);
    return bindings.credentials(at, username, password);
  }

  /** Removes a binding's user, its connections and what it owns. Idempotent. */
  async dropBinding(deployment: string, username: string, group?: string): Promise<void> {
    const { at, bindings } = await this.endpoint(deployment, group);
    await bindings.drop(at, username);
    await this.event(deployment, `binding ${username} of ${at.group} dropped`);
  }

  private async event(deployment: string, message: string): Promise<void> {
    await this.ctx.store.tasks.addEvent({
      taskId: null,
      deployment,
      instance: null,
      level: "info",
      stage: "cluster",
      message,
    });
    this.ctx.log.info({ deployment }, message);
  }
}
