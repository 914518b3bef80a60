/**
 * The postgres cluster manager: a loop in the agent beside the postgres process
 * (a job controller). Each cycle it looks — the leader lease (renewing it when it
 * holds it), postgres itself, the other members' status APIs when an election or
 * the failsafe needs them — asks `decide` what to do, does it, and says so in the
 * job's log when the sentence changes.
 *
 * It tells the job's `prepare` which role to start postgres in (role.json and
 * role.conf); changing role means restarting the process, except promotion
 * (`pg_promote`) and following a new leader (a reload). A single, unclustered
 * postgres uses the same manager without a lease store: always primary.
 */
import { httpFetch } from "../../lib/fetch.js";
import { writeFileSync } from "node:fs";
import { z } from "zod";
import { parseWith } from "../../lib/validate.js";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { errorMessage } from "../../lib/errors.js";
import { Waker } from "../../lib/sleep.js";
import {
  closeServer,
  ClusterMember,
  controlPlaneCall,
  handedDeadline,
  handedMemberSchema,
  type HeldLease,
  LeaderWatch,
  listenStatus,
  memberHeaders,
  PROBE_TIMEOUT_MS,
  StoreGate,
} from "../cluster-member.js";
import { SWITCHOVER_CYCLE_MS } from "../cluster-timing.js";
import { type LeaseStore } from "../../ha/lease-store.js";
import type { JobContext, JobController, JobHandle } from "../job-type.js";
import {
  pgPaths,
  pgSecrets,
  REPLICATION_USER,
  tlsFiles,
  type PgPaths,
  type PostgresConfig,
} from "./config.js";
import {
  decide,
  STUCK_REPLICA_MS,
  others,
  type Decision,
  type Leader,
  type LeaseView,
  type Observation,
  type PeerView,
} from "./decide.js";
import { parseLsn, roleConf, syncStandbyNames, type RoleFile } from "./files.js";
import { hasData, observe, ownByPostgres, PgConn, type PgState } from "./pg.js";

const leaderSchema = z
  .object({ member: z.string(), vmId: z.string(), address: z.string(), port: z.number().int() })
  .strict();
const roleSchema: z.ZodType<RoleFile> = z.union([
  z.object({ role: z.literal("primary"), bootstrap: z.boolean(), syncNames: z.array(z.string()) }).strict(),
  z
    .object({
      role: z.literal("replica"),
      // The leader as decide() set it (it may carry more, e.g. the VM's id).
      leader: z
        .object({ member: z.string(), address: z.string(), port: z.number().int() })
        .passthrough()
        .nullable(),
      rewind: z.boolean(),
    })
    .strict(),
]);

/** What the manager hands to its successor agent's manager (handOff, start). */
const handedManagerSchema = z
  .object({
    role: roleSchema.nullable(),
    preparedLeader: z.object({ member: z.string(), address: z.string() }).passthrough().nullable(),
    lastLeader: z.string().nullable(),
    lastLeaderAt: leaderSchema.nullable(),
    initialized: z.boolean().nullable(),
    member: handedMemberSchema.nullable(),
  })
  .strict();
type HandedManager = z.infer<typeof handedManagerSchema>;

const DOWN: PgState = { running: false, inRecovery: null, lsn: null, timeline: null, upstream: null };

export interface MemberStatus {
  member: string;
  role: "primary" | "replica" | "stopped";
  hasData: boolean;
  lsn: string | null;
  timeline: number | null;
  upstream: string | null;
  leader: string | null;
  leaseToken: number | null;
  decision: string;
  since: string;
  /** The leader this member promised (failsafe) not to compete with, while that promise lives. */
  promisedTo: string | null;
}

/** What each member publishes under the cluster's `members/` prefix. */
interface RegisteredMember {
  member: string;
  address: string;
  statusPort: number;
}

/** How often a member asks again to fence a leader that stays silent (the control plane allows one per 200 ms). */
const FENCE_RETRY_MS = 500;

export class PostgresManager implements JobController {
  private readonly paths: PgPaths;
  private readonly conn: PgConn;
  private loop: Promise<void> | undefined;
  private stopping = false;
  private role: RoleFile | null = null;
  private roleWaiters: Array<() => void> = [];
  /**
   * A start of the job is on its way to read the role (from the controller's start to
   * prepare's awaitRole): a role set meanwhile needs no restart, the start takes it.
   */
  private roleUnread = false;
  /** The leader the running postgres was set up to follow: by the last start's role, or a reload since (null: it was to lead, or none yet). */
  private preparedLeader: { member: string; address: string } | null = null;
  /** The member skeleton (lease store, leader lease, failsafe, VIP, fencing); none for a single postgres. */
  private readonly cm: ClusterMember | undefined;
  /** The cycle's other calls to the store: none after one failed, and the lease renews at once next. */
  private gate: StoreGate | undefined;
  private lastLeader: string | null = null;
  /** Where the last known leader was (to ask it directly when the lease is free). */
  private lastLeaderAt: Leader | null = null;
  private lastLease: LeaseView = { state: "unreachable" };
  private initialized: boolean | null = null;
  private memberAt = 0;
  private markerAt = 0;
  private pgDownSince: number | null = null;
  private slotsAt = 0;
  private staleSlotsAt = 0;
  private pg: PgState = DOWN;
  /** As leader: when a replica was last seen keeping up with it (null: none since it leads). */
  private lastStreamingAt: number | null = null;
  /** As leader: what it had written when, over the last seconds (is a replica keeping up?). */
  private writtenAt: Array<{ at: number; lsn: bigint | null }> = [];
  /** As replica: when it last streamed from its leader (or was not yet a replica). */
  private streamedAt = Date.now();
  /** Since when the leader this member follows has not answered its status API. */
  private readonly leaderWatch = new LeaderWatch();
  /** Between asking postgres to promote and knowing it did (the watchdog counts it as primary). */
  private promoting = false;
  private sentence = "starting";
  private since = new Date();
  private server: Server | undefined;

  constructor(
    private readonly ctx: JobContext,
    private readonly config: PostgresConfig,
    private readonly handle: JobHandle,
  ) {
    this.paths = pgPaths(ctx);
    this.conn = new PgConn(ctx.address, config.port, pgSecrets(ctx).postgres, tlsFiles(pgPaths(ctx)).ca);
    const c = ctx.cluster;
    if (config.cluster && !c)
      throw new Error("a clustered postgres job needs the spec's cluster section (the director fills it in)");
    if (config.cluster && c) {
      this.cm = new ClusterMember(ctx, () => this.deadlinePassed());
      this.gate = new StoreGate(this.cm.store);
    }
  }

  private get store(): LeaseStore | undefined {
    return this.cm?.store;
  }
  private get held(): HeldLease | undefined {
    return this.cm?.held;
  }
  private get cluster() {
    return this.ctx.cluster!;
  }
  private get leaderToken(): number | null {
    return this.held?.token ?? null;
  }
  private get leaderKey() {
    return `${this.cluster.key}/leader`;
  }
  private get me(): Leader {
    return {
      member: this.cluster.member,
      vmId: this.ctx.vmId,
      address: this.ctx.address,
      port: this.config.port,
    };
  }

  async start(handedOver?: unknown): Promise<void> {
    if (this.loop) return;
    this.stopping = false;
    this.handedOff = false;
    if (handedOver !== undefined) {
      // A predecessor agent started postgres in this role: go on from there.
      const h = parseWith(handedManagerSchema, handedOver, "handover.controller");
      this.role = h.role;
      this.preparedLeader = h.preparedLeader;
      this.lastLeader = h.lastLeader;
      this.lastLeaderAt = h.lastLeaderAt;
      this.initialized = h.initialized;
      if (h.member) this.cm?.resume(h.member);
      this.roleUnread = false;
    } else this.roleUnread = true;
    if (!this.store) {
      if (handedOver === undefined)
        this.setRole({ role: "primary", bootstrap: !hasData(this.paths), syncNames: [] });
    } else {
      this.server ??= await listenStatus(
        this.ctx.address,
        this.config.status_port,
        this.cluster.member_token,
        (req, res) => this.serveStatus(req, res),
      );
    }
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.waker.wake(); // the loop ends now, not after its wait
    await this.loop;
    this.loop = undefined;
    this.leaderWatch.stop();
    // Handing the VIP over (a switchover just before this stop): until the new leader
    // binds it (its status API still answers the ask). Otherwise clients lose the
    // address first, then the lease goes to another member.
    await this.cm?.vipHandedOver();
    this.cm?.dropVip();
    if (await this.held?.release()) this.say("released the leader lease: the job is stopping");
    this.conn.reset();
    await closeServer(this.server);
    this.server = undefined;
    this.role = null;
  }

  /**
   * For a successor agent (postgres keeps running): the loop stops between cycles, the
   * lease's watchdog stops here; the lease, the VIP and the role are handed over, not
   * given up. From now on this member confirms no failsafe (the successor does).
   */
  async handOff(): Promise<{ state: unknown; deadline: number | null } | undefined> {
    if (!this.loop) return undefined;
    this.handedOff = true;
    this.stopping = true;
    this.waker.wake(); // the loop ends now, not after its wait
    await this.loop;
    this.loop = undefined;
    this.leaderWatch.stop();
    this.cm?.letVipGo(); // a VIP handed over is not handed on to the next agent
    this.conn.reset();
    const h: HandedManager = {
      role: this.role,
      preparedLeader: this.preparedLeader,
      lastLeader: this.lastLeader,
      lastLeaderAt: this.lastLeaderAt,
      initialized: this.initialized,
      member: this.cm?.handOff() ?? null,
    };
    return { state: h, deadline: handedDeadline(h.member) };
  }
  private handedOff = false;

  /** For prepare: the role to start postgres in (waits for the first decision). */
  async awaitRole(timeoutMs = 120_000): Promise<RoleFile> {
    const deadline = Date.now() + timeoutMs;
    while (!this.role) {
      if (Date.now() > deadline)
        throw new Error(`the cluster manager has not decided a role in ${timeoutMs} ms: ${this.sentence}`);
      await new Promise<void>((r) => {
        this.roleWaiters.push(r);
        setTimeout(r, 500);
      });
    }
    this.roleUnread = false;
    this.preparedLeader = this.role.role === "replica" ? this.role.leader : null;
    return this.role;
  }

  /** prepare finished a rewind: the role no longer needs one. */
  rewound(): void {
    if (this.role?.role === "replica") this.setRole({ ...this.role, rewind: false });
  }

  status(): MemberStatus {
    return {
      member: this.ctx.cluster?.member ?? "single",
      role: this.pg.running ? (this.pg.inRecovery ? "replica" : "primary") : "stopped",
      hasData: hasData(this.paths),
      lsn: this.pg.lsn,
      timeline: this.pg.timeline,
      upstream: this.pg.upstream,
      leader: this.leaderToken !== null ? (this.ctx.cluster?.member ?? null) : this.lastLeader,
      leaseToken: this.leaderToken,
      decision: this.sentence,
      since: this.since.toISOString(),
      promisedTo: this.cm?.promise.to() ?? null,
    };
  }

  /** A promise to a leader the control plane has fenced since holds nobody back. */
  private async voidPromiseIfFenced(): Promise<void> {
    const leader = this.lastLeaderAt;
    if (leader && (await this.cm!.voidPromiseIfFenced(leader)))
      this.say(`${leader.member}, whose failsafe this member confirmed, was fenced: the promise is void`);
  }

  private serveStatus(req: IncomingMessage, res: ServerResponse): void {
    const u = new URL(req.url ?? "/", "http://member");
    res.setHeader("content-type", "application/json");
    if (u.pathname === "/status") return void res.end(JSON.stringify(this.status()));
    if (u.pathname === "/failsafe") {
      // A replica confirms a leader that asks directly: it follows it, sees no other
      // holder and is not taking the lease itself. Confirming is a promise not to
      // compete for one TTL: the leader keeps writing for less than that on it.
      const leader = u.searchParams.get("leader");
      const s = this.status();
      const confirm =
        leader !== null &&
        !this.handedOff &&
        this.cm!.promise.confirm(
          leader,
          this.cluster.ttl_ms,
          s.role === "replica" &&
            this.lastLeader === leader &&
            this.lastLease.state !== "mine" &&
            !(this.lastLease.state === "other" && this.lastLease.leader.member !== leader),
        );
      return void res.end(JSON.stringify({ member: s.member, confirm }));
    }
    if (this.cm!.serveVipRelease(req, res, (sentence) => this.ctx.log(`cluster manager: ${sentence}`)))
      return;
    if (this.cm!.serveLeaseFree(req, res, () => this.waker.wake())) return;
    res.statusCode = 404;
    res.end(JSON.stringify({ error: "not_found" }));
  }

  private say(sentence: string): void {
    if (sentence === this.sentence) return;
    this.sentence = sentence;
    this.since = new Date();
    this.ctx.log(`cluster manager: ${sentence}`);
  }

  private setRole(role: RoleFile): void {
    this.role = role;
    writeFileSync(this.paths.roleFile, JSON.stringify(role, null, 2), { mode: 0o600 });
    writeFileSync(
      this.paths.roleConf,
      roleConf(role, {
        member: this.ctx.cluster?.member ?? "single",
        replicationPassword: pgSecrets(this.ctx).replication,
        caFile: tlsFiles(this.paths).ca,
      }),
      {
        mode: 0o600,
      },
    );
    ownByPostgres(this.paths.roleConf);
    for (const w of this.roleWaiters.splice(0)) w();
  }

  private async run(): Promise<void> {
    const stuck = setInterval(() => this.reportStuck(), 1000);
    while (!this.stopping) {
      try {
        await (this.store ? this.cycle() : this.singleCycle());
      } catch (err) {
        this.say(`cycle failed: ${errorMessage(err)}`);
      }
      this.step = null;
      if (!this.hurry) await this.waker.sleep(this.soon ? SWITCHOVER_CYCLE_MS : 250);
      this.hurry = false;
      this.soon = false;
    }
    clearInterval(stuck);
  }

  /** What the cycle is waiting on now, since when, and whether that was logged. */
  private step: { what: string; since: number; told: boolean } | null = null;

  private at(what: string): void {
    this.step = { what, since: Date.now(), told: false };
  }

  /** A cycle that waits on one thing for over 2 s says so (the lease's watchdog acts regardless). */
  private reportStuck(): void {
    const s = this.step;
    if (!s || s.told || Date.now() - s.since < 2000) return;
    s.told = true;
    this.ctx.log(`cluster manager: waiting ${Date.now() - s.since} ms so far on ${s.what}`);
  }

  /** The next cycle follows at once (the lease was just taken: promote without a pause). */
  private hurry = false;
  /** The wait between cycles; a switchover's old leader cuts it short (`POST /lease-free`). */
  private readonly waker = new Waker();
  /** The next cycle comes after SWITCHOVER_CYCLE_MS (a switchover names this member, which does not lead yet). */
  private soon = false;

  private statusUrl(address: string): string {
    return `http://${address}:${this.config.status_port}/status`;
  }

  // ---- single (unclustered) postgres ---------------------------------------------------

  private async singleCycle(): Promise<void> {
    this.pg = this.handle.processRunning() ? await observe(this.conn) : DOWN;
    if (this.pg.running && this.role?.role === "primary" && this.role.bootstrap) {
      await this.bootstrapSql();
      this.setRole({ role: "primary", bootstrap: false, syncNames: [] });
    }
    this.say(this.pg.running ? "single primary, running" : "single primary, postgres not running");
  }

  // ---- cluster member -----------------------------------------------------------------

  private async cycle(): Promise<void> {
    const now = Date.now();
    const data = hasData(this.paths);
    this.at("postgres (observing it)");
    this.pg = this.handle.processRunning() ? await observe(this.conn) : DOWN;
    if (this.pg.running) this.pgDownSince = null;
    this.at("the lease store (the leader lease)");
    const lease = await this.leaseView(now, this.gate!.begin());
    if (lease.state === "unreachable") this.gate!.close();
    this.lastLease = lease;
    if (lease.state === "other") {
      this.lastLeader = lease.leader.member;
      this.lastLeaderAt = lease.leader;
    }
    if (this.pg.upstream !== null || this.role?.role !== "replica") this.streamedAt = now;
    // A store that did not answer the lease is not asked again this cycle: every
    // question would wait for its timeout, and the failsafe must come in time.
    const storeUp = lease.state !== "unreachable";
    if (storeUp) {
      this.at("the lease store (registering, the init marker)");
      await this.registerMember(now);
      if (this.initialized !== true) {
        this.initialized = await this.gate!.call((s) => s.read(`${this.cluster.key}/initialized`)).then(
          (l) => l !== undefined,
          () => null,
        );
      }
      if (lease.state === "free") await this.voidPromiseIfFenced();
    }
    const needPeers = lease.state === "free" || lease.state === "unreachable" || !data;
    // The leader is watched on its own timer while this member follows it (and, once
    // the lease is free, the last one still: was it the silent one?).
    if (lease.state === "other" && this.pg.running)
      this.leaderWatch.watch(this.statusUrl(lease.leader.address));
    else if (lease.state !== "free") this.leaderWatch.watch(null);
    // The last leader is asked whether it still runs as primary — unless this member
    // watched it go unanswered: then it is no reason to wait (the lease decides).
    const lastLeaderAt =
      lease.state === "free" &&
      this.lastLeaderAt &&
      !this.leaderWatch.suspects(this.statusUrl(this.lastLeaderAt.address))
        ? this.lastLeaderAt
        : null;
    // Asked side by side: a frozen member answers none, and each wait is a timeout.
    this.at("the other members (peers, the last leader, the failsafe)");
    const [peers, oldLeaderAlive, failsafeConfirms] = await Promise.all([
      needPeers ? this.peers(storeUp) : Promise.resolve([]),
      lastLeaderAt && lastLeaderAt.member !== this.cluster.member
        ? this.runsAsPrimary(lastLeaderAt)
        : Promise.resolve(false),
      !storeUp && this.isPrimaryNow() ? this.failsafe() : Promise.resolve(0),
    ]);
    const leaderCheck =
      lease.state === "other" ? this.leaderWatch.state() : { result: "answers", unansweredMs: 0 };
    const registered = this.knownPeers;
    const obs: Observation = {
      member: this.cluster.member,
      members: this.cluster.members,
      now,
      ttlMs: this.cluster.ttl_ms,
      strict: this.config.synchronous === "strict",
      replicasGoneMs:
        lease.state === "mine" && this.lastStreamingAt !== null ? now - this.lastStreamingAt : null,
      othersAlive: registered.filter((r) => r.member !== this.cluster.member).length,
      lease,
      deadline: this.held?.deadline ?? null,
      initialized: this.initialized,
      hasData: data,
      pg: this.pg,
      role: this.role,
      peers,
      lastLeader: this.lastLeader,
      failsafeConfirms,
      promisedTo: this.cm!.promise.to(now),
      leaderRefused: leaderCheck.result === "refused",
      leaderUnansweredMs: leaderCheck.unansweredMs,
      switchoverTo: storeUp
        ? await this.gate!.call((s) => s.read(`${this.cluster.key}/switchover`)).then(
            (l) => l?.value ?? null,
            () => null,
          )
        : null,
      notStreamingMs: now - this.streamedAt,
      leaderTimeline:
        lease.state === "other" && now - this.streamedAt >= STUCK_REPLICA_MS
          ? await this.timelineOf(lease.leader)
          : null,
      oldLeaderAlive,
    };
    this.switchoverTo = obs.switchoverTo;
    if (obs.switchoverTo === this.cluster.member && lease.state !== "mine") this.soon = true;
    const verdict = decide(obs);
    this.say(verdict.sentence);
    this.at(`acting on "${verdict.decision.do}"`);
    await this.act(verdict.decision, obs);
  }

  /**
   * The lease's deadline passed without a renewal (nor a failsafe extension): from
   * now on another member may take over, so postgres stops at once (immediate
   * shutdown: no further commit is acknowledged), whatever the cycle is waiting on,
   * and comes back read-only.
   */
  private deadlinePassed(): void {
    if ((this.role?.role !== "primary" && !this.promoting) || this.stopping) return;
    this.say("demoted self: the lease deadline passed without a renewal (watchdog)");
    this.cm?.dropVip();
    this.setRole({ role: "replica", leader: null, rewind: true });
    void this.restart("the leader lease's deadline passed without a renewal", { abort: true });
  }

  /**
   * Stops being primary, in the order that keeps acknowledged writes safe: clients
   * lose the VIP, postgres stops (no commit is acknowledged after it) and comes back
   * in `role`, and only then is the lease given up for another member. A planned
   * handover stops cleanly (replicas get every last WAL record); a demotion stops at
   * once (it rewinds onto the new leader anyway). `to`: the member a switchover names,
   * told once the lease is free (it looks at once).
   */
  private async stepDown(role: RoleFile, why: string, clean = false, to?: string): Promise<void> {
    // A planned handover goes on listening on the VIP, its connections cut, until the
    // new primary asks for it: a client meanwhile meets a stopping or read-only server
    // and fails at once, instead of losing its SYN (a second) to an address nobody
    // listens on. Postgres stops right after the cut, and the lease goes only once it
    // has stopped: one writer all along.
    if (!clean || !this.cm?.handVip({ cut: true })) this.cm?.dropVip();
    this.setRole(role);
    // The lease goes as soon as postgres has stopped, not once it runs again as a
    // replica: the new leader need not wait for this start.
    await this.restart(why, {
      abort: !clean,
      stopped: async () => {
        await this.held?.release();
        if (to !== undefined)
          this.cm?.tellLeaseFree(
            this.knownPeers.find((r) => r.member === to),
            this.cluster.member,
          );
      },
    });
    await this.held?.release();
  }

  /**
   * Restarts postgres in the role just set. Until it runs again the status says it is
   * stopped (this member's cycle waits for the restart: a rewind or a clone may take
   * a while, and what it observed before is no longer true).
   */
  private async restart(
    why: string,
    o: { abort?: boolean; stopped?: () => Promise<unknown> } = {},
  ): Promise<void> {
    this.pg = DOWN;
    await this.handle.restartProcess(why, o);
  }

  private isPrimaryNow(): boolean {
    return this.role?.role === "primary" || this.pg.inRecovery === false;
  }

  private leaderValue(): string {
    return JSON.stringify(this.me);
  }

  /** The leader lease as the store has it (`renewNow`: a holder renews now, another call failed since). */
  private leaseView(now: number, renewNow: boolean): Promise<LeaseView> {
    return this.cm!.leaseView<Leader>(now, renewNow);
  }

  private async registerMember(now: number): Promise<void> {
    if (now - this.memberAt < this.cluster.renew_ms) return;
    this.memberAt = now;
    const value = JSON.stringify({ ...this.me, statusPort: this.config.status_port });
    await this.gate!.call((s) =>
      s.acquire(
        `${this.cluster.key}/members/${this.cluster.member}`,
        this.ctx.vmId,
        this.cluster.ttl_ms,
        value,
      ),
    ).catch(() => undefined);
    await this.registered();
  }

  /**
   * The members registered in the store; when the store cannot be reached (or
   * `storeUp` is false), the ones last seen there (a primary must still find its
   * replicas to ask them directly).
   */
  private async registered(storeUp = true): Promise<RegisteredMember[]> {
    if (!storeUp) return this.knownPeers;
    try {
      const found = (await this.gate!.call((s) => s.list(`${this.cluster.key}/members/`))).map(
        (l) => JSON.parse(l.value) as RegisteredMember,
      );
      if (found.length > 0) this.knownPeers = found;
      return found;
    } catch {
      return this.knownPeers;
    }
  }
  private knownPeers: RegisteredMember[] = [];
  /** The member the last observed switchover names (null: none). */
  private switchoverTo: string | null = null;
  /** The lease was taken because a switchover named this member, and the VIP is not served yet. */
  private plannedTakeover = false;

  private async peers(storeUp: boolean): Promise<PeerView[]> {
    const registered = await this.registered(storeUp);
    return Promise.all(
      others(this.cluster).map(async (member): Promise<PeerView> => {
        const r = registered.find((x) => x.member === member);
        if (!r) return { member, reachable: false };
        // The leader this member watched go silent is not asked again (a timeout).
        if (this.leaderWatch.suspects(this.statusUrl(r.address))) return { member, reachable: false };
        try {
          const res = await httpFetch(`http://${r.address}:${r.statusPort}/status`, {
            headers: memberHeaders(this.ctx),
            signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
          });
          const s = (await res.json()) as MemberStatus;
          return {
            member,
            reachable: true,
            role: s.role,
            lsn: s.lsn,
            hasData: s.hasData,
            promisedTo: s.promisedTo ?? null,
          };
        } catch {
          return { member, reachable: false };
        }
      }),
    );
  }

  /** A leader's timeline, as its status API says (null when it does not answer). */
  private async timelineOf(l: Leader): Promise<number | null> {
    try {
      const res = await httpFetch(this.statusUrl(l.address), {
        headers: memberHeaders(this.ctx),
        signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
      });
      return ((await res.json()) as MemberStatus).timeline;
    } catch {
      return null;
    }
  }

  private async runsAsPrimary(l: Leader): Promise<boolean> {
    try {
      const res = await httpFetch(this.statusUrl(l.address), {
        headers: memberHeaders(this.ctx),
        signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
      });
      return ((await res.json()) as MemberStatus).role === "primary";
    } catch {
      return false;
    }
  }

  /**
   * Members that confirm directly that they follow this one (when the lease store is
   * unreachable). When every other member confirms, each promised not to compete for
   * a TTL from when it answered: the lease's deadline moves to a TTL from when this
   * member asked (earlier than any promise ends).
   */
  private async failsafe(): Promise<number> {
    const sentAt = Date.now();
    const registered = this.knownPeers;
    const answers = await Promise.all(
      registered
        .filter((r) => r.member !== this.cluster.member)
        .map(async (r) => {
          try {
            const res = await httpFetch(
              `http://${r.address}:${r.statusPort}/failsafe?leader=${this.cluster.member}`,
              { headers: memberHeaders(this.ctx), signal: AbortSignal.timeout(500) },
            );
            return ((await res.json()) as { confirm?: boolean }).confirm === true;
          } catch {
            return false;
          }
        }),
    );
    const confirms = answers.filter(Boolean).length;
    if (confirms === this.cluster.members.length - 1) this.held?.extend(sentAt);
    return confirms;
  }

  private async act(d: Decision, obs: Observation): Promise<void> {
    switch (d.do) {
      case "wait":
        await this.whileWaiting(obs);
        return;
      case "start":
        this.setRole(d.role);
        return;
      case "bootstrap": {
        if (this.leaderToken === null && !(await this.takeLeaderLease())) return;
        await this.markInitialized();
        this.initialized = true;
        if (this.role?.role !== "primary") {
          this.setRole({ role: "primary", bootstrap: true, syncNames: [] });
          if (this.handle.processRunning()) await this.restart("bootstrapping as leader");
        }
        return;
      }
      case "clone":
        if (this.role?.role !== "replica" || this.role.leader?.member !== d.leader.member) {
          this.setRole({ role: "replica", leader: d.leader, rewind: false });
        }
        return;
      case "acquire": {
        // A failsafe confirmation given since the decision is a promise not to compete.
        if (await this.cm!.promise.take(() => this.takeLeaderLease())) this.hurry = true;
        return;
      }
      case "promote":
        // The others' slots first (a standby may create them): they stream from the
        // moment it is primary, and a commit waits for one of them.
        await this.ensureSlots();
        this.promoting = true; // the watchdog counts it as primary from here on
        try {
          await this.conn.query("SELECT pg_promote(true, 60)");
        } finally {
          this.promoting = false;
        }
        if ((this.held?.deadline ?? 0) <= Date.now()) {
          // The promotion outlasted the lease: another member may lead by now.
          await this.stepDown(
            { role: "replica", leader: null, rewind: true },
            "the lease ran out while promoting",
          );
          return;
        }
        this.setRole({ role: "primary", bootstrap: false, syncNames: this.syncNames() });
        await this.conn.query("SELECT pg_reload_conf()");
        this.pg = await observe(this.conn); // a primary now: lead at once (the VIP), not next cycle
        this.cm!.dropVip(); // moved to this VM again below, for the new token
        this.slotsAt = 0; // the replicas' slots, at once: they stream (and acknowledge commits) only through them
        await this.lead();
        return;
      case "lead":
        await this.lead();
        return;
      case "demote":
        await this.stepDown(
          { role: "replica", leader: d.leader, rewind: true },
          `demoting${d.leader ? `: ${d.leader.member} leads` : ""}`,
        );
        return;
      case "rejoin":
        this.setRole({ role: "replica", leader: d.leader, rewind: true });
        this.streamedAt = Date.now();
        await this.restart(`rejoining ${d.leader.member} with pg_rewind`);
        return;
      case "follow": {
        this.streamedAt = Date.now();
        const current = this.role?.role === "replica" ? this.role : null;
        const sameLeader = (l: { member: string; address: string } | null | undefined) =>
          l?.member === d.leader.member && l.address === d.leader.address;
        // A rewind onto this leader is asked for already: the restart (or start) that
        // asked it is on its way and does it; another would only cut it short.
        if (current?.rewind && sameLeader(current.leader)) return;
        const rewind = this.role?.role === "primary" || this.role === null || current?.rewind === true;
        const onlyUpstream = current !== null && !rewind && this.pg.running;
        // Started for this very leader, its rewind done (a decision taken on what was
        // observed before the start's prepare finished).
        const startedFor = !rewind && this.handle.processRunning() && sameLeader(this.preparedLeader);
        this.setRole({ role: "replica", leader: d.leader, rewind });
        // The job's start has not read its role yet (it takes this one), or read it: no
        // restart. One would stop postgres in its first moments of recovery (after a
        // pg_rewind, a recovery cut short there leaves a minimum recovery point on the
        // wrong timeline, and postgres never starts again).
        if (this.roleUnread || startedFor) return;
        // Not running (waiting to retry a start that failed, perhaps towards the last
        // leader): started again now, towards this one.
        if (onlyUpstream) {
          await this.conn.query("SELECT pg_reload_conf()");
          this.preparedLeader = d.leader; // the running postgres streams from it now
        } else await this.restart(`following ${d.leader.member}`);
        return;
      }
      case "handover":
        // A clean (fast) shutdown waits until every replica has the WAL: nothing acknowledged is left behind.
        this.lastLeader = d.to;
        await this.stepDown(
          { role: "replica", leader: null, rewind: false },
          `switchover to ${d.to}`,
          true,
          d.to,
        );
        return;
      case "fence": {
        // Asked again every FENCE_RETRY_MS while the leader stays silent: a request
        // refused because the control plane heard it a moment ago must not cost seconds.
        const fence = await this.cm!.requestFence(d.leader.vmId, FENCE_RETRY_MS);
        if (fence.fenced)
          this.hurry = true; // its lease is broken: elect at once
        else if ("why" in fence)
          this.ctx.log(`cluster manager: fencing ${d.leader.member} refused: ${fence.why}`);
        return;
      }
    }
  }

  /** Asks the store for the leader lease; true when this member holds it now. */
  private async takeLeaderLease(): Promise<boolean> {
    const sentAt = Date.now();
    const l = await this.store!.acquire(
      this.leaderKey,
      this.ctx.vmId,
      this.cluster.ttl_ms,
      this.leaderValue(),
    );
    if (l) this.takeLease(l.token, sentAt);
    return l !== undefined;
  }

  private takeLease(token: number, sentAt: number): void {
    // Taken because a switchover names this member: the old primary listens on the VIP
    // until asked (the switchover's key is gone once this member leads).
    this.plannedTakeover = this.switchoverTo === this.cluster.member;
    this.held!.took(token, sentAt);
    this.lastLeader = this.cluster.member;
    this.lastStreamingAt = null;
    this.writtenAt = [];
  }

  /** The members a commit waits for (one of them), by the job's synchronous setting. */
  private syncNames(streaming: string[] = []): string[] {
    if (this.config.synchronous === "off") return [];
    if (this.config.synchronous === "on") return streaming;
    return others(this.cluster);
  }

  /** The leader's chores: bootstrap SQL once, synchronous standbys, slots, the VIP, the init marker. */
  private async lead(): Promise<void> {
    if (!this.pg.running || this.pg.inRecovery) return;
    // Bootstrapping, or leading a cluster that was never initialized (a single node grown into one).
    if (this.role?.role === "primary" && (this.role.bootstrap || this.initialized === false)) {
      await this.bootstrapSql();
      if (this.initialized !== true) {
        await this.markInitialized();
        this.initialized = true;
      }
      this.setRole({ role: "primary", bootstrap: false, syncNames: this.syncNames() });
      await this.conn.query("SELECT pg_reload_conf()");
    }
    const streaming = (
      await this.conn.query<{ name: string; flushed: string | null }>(
        // Streaming, and heard from lately: a cut-off replica's walsender stays
        // 'streaming' until wal_sender_timeout, its reports stop at once.
        "SELECT application_name AS name, flush_lsn::text AS flushed FROM pg_stat_replication WHERE state = 'streaming' AND reply_time > now() - interval '3 seconds'",
      )
    ).filter((r) => this.cluster.members.includes(r.name));
    // Keeping up: it has flushed what was written 2 s ago. A replica that still
    // reports but no longer receives (the leader's packets to it are lost) does not.
    const now = Date.now();
    this.writtenAt.push({ at: now, lsn: parseLsn(this.pg.lsn) });
    while (this.writtenAt.length > 1 && this.writtenAt[1]!.at <= now - 2000) this.writtenAt.shift();
    const then = this.writtenAt[0]!.at <= now - 2000 ? this.writtenAt[0]!.lsn : null;
    if (streaming.some((r) => then === null || (parseLsn(r.flushed) ?? -1n) >= then))
      this.lastStreamingAt = now;
    if (this.config.synchronous === "on") {
      const want = this.syncNames(streaming.map((r) => r.name));
      if (this.role?.role === "primary" && syncStandbyNames(want) !== syncStandbyNames(this.role.syncNames)) {
        this.setRole({ role: "primary", bootstrap: false, syncNames: want });
        await this.conn.query("SELECT pg_reload_conf()");
      }
    }
    if (now - this.slotsAt > 5000) {
      this.slotsAt = now;
      await this.ensureSlots();
    }
    if (now - this.markerAt > 60_000) {
      this.markerAt = now;
      await this.gate!.call(() => this.markInitialized()).catch(() => undefined);
    }
    // Leading again while handing the VIP over: it may have moved meanwhile; moved back below.
    if (this.cm!.letVipGo()) this.ctx.log("cluster manager: let the VIP go: this member leads again");
    // Taken in a switchover: the old primary may still listen on the VIP.
    const vip = await this.cm!.serveVip(
      [this.config.port],
      this.plannedTakeover
        ? () => this.cm!.askVipReleased(this.otherPeers(), this.cluster.member)
        : undefined,
    );
    if (this.cm!.servesVip) this.plannedTakeover = false;
    if (vip) this.ctx.log(`cluster manager: serving the cluster address ${vip}`);
  }

  /** The other registered members' status APIs. */
  private otherPeers(): Array<{ address: string; statusPort: number }> {
    return this.knownPeers.filter((r) => r.member !== this.cluster.member);
  }

  /** A physical replication slot for every other member (idempotent). */
  private async ensureSlots(): Promise<void> {
    for (const m of others(this.cluster)) {
      await this.conn.query(
        "SELECT pg_create_physical_replication_slot($1) WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)",
        [m],
      );
    }
  }

  /** While waiting: a leader whose postgres stays down gives the lease up; replicas drop stale slots. */
  private async whileWaiting(obs: Observation): Promise<void> {
    const now = Date.now();
    if (obs.lease.state === "mine" && !this.pg.running) {
      this.pgDownSince ??= now;
      if (now - this.pgDownSince > this.cluster.ttl_ms) {
        // Not answering this manager is not the same as not running: it may still take
        // commits from clients (a hung backend, connections exhausted). Stop it first.
        this.say(`stepping down: postgres has not answered for ${this.cluster.ttl_ms} ms`);
        await this.stepDown(
          { role: "replica", leader: null, rewind: true },
          "postgres does not answer its cluster manager",
        );
        this.say(`released the leader lease: postgres did not answer for ${this.cluster.ttl_ms} ms`);
      }
      return;
    }
    this.pgDownSince = null;
    if (this.pg.running && this.pg.inRecovery && now - this.staleSlotsAt > 30_000) {
      this.staleSlotsAt = now;
      await this.conn
        .query("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active")
        .catch(() => undefined);
    }
  }

  /**
   * Creates the replication role and the database (idempotent). Its commits wait for
   * no standby: none can stream before the role exists (a single node grown into a
   * cluster runs with synchronous names already), and no client write is among them.
   */
  private async bootstrapSql(): Promise<void> {
    await this.conn.query("SET synchronous_commit = local");
    try {
      await this.bootstrapStatements();
    } finally {
      await this.conn.query("RESET synchronous_commit");
    }
  }

  private async bootstrapStatements(): Promise<void> {
    const secrets = pgSecrets(this.ctx);
    const exists = await this.conn.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [REPLICATION_USER]);
    const password = secrets.replication.replace(/'/g, "''");
    await this.conn.query(
      exists.length === 0
        ? `CREATE ROLE ${REPLICATION_USER} WITH REPLICATION LOGIN PASSWORD '${password}'`
        : `ALTER ROLE ${REPLICATION_USER} WITH REPLICATION LOGIN PASSWORD '${password}'`,
    );
    const db = await this.conn.query("SELECT 1 FROM pg_database WHERE datname = $1", [this.config.database]);
    if (db.length === 0) await this.conn.query(`CREATE DATABASE "${this.config.database}"`);
    this.say(`bootstrapped: role ${REPLICATION_USER} and database ${this.config.database} exist`);
  }

  /** Has the control plane keep the cluster's init marker (only its leader may; 1 s, like a store call). */
  private markInitialized(): Promise<unknown> {
    return controlPlaneCall(this.ctx, "POST", "/v1/clusters/initialized", {
      body: { key: this.cluster.key },
      timeoutMs: 1000,
    });
  }
}
