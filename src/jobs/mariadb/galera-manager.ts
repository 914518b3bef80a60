/**
 * The Galera cluster manager: a loop in the agent beside mariadbd (a job controller)
 * for a member of a MariaDB Galera cluster.
 *
 * Galera replicates every commit to every node of its Primary component; this
 * manager decides the rest:
 *
 * - **how the node starts** (the job's prepare waits for it): join a running Primary
 *   component, or bootstrap a new one — only the most advanced node once every member
 *   said where its data ends, and only while holding the leader lease, so never two
 *   (galera.ts decides);
 * - **who takes writes**: one node at a time, the holder of the leader lease, which
 *   it takes and keeps only while it is Synced in the Primary component. The holder
 *   turns `read_only` off and serves the cluster's VIP; every other node stays
 *   read-only (a client with a member's own address cannot write there). A holder
 *   that leaves the Primary component or stops being Synced gives it all up at once;
 *   when the lease's deadline passes without a renewal, a watchdog drops the VIP.
 * - **a silent writer**: the others ask the control plane to fence it (it does so only
 *   when the writer's agent is silent to it too), which frees the lease at once.
 * - **a node left outside any Primary component** for long is restarted, so it goes
 *   through the start decision again: it joins the component a member runs (a state
 *   transfer it was receiving failed and left it outside), or, when none runs, waits
 *   or bootstraps as decided (after the loss of the node it was joining, say).
 *
 * Reads wait for the node to catch up (`wsrep_sync_wait`), so a read after a
 * failover sees every write acknowledged before it.
 */
import { httpFetch } from "../../lib/fetch.js";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Connection } from "mariadb";
import { z } from "zod";
import { parseWith } from "../../lib/validate.js";
import { errorMessage } from "../../lib/errors.js";
import { Waker } from "../../lib/sleep.js";
import {
  closeServer,
  ClusterMember,
  handedDeadline,
  handedMemberSchema,
  controlPlaneCall,
  LeaderWatch,
  type LeaseLook,
  listenStatus,
  memberHeaders,
  PROBE_TIMEOUT_MS,
  StoreGate,
} from "../cluster-member.js";
import { SWITCHOVER_CYCLE_MS } from "../cluster-timing.js";
import type { JobContext, JobController, JobHandle } from "../job-type.js";
import { localRoot, mariadbPaths, openConnection, type MariadbConfig, type MariadbPaths } from "./config.js";
import { decideRunning, decideStart, known, type Position } from "./galera.js";

/** A position nobody could recover: it blocks an automatic bootstrap (galera.ts). */
const UNKNOWN: Position = { uuid: "00000000-0000-0000-0000-000000000000", seqno: -1 };

/** The node as its server reports it (SHOW STATUS), or down. */
export interface NodeState {
  running: boolean;
  /** wsrep_local_state_comment: Synced, Donor/Desynced, Joining, Joined, Initialized… */
  state: string | null;
  /** In the Primary component (wsrep_cluster_status = Primary). */
  primary: boolean;
  /** Members in its component (wsrep_cluster_size). */
  size: number | null;
  /** The last transaction it committed (wsrep_last_committed). */
  seqno: number | null;
  uuid: string | null;
  readOnly: boolean | null;
}

const DOWN: NodeState = {
  running: false,
  state: null,
  primary: false,
  size: null,
  seqno: null,
  uuid: null,
  readOnly: null,
};

/** What a member's status API answers (and `zonal cluster` shows). */
export interface GaleraStatus {
  member: string;
  role: "writer" | "synced" | "donor" | "joining" | "non-primary" | "starting" | "stopped";
  node: NodeState;
  /** While stopped, waiting to start: where its data ends ("empty": no data of the cluster; null: unknown). */
  stoppedAt: Position | "empty" | null | undefined;
  leader: string | null;
  leaseToken: number | null;
  decision: string;
  since: string;
}

/** The leader lease's value: who writes, and where. */
interface Writer {
  member: string;
  vmId: string;
  address: string;
  port: number;
}

/** What each member publishes under the cluster's `members/` prefix. */
interface Registered {
  member: string;
  address: string;
  statusPort: number;
}

/** How prepare starts mariadbd. */
export interface StartPlan {
  bootstrap: boolean;
  /** Every registered member's address (for gcomm://). */
  peers: string[];
}

/** How often a member asks again to fence a silent writer. */
const FENCE_RETRY_MS = 500;
/** How long a bootstrapping holder keeps the lease before its node is Synced. */
const BOOTSTRAP_GRACE_MS = 120_000;

const roleOf = (n: NodeState, writer: boolean, waiting: boolean): GaleraStatus["role"] => {
  if (!n.running) return waiting ? "starting" : "stopped";
  if (!n.primary) return "non-primary";
  if (n.state === "Synced") return writer ? "writer" : "synced";
  if (n.state?.startsWith("Donor")) return writer ? "writer" : "donor";
  return "joining";
};

/** What a member's manager hands to its successor agent's manager (handOff, start). */
const handedGaleraSchema = z
  .object({
    lastLeader: z.string().nullable(),
    initialized: z.boolean().nullable(),
    bootstrapUntil: z.number(),
    seenPrimary: z.boolean(),
    unsyncedSince: z.number().nullable(),
    nonPrimarySince: z.number().nullable(),
    member: handedMemberSchema,
  })
  .strict();
type HandedGalera = z.infer<typeof handedGaleraSchema>;

export class GaleraManager implements JobController {
  private readonly paths: MariadbPaths;
  private readonly cm: ClusterMember;
  private readonly gate: StoreGate;
  private readonly leaderWatch = new LeaderWatch();
  private loop: Promise<void> | undefined;
  private stopping = false;
  private server: Server | undefined;
  private node: NodeState = DOWN;
  private lastLeader: string | null = null;
  private initialized: boolean | null = null;
  private memberAt = 0;
  private knownPeers: Registered[] = [];
  /** The lease was taken because a switchover named this node, and the VIP is not served yet. */
  private plannedTakeover = false;
  private nonPrimarySince: number | null = null;
  private bootstrapUntil = 0;
  /** Since the bootstrap began, its server was seen in the Primary component. */
  private seenPrimary = false;
  /** As writer: since when its node has not been Synced (null: it is). */
  private unsyncedSince: number | null = null;
  private markedAt = 0;
  private hurry = false;
  /** The wait between cycles; a switchover's old leader cuts it short (`POST /lease-free`). */
  private readonly waker = new Waker();
  /** The next cycle comes after SWITCHOVER_CYCLE_MS (a switchover names this node, which does not lead yet). */
  private soon = false;
  private sentence = "starting";
  private since = new Date();
  /** A start prepare waits for, with where this node's data ends. */
  private pending:
    { at: Position | "empty" | null; resolve(p: StartPlan): void; reject(e: Error): void } | undefined;

  constructor(
    private readonly ctx: JobContext,
    private readonly config: MariadbConfig,
    private readonly handle: JobHandle,
  ) {
    this.paths = mariadbPaths(ctx);
    this.cm = new ClusterMember(ctx, () => this.deadlinePassed());
    this.gate = new StoreGate(this.cm.store);
  }

  private get cluster() {
    return this.cm.spec;
  }

  private get me(): Writer {
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
    this.abandoned = false;
    if (handedOver !== undefined) {
      // A predecessor agent ran mariadbd and this member: go on from there.
      const h = parseWith(handedGaleraSchema, handedOver, "handover.controller");
      this.lastLeader = h.lastLeader;
      this.initialized = h.initialized;
      this.bootstrapUntil = h.bootstrapUntil;
      this.seenPrimary = h.seenPrimary;
      this.unsyncedSince = h.unsyncedSince;
      this.nonPrimarySince = h.nonPrimarySince;
      this.cm.resume(h.member);
    }
    this.server ??= await listenStatus(
      this.ctx.address,
      this.config.status_port,
      this.cluster.member_token,
      (req, res) => this.serveStatus(req, res),
    );
    this.loop = this.run();
  }

  /**
   * For a successor agent (mariadbd keeps running): the loop stops, the lease's
   * watchdog stops here; the lease and the VIP are handed over, not given up.
   */
  async handOff(): Promise<{ state: unknown; deadline: number | null } | undefined> {
    if (!this.loop) return undefined;
    this.stopping = true;
    this.waker.wake(); // the loop ends now, not after its wait
    await this.loop;
    this.loop = undefined;
    this.leaderWatch.stop();
    this.cm.letVipGo(); // a VIP handed over is not handed on to the next agent
    await this.closeConn();
    const h: HandedGalera = {
      lastLeader: this.lastLeader,
      initialized: this.initialized,
      bootstrapUntil: this.bootstrapUntil,
      seenPrimary: this.seenPrimary,
      unsyncedSince: this.unsyncedSince,
      nonPrimarySince: this.nonPrimarySince,
      member: this.cm.handOff(),
    };
    return { state: h, deadline: handedDeadline(h.member) };
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.waker.wake(); // the loop ends now, not after its wait
    this.abandonStart();
    await this.loop;
    this.loop = undefined;
    this.leaderWatch.stop();
    // Handing the VIP over (a switchover just before this stop): until the new writer binds it.
    await this.cm.vipHandedOver();
    this.cm.dropVip();
    if (await this.cm.held.release()) this.say("released the leader lease: the job is stopping");
    await this.closeConn();
    await closeServer(this.server);
    this.server = undefined;
  }

  /**
   * The job is stopping: a prepare waiting for a start decision gives up now, and one
   * that has not asked yet (still recovering its position) gives up when it asks.
   */
  abandonStart(): void {
    this.abandoned = true;
    this.pending?.reject(new Error("the job is stopping"));
    this.pending = undefined;
  }
  private abandoned = false;

  /**
   * For prepare: how to start mariadbd, given where this node's data ends. Waits as
   * long as the decision takes (after a whole-cluster outage: until every member has
   * said where its data ends); the status says what it waits for.
   */
  awaitStart(at: Position | "empty" | null): Promise<StartPlan> {
    if (this.abandoned) return Promise.reject(new Error("the job is stopping"));
    this.pending?.reject(new Error("a newer start replaced this one"));
    return new Promise((resolve, reject) => {
      this.pending = { at, resolve, reject };
    });
  }

  status(): GaleraStatus {
    const writer = this.cm.token !== null && this.cm.servesVip;
    return {
      member: this.cluster.member,
      role: roleOf(this.node, writer, this.pending !== undefined),
      node: this.node,
      stoppedAt: this.pending?.at,
      leader: this.cm.token !== null ? this.cluster.member : this.lastLeader,
      leaseToken: this.cm.token,
      decision: this.sentence,
      since: this.since.toISOString(),
    };
  }

  private serveStatus(req: IncomingMessage, res: ServerResponse): void {
    if (this.cm.serveVipRelease(req, res, (sentence) => this.ctx.log(`galera manager: ${sentence}`))) return;
    if (this.cm.serveLeaseFree(req, res, () => this.waker.wake())) return;
    res.setHeader("content-type", "application/json");
    if (new URL(req.url ?? "/", "http://member").pathname === "/status")
      return void res.end(JSON.stringify(this.status()));
    res.statusCode = 404;
    res.end(JSON.stringify({ error: "not_found" }));
  }

  private say(sentence: string): void {
    if (sentence === this.sentence) return;
    this.sentence = sentence;
    this.since = new Date();
    this.ctx.log(`galera manager: ${sentence}`);
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      try {
        await this.cycle();
      } catch (err) {
        this.say(`cycle failed: ${errorMessage(err)}`);
      }
      if (!this.hurry) await this.waker.sleep(this.soon ? SWITCHOVER_CYCLE_MS : 250);
      this.hurry = false;
      this.soon = false;
    }
  }

  private async cycle(): Promise<void> {
    const now = Date.now();
    this.node = this.handle.processRunning() ? await this.observe() : DOWN;
    const lease = await this.leaseView(now, this.gate.begin());
    if (lease.state === "unreachable") this.gate.close();
    if (lease.state === "other") this.lastLeader = lease.leader.member;
    if (lease.state !== "unreachable") {
      await this.register(now);
      if (this.initialized !== true)
        this.initialized = await this.gate
          .call((s) => s.read(`${this.cluster.key}/initialized`))
          .then(
            (l) => l !== undefined,
            () => null,
          );
    }
    if (this.pending) return this.decideHowToStart(lease);
    if (!this.node.running) {
      this.leaderWatch.watch(null);
      if (lease.state === "mine" && now > this.bootstrapUntil) await this.stepDown("mariadbd is not running");
      else this.say("mariadbd is not running (the agent restarts it)");
      return;
    }
    await this.asMember(lease, now);
  }

  // ---- starting -------------------------------------------------------------------------

  private async decideHowToStart(lease: LeaseView): Promise<void> {
    const pending = this.pending!;
    if (lease.state === "unreachable" || this.initialized === null)
      return this.say("waiting for the lease store to decide how to start");
    const peers = await this.peers();
    const forced = await this.gate
      .call((s) => s.read(`${this.cluster.key}/bootstrap`))
      .then(
        (l) => l?.value ?? null,
        () => null,
      );
    const positions: Record<string, Position | "empty" | undefined> = {};
    // A stopped peer that could not recover its position says null: unknown, not silent.
    for (const p of peers)
      if (p.status && !p.status.node.running && p.status.stoppedAt !== undefined)
        positions[p.member] = p.status.stoppedAt ?? UNKNOWN;
    positions[this.cluster.member] = pending.at ?? UNKNOWN;
    const d = decideStart({
      me: this.cluster.member,
      members: this.cluster.members,
      // A member holding the cluster's data proves it ran, whatever the marker says.
      initialized: this.initialized || Object.values(positions).some((p) => p !== "empty" && known(p)),
      primaryRunning: peers.some((p) => p.status?.node.primary && p.status.node.state === "Synced"),
      positions,
      forced,
    });
    this.say(d.sentence);
    // A lease held from before (a writer whose server stopped, one adopted after a
    // restart) is for a node that writes: one that waits or joins gives it up.
    if (d.do !== "bootstrap" && lease.state === "mine") await this.stepDown(`not running: ${d.sentence}`);
    if (d.do === "wait") return;
    if (d.do === "bootstrap") {
      // Never two bootstraps: only the leader lease's holder starts a new component.
      if (lease.state === "other")
        return this.say(
          `${d.sentence}; ${lease.leader.member} holds the leader lease: waiting for it to lapse`,
        );
      if (lease.state !== "mine" && !(await this.takeLease())) return;
      this.bootstrapUntil = Date.now() + BOOTSTRAP_GRACE_MS;
      this.seenPrimary = false;
    }
    if (this.pending !== pending) return; // replaced or abandoned meanwhile
    this.pending = undefined;
    pending.resolve({ bootstrap: d.do === "bootstrap", peers: this.peerAddresses() });
  }

  /** Every registered member's address, this one's first. */
  private peerAddresses(): string[] {
    return [
      this.ctx.address,
      ...this.knownPeers.filter((r) => r.member !== this.cluster.member).map((r) => r.address),
    ];
  }

  // ---- running ----------------------------------------------------------------------------

  private async asMember(lease: LeaseView, now: number): Promise<void> {
    const n = this.node;
    // A store that did not answer this once takes nothing from a holder whose lease's
    // deadline is ahead (the watchdog drops the VIP when it passes).
    const holding = this.cm.token !== null && (this.cm.held.deadline ?? 0) > now;
    const mine = lease.state === "mine" || (lease.state === "unreachable" && holding);
    if (!mine || n.state === "Synced") this.unsyncedSince = null;
    else this.unsyncedSince ??= now;
    if (n.primary) this.nonPrimarySince = null;
    else this.nonPrimarySince ??= now;
    if (mine && n.primary) this.seenPrimary = true;
    if (lease.state === "other") this.leaderWatch.watch(this.statusUrl(lease.leader.address));
    else if (!mine) this.leaderWatch.watch(null);
    const d = decideRunning({
      now,
      node: n,
      lease: mine ? "mine" : lease.state,
      writerSilent:
        lease.state === "other" && this.leaderWatch.suspects(this.statusUrl(lease.leader.address)),
      unsyncedSince: this.unsyncedSince,
      bootstrapUntil: this.bootstrapUntil,
      seenPrimary: this.seenPrimary,
      nonPrimarySince: this.nonPrimarySince,
    });
    if (d.do === "hold") return this.say(d.sentence);
    if (d.do === "step-down") return this.stepDown(d.sentence);
    if (d.do === "lead") {
      this.bootstrapUntil = 0;
      return this.lead();
    }
    // A switchover names this node: it looks at the lease often until the writer lets it go.
    if (lease.state === "other" && (await this.switchoverTo()) === this.cluster.member) this.soon = true;
    // Not the writer: no VIP (but while a planned handover's overlap lasts), no writes.
    if (!this.cm.handsVip && this.cm.dropVip())
      this.ctx.log("galera manager: no longer serving the cluster address");
    if (n.readOnly === false) await this.setReadOnly(true);
    if (d.do === "fence" && lease.state === "other") {
      this.say(`the writer ${lease.leader.member} does not answer: asking to fence it`);
      const fence = await this.cm.requestFence(lease.leader.vmId, FENCE_RETRY_MS);
      if (fence.fenced) this.hurry = true;
      else if ("why" in fence)
        this.ctx.log(`galera manager: fencing ${lease.leader.member} refused: ${fence.why}`);
      return;
    }
    if (d.do === "take") {
      const to = await this.switchoverTo();
      if (to !== null && to !== this.cluster.member)
        return this.say(`switchover to ${to}: leaving the lease to it`);
      if (await this.takeLease()) {
        // A switchover names this node: the old writer listens on the VIP until asked
        // (the switchover's key is gone once this node leads).
        this.plannedTakeover = to === this.cluster.member;
        this.say("took the leader lease: this node writes");
        this.hurry = true;
      }
      return;
    }
    if (d.do === "start-over") {
      // Whether or not a member runs a Primary component, this server did not get (back)
      // into it by itself (a state transfer it was receiving failed, seen here): it
      // starts again, and the start decision joins the running component or waits.
      const runs = (await this.peers()).find((p) => p.status?.node.primary);
      this.nonPrimarySince = null;
      this.say(`${d.sentence}${runs ? `: rejoining the Primary component ${runs.member} runs` : ""}`);
      // Not awaited: the restart's prepare waits for this loop's start decision.
      void this.handle
        .restartProcess(runs ? "outside the running Primary component" : "no Primary component to rejoin", {
          abort: true,
        })
        .catch((err: unknown) => this.ctx.log(`galera manager: restart failed: ${errorMessage(err)}`));
      return;
    }
    this.say(`${d.sentence}; ${lease.state === "other" ? `${lease.leader.member} writes` : "no writer"}`);
  }

  /** The member a switchover names now (null: none, or the store did not answer). */
  private switchoverTo(): Promise<string | null> {
    return this.gate
      .call((s) => s.read(`${this.cluster.key}/switchover`))
      .then(
        (l) => l?.value ?? null,
        () => null,
      );
  }

  /** The writer's chores: the init marker, writes on, the VIP; a switchover hands it all over. */
  private async lead(): Promise<void> {
    const to = await this.switchoverTo();
    if (to !== null && to !== this.cluster.member) return this.stepDown(`switchover to ${to}`, to);
    // The control plane's marker expires (a day): refreshed while the cluster runs.
    if (this.initialized !== true || Date.now() - this.markedAt > 60_000) {
      await this.markInitialized();
      this.initialized = true;
      this.markedAt = Date.now();
    }
    // Writes on only while the lease is surely this node's (the awaits above took time).
    if (this.cm.token === null || (this.cm.held.deadline ?? 0) <= Date.now()) return;
    // Leading again while handing the VIP over: it may have moved meanwhile; moved back below.
    if (this.cm.letVipGo()) this.ctx.log("galera manager: let the VIP go: this node writes again");
    if (this.node.readOnly !== false) await this.setReadOnly(false);
    // Taken in a switchover: the old writer may still listen on the VIP.
    const vip = await this.cm.serveVip(
      [this.config.port],
      this.plannedTakeover || to === this.cluster.member
        ? () =>
            this.cm.askVipReleased(
              this.knownPeers.filter((r) => r.member !== this.cluster.member),
              this.cluster.member,
            )
        : undefined,
    );
    if (this.cm.servesVip) this.plannedTakeover = false;
    if (vip) this.ctx.log(`galera manager: serving the cluster address ${vip}`);
    this.say(`writer (Synced, ${this.node.size ?? "?"} nodes in the Primary component)`);
  }

  /**
   * Stops taking writes, in the safe order: the VIP, read-only, then the lease for
   * another node. A server in the Primary component that could not be made read-only
   * keeps the lease until it expires (no renewal): nobody else writes before then.
   * `to`: a switchover names that member (a planned handover); it is told once the
   * lease is free.
   */
  private async stepDown(why: string, to?: string): Promise<void> {
    const planned = to !== undefined;
    if (!planned) this.cm.dropVip();
    const readOnly =
      !this.node.running ||
      (await this.setReadOnly(true).then(
        () => true,
        () => false,
      ));
    // A switchover, once read-only: the VIP stays listened on, its connections cut,
    // until the new writer asks for it. A client meanwhile meets this read-only server
    // and fails at once, instead of losing its SYN (a second) to an address nobody
    // listens on.
    if (planned && !(readOnly && this.node.running && this.cm.handVip({ cut: true }))) this.cm.dropVip();
    this.bootstrapUntil = 0;
    if (!readOnly && this.node.primary) {
      this.cm.held.forget();
      return this.say(`stopped renewing the leader lease (it expires; read_only could not be set): ${why}`);
    }
    await this.cm.held.release();
    this.say(`gave up the leader lease: ${why}`);
    if (planned)
      this.cm.tellLeaseFree(
        this.knownPeers.find((p) => p.member === to),
        this.cluster.member,
      );
  }

  /** The lease's deadline passed without a renewal: another node may write from now on. */
  private deadlinePassed(): void {
    if (this.stopping) return;
    if (this.cm.dropVip())
      this.say("dropped the cluster address: the lease deadline passed without a renewal");
    void this.setReadOnly(true).catch(() => undefined);
  }

  private async takeLease(): Promise<boolean> {
    this.plannedTakeover = false; // the caller says when a switchover named this node
    const sentAt = Date.now();
    const l = await this.cm.store
      .acquire(`${this.cluster.key}/leader`, this.ctx.vmId, this.cluster.ttl_ms, JSON.stringify(this.me))
      .catch(() => undefined);
    if (!l) return false;
    this.cm.held.took(l.token, sentAt);
    this.lastLeader = this.cluster.member;
    return true;
  }

  private markInitialized(): Promise<unknown> {
    return controlPlaneCall(this.ctx, "POST", "/v1/clusters/initialized", {
      body: { key: this.cluster.key },
      timeoutMs: 1000,
    });
  }

  // ---- the lease store and the other members ----------------------------------------------

  /** The leader lease (a lease lost since the last look counts as free). */
  private async leaseView(now: number, renewNow: boolean): Promise<LeaseView> {
    const v = await this.cm.leaseView<Writer>(now, renewNow);
    return v.state === "lost" ? { state: "free" } : v;
  }

  private async register(now: number): Promise<void> {
    if (now - this.memberAt < this.cluster.renew_ms) return;
    this.memberAt = now;
    const value: Registered = {
      member: this.cluster.member,
      address: this.ctx.address,
      statusPort: this.config.status_port,
    };
    await this.gate
      .call((s) =>
        s.acquire(
          `${this.cluster.key}/members/${this.cluster.member}`,
          this.ctx.vmId,
          this.cluster.ttl_ms,
          JSON.stringify(value),
        ),
      )
      .catch(() => undefined);
    const found = await this.gate
      .call((s) => s.list(`${this.cluster.key}/members/`))
      .then(
        (ls) => ls.map((l) => JSON.parse(l.value) as Registered),
        () => undefined,
      );
    if (found && found.length > 0) this.knownPeers = found;
  }

  private statusUrl(address: string): string {
    return `http://${address}:${this.config.status_port}/status`;
  }

  /** The other registered members' status (undefined: no answer in time). */
  private peers(): Promise<Array<{ member: string; status: GaleraStatus | undefined }>> {
    return Promise.all(
      this.knownPeers
        .filter((r) => r.member !== this.cluster.member)
        .map(async (r) => {
          try {
            const res = await httpFetch(`http://${r.address}:${r.statusPort}/status`, {
              headers: memberHeaders(this.ctx),
              signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
            });
            return { member: r.member, status: res.ok ? ((await res.json()) as GaleraStatus) : undefined };
          } catch {
            return { member: r.member, status: undefined };
          }
        }),
    );
  }

  // ---- the local server --------------------------------------------------------------------

  /** The node's state through the unix socket as root (1 s at most: a stalled node is not waited for). */
  private async observe(): Promise<NodeState> {
    try {
      const c = await this.connection();
      const rows = (await c.query(
        "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_local_state_comment','wsrep_cluster_status','wsrep_cluster_size','wsrep_last_committed','wsrep_local_state_uuid')",
      )) as Array<{ Variable_name: string; Value: string }>;
      const v = Object.fromEntries(rows.map((r) => [r.Variable_name.toLowerCase(), r.Value]));
      const [ro] = (await c.query("SELECT @@global.read_only AS ro")) as Array<{ ro: number | bigint }>;
      const num = (s: string | undefined) => (s === undefined || s === "" ? null : Number(s));
      return {
        running: true,
        state: v.wsrep_local_state_comment ?? null,
        primary: v.wsrep_cluster_status === "Primary",
        size: num(v.wsrep_cluster_size),
        seqno: num(v.wsrep_last_committed),
        uuid: v.wsrep_local_state_uuid ?? null,
        readOnly: ro ? Number(ro.ro) === 1 : null,
      };
    } catch {
      await this.closeConn();
      // Running, but not answering (starting, joining by SST, or stalled).
      return { ...DOWN, running: true };
    }
  }

  private async setReadOnly(on: boolean): Promise<void> {
    const c = await this.connection();
    await c.query({ sql: `SET GLOBAL read_only = ${on ? "ON" : "OFF"}`, timeout: 2000 });
    this.node = { ...this.node, readOnly: on };
    this.ctx.log(`galera manager: read_only ${on ? "on" : "off"}`);
  }

  private async connection(): Promise<Connection> {
    // One connection, even when the deadline's watchdog asks while the cycle connects.
    this.connecting ??= (async () => {
      // A server that stops closes it: it is dropped, and the next call connects again.
      const c = await openConnection(
        { ...localRoot(this.paths, 1000), queryTimeout: 1000 },
        () => void this.closeConn(),
      );
      // Its own reads never wait for the cluster (a non-Primary node must still report).
      await c.query("SET SESSION wsrep_sync_wait = 0");
      return c;
    })().catch((err: unknown) => {
      this.connecting = undefined;
      throw err;
    });
    return this.connecting;
  }
  private connecting: Promise<Connection> | undefined;

  private async closeConn(): Promise<void> {
    const pending = this.connecting;
    this.connecting = undefined;
    const c = await pending?.catch(() => undefined);
    if (c) await c.end().catch(() => c.destroy());
  }
}

type LeaseView = Exclude<LeaseLook<Writer>, { state: "lost" }>;
