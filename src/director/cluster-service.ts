/**
 * The control plane's side of clusters: who may use which leases, moving a
 * cluster's VIP to the lease holder (checking its fencing token first), fencing a
 * leader on a member's request (only when its agent does not answer), the
 * cluster's status, and database roles for bindings, made through the primary.
 */
import { randomBytes } from "node:crypto";
import { isIP } from "node:net";
import pg from "pg";
import { GiveUp, waitFor } from "../lib/sleep.js";
import {
  Conflict,
  InvalidInput,
  NotFound,
  TooManyRequests,
  Unauthorized,
  Unavailable,
  errorMessage,
} from "../lib/errors.js";
import { tokensEqual } from "../lib/http-server.js";
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
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
]);
import { isClustered, type GroupManifest, type Manifest } from "./manifest.js";

export interface MemberView {
  member: string;
  key: string;
  zone: string;
  address: string | null;
  role: string;
  timeline: number | null;
  lsn: string | null;
  lagBytes: number | null;
  /** The member a replica streams WAL from now (its address if it is no member); null when it does not stream. */
  streamsFrom: string | null;
  decision: string | null;
}

export interface ClusterView {
  group: string;
  vip: string | null;
  leader: { member: string; vmId: string; token: number } | null;
  members: MemberView[];
}

export interface DatabaseRole {
  username: string;
  password: string;
  database: string;
  /** The address clients should use (the cluster's VIP, or the single instance's address). */
  host: string;
  port: number;
  /** Every member's address, for clients that find the primary themselves (multi-host URIs). */
  hosts: string[];
  /** postgres://user:password@VIP:port/database */
  uri: string;
  /** Every member, and target_session_attrs=read-write: libpq-style clients find the primary without the VIP. */
  multiHostUri: string;
  /** Always "verify-full": the server's certificate is checked against ca_cert and the host. */
  sslmode: "verify-full";
  /** The control plane's CA (PEM) that signed every member's certificate. */
  ca_cert: string;
}

const lsnBytes = (lsn: string | null): bigint | null => {
  if (!lsn) return null;
  const [hi, lo] = lsn.split("/");
  return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
};

/** Roles zonal makes: u_ and 12 hex digits (so dropping one can never hit another role). */
const ROLE_NAME = /^u_[0-9a-f]{12}$/;

function roleAccess(
  p: { host: string; hosts: string[]; port: number; database: string; ca: string },
  username: string,
  password: string,
): DatabaseRole {
  const auth = `${username}:${encodeURIComponent(password)}`;
  const db = encodeURIComponent(p.database);
  return {
    username,
    password,
    database: p.database,
    host: p.host,
    port: p.port,
    hosts: p.hosts,
    uri: `postgres://${auth}@${p.host}:${p.port}/${db}?sslmode=verify-full`,
    multiHostUri: `postgres://${auth}@${p.hosts.map((h) => `${h}:${p.port}`).join(",")}/${db}?target_session_attrs=read-write&sslmode=verify-full`,
    sslmode: "verify-full",
    ca_cert: p.ca,
  };
}

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

  async status(deployment: string): Promise<ClusterView[]> {
    const manifest = await storedManifest(this.ctx, deployment);
    const instances = await this.ctx.store.instances.list(deployment);
    const out: ClusterView[] = [];
    const pg = (g: GroupManifest) => isClustered(g) && g.jobs.some((j) => j.type === "postgres");
    for (const g of manifest.instance_groups.filter(pg)) {
      const key = `${deployment}/${g.name}`;
      const lease = await leaseStoreOf(this.ctx, manifest)
        .read(`${key}/leader`)
        .catch(() => undefined);
      const leaderMember = lease ? (JSON.parse(lease.value) as { member: string }).member : null;
      const job = g.jobs.find((j) => j.type === "postgres")!.name;
      const members = await Promise.all(
        instances
          .filter((i) => i.group === g.name)
          .map(async (i): Promise<MemberView> => {
            let c: {
              role?: string;
              timeline?: number | null;
              lsn?: string | null;
              upstream?: string | null;
              decision?: string;
            } = {};
            try {
              c = ((await agentOf(this.ctx, i, 2000).jobStatus(job)).controller ?? {}) as typeof c;
            } catch {
              c = { role: "unreachable" };
            }
            return {
              member: `m${i.index}`,
              key: `${i.group}/${i.index}`,
              zone: i.zone,
              address: i.address,
              role: c.role ?? "unknown",
              timeline: c.timeline ?? null,
              lsn: c.lsn ?? null,
              lagBytes: null,
              streamsFrom: c.upstream ?? null,
              decision: c.decision ?? null,
            };
          }),
      );
      const top = members.find((m) => m.member === leaderMember);
      const topLsn = lsnBytes(top?.lsn ?? null);
      for (const m of members) {
        const upstream = members.find((x) => x.address !== null && x.address === m.streamsFrom);
        if (upstream) m.streamsFrom = upstream.member;
        const mine = lsnBytes(m.lsn);
        if (topLsn !== null && mine !== null) m.lagBytes = Number(topLsn > mine ? topLsn - mine : 0n);
      }
      out.push({
        group: g.name,
        vip: await clusterVip(this.ctx, deployment, g, false),
        leader:
          lease && leaderMember ? { member: leaderMember, vmId: lease.holder, token: lease.token } : null,
        members,
      });
    }
    return out;
  }

  /**
   * Planned switchover: the leader stops writes and hands its lease to `to` (default:
   * the replica with the least lag). Resolves once `to` leads.
   */
  async switchover(
    deployment: string,
    to?: string,
    timeoutMs = 60_000,
  ): Promise<{ from: string; to: string; tookMs: number }> {
    const manifest = await storedManifest(this.ctx, deployment);
    const [cluster] = await this.status(deployment);
    if (!cluster) throw new InvalidInput(`deployment ${deployment} has no clustered group`);
    if (!cluster.leader)
      throw new Conflict(`cluster ${deployment}/${cluster.group} has no leader to switch over from`);
    const replicas = cluster.members.filter((m) => m.role === "replica");
    const target =
      to ?? [...replicas].sort((a, b) => (a.lagBytes ?? Infinity) - (b.lagBytes ?? Infinity))[0]?.member;
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
    await this.event(deployment, `switchover from ${cluster.leader.member} to ${target} in ${tookMs} ms`);
    return { from: cluster.leader.member, to: target, tookMs };
  }

  /** Where the deployment's primary takes connections: the cluster VIP, or the single instance. */
  private async primary(deployment: string, groupName?: string) {
    const manifest = await storedManifest(this.ctx, deployment);
    const g = manifest.instance_groups.find((x) =>
      groupName ? x.name === groupName : x.jobs.some((j) => j.type === "postgres"),
    );
    if (!g)
      throw new NotFound(`deployment ${deployment} has no postgres group${groupName ? ` ${groupName}` : ""}`);
    const job = g.jobs.find((j) => j.type === "postgres");
    if (!job) throw new InvalidInput(`group ${g.name} runs no postgres job`);
    const props = job.properties as { port?: number; database?: string };
    const instances = (await this.ctx.store.instances.list(deployment)).filter(
      (i) => i.group === g.name && i.address,
    );
    const hosts = instances.map((i) => i.address!);
    // A cluster's VIP follows its leader; a standby group's VIP follows its instance.
    const host = isClustered(g)
      ? await clusterVip(this.ctx, deployment, g, false)
      : (instances[0]?.vip ?? hosts[0] ?? null);
    if (!host) throw new Conflict(`deployment ${deployment} has no address for its primary yet`);
    const secrets = await deploymentSecrets(this.ctx, deployment, false);
    return {
      host,
      hosts,
      port: props.port ?? 5432,
      database: props.database ?? "app",
      password: secrets.postgres_password ?? "",
      ca: (await this.serviceCa()).caPem,
    };
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

  private async sql<T>(
    p: { host: string; port: number; password: string; ca: string },
    database: string,
    run: (c: pg.Client) => Promise<T>,
  ): Promise<T> {
    // The primary's address may be moving (a failover, a VIP being bound): connecting is
    // retried for a few seconds; a refusal that lasts is the error.
    const client = await waitFor(
      async () => {
        const c = new pg.Client({
          host: p.host,
          port: p.port,
          user: "postgres",
          password: p.password,
          database,
          ssl: { ca: p.ca },
          connectionTimeoutMillis: 3000,
          query_timeout: 30_000,
        });
        try {
          await c.connect();
          return c;
        } catch (err) {
          await c.end().catch(() => undefined);
          if (
            !/ECONNREFUSED|EHOSTUNREACH|timeout|starting up|shutting down|recovery/i.test(errorMessage(err))
          )
            throw new GiveUp(errorMessage(err));
          throw err; // retried; the last one is named if it lasts
        }
      },
      { timeoutMs: 10_000, intervalMs: 300, what: `postgres at ${p.host}:${p.port}` },
    );
    try {
      return await run(client);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /**
   * A login role with its own password and rights on the database, made through the
   * primary. With `as`, that name and password (a broker binding's, derived from its
   * id): made if missing, its password set if present, so a repeat after a crash
   * converges.
   */
  async createRole(
    deployment: string,
    group?: string,
    as?: { username: string; password: string },
  ): Promise<DatabaseRole> {
    const p = await this.primary(deployment, group);
    const username = as?.username ?? `u_${randomBytes(6).toString("hex")}`;
    const password = as?.password ?? randomBytes(18).toString("base64url");
    if (!ROLE_NAME.test(username)) throw new InvalidInput(`username: expected u_ and 12 hex digits`);
    if (!/^[A-Za-z0-9_-]+$/.test(password)) throw new InvalidInput("password: expected base64url characters");
    try {
      await this.sql(p, "postgres", async (c) => {
        const exists = await c.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [username]);
        await c.query(
          `${exists.rowCount === 0 ? "CREATE" : "ALTER"} ROLE ${username} LOGIN PASSWORD '${password}'`,
        );
        await c.query(`GRANT CONNECT, CREATE, TEMPORARY ON DATABASE "${p.database}" TO ${username}`);
      });
      await this.sql(p, p.database, async (c) => {
        await c.query(`GRANT USAGE, CREATE ON SCHEMA public TO ${username}`);
      });
    } catch (err) {
      throw new Conflict(`could not create a role in ${deployment}: ${errorMessage(err)}`);
    }
    await this.event(deployment, `database role ${username} created`);
    return roleAccess(p, username, password);
  }

  /** Where and how a role connects (no SQL: for a binding fetched again). */
  async access(
    deployment: string,
    username: string,
    password: string,
    group?: string,
  ): Promise<DatabaseRole> {
    return roleAccess(await this.primary(deployment, group), username, password);
  }

  /** Drops a role: its objects go to postgres, its connections are ended. Idempotent. */
  async dropRole(deployment: string, username: string, group?: string): Promise<void> {
    if (!ROLE_NAME.test(username))
      throw new InvalidInput(`username: expected a role made by zonal (u_…), got "${username}"`);
    const p = await this.primary(deployment, group);
    await this.sql(p, "postgres", async (c) => {
      const exists = await c.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [username]);
      if (exists.rowCount === 0) return;
      await c.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", [username]);
      await this.sql(p, p.database, async (d) => {
        await d.query(`REASSIGN OWNED BY ${username} TO postgres`);
        await d.query(`DROP OWNED BY ${username}`);
      });
      await c.query(`DROP OWNED BY ${username}`);
      await c.query(`DROP ROLE ${username}`);
    });
    await this.event(deployment, `database role ${username} dropped`);
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
