/**
 * The load-balancer pair's controller, beside each node's HAProxy: holds or watches
 * the pair's lease (`<deployment>/<group>/leader`), serves the VIP while it holds it
 * (the control plane checks the lease token before moving the address; in a planned
 * handover, until the node taking over asks for it), asks for
 * fencing when the active refuses connections or stays silent, and keeps HAProxy's config
 * current: every second it asks the control plane for its backends' instances and
 * reloads HAProxy (through its master socket: no connection dropped) when the
 * rendered config changes. The decisions are decide.ts's.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { httpFetch } from "../../lib/fetch.js";
import { execFile } from "node:child_process";
import { renameSync, writeFileSync } from "node:fs";
import type { Server as HttpServer } from "node:http";
import { connect } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { z } from "zod";
import { parseWith } from "../../lib/validate.js";
import { errorMessage } from "../../lib/errors.js";
import type { BackendState, LbNodeStatus } from "../data-service.js";
import { sleep } from "../../lib/sleep.js";
import { type LeaseStore } from "../../ha/lease-store.js";
import {
  closeServer,
  ClusterMember,
  handedDeadline,
  handedMemberSchema,
  controlPlaneCall,
  type HeldLease,
  listenStatus,
  memberHeaders,
  LeaderWatch,
} from "../cluster-member.js";
import { SWITCHOVER_CYCLE_MS } from "../cluster-timing.js";
import type { JobContext, JobController, JobHandle } from "../job-type.js";
import type { HaproxyConfig } from "./config.js";
import { decidePair, type PairDecision, type PairLease } from "./decide.js";
import { configVersion, renderHaproxyCfg, serversOf } from "./render.js";

export const HAPROXY = "/usr/sbin/haproxy";
const run = promisify(execFile);

export const haproxyPaths = (ctx: JobContext) => ({
  cfg: join(ctx.jobDir, "haproxy.cfg"),
  master: join(ctx.jobDir, "master.sock"),
  stats: join(ctx.jobDir, "stats.sock"),
});

type Links = JobContext["links"];

/** How long connections through the VIP may finish on a node that hands the VIP over (HAProxy's hard-stop-after). */
const HANDOVER_LINGER_MS = 30_000;

interface Peer {
  member: string;
  address: string;
  statusPort: number;
}

/** A single node's status API has no members to answer: no token opens it. */
const NOBODY = "";

export type { BackendState, LbNodeStatus } from "../data-service.js";

/** Sends one command to an HAProxy unix socket and returns its answer. */
export function haproxySocket(path: string, command: string, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    let out = "";
    const timer = setTimeout(() => s.destroy(new Error(`${path}: no answer in ${timeoutMs} ms`)), timeoutMs);
    s.on("connect", () => s.end(`${command}\n`));
    s.on("data", (d) => (out += d.toString()));
    s.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    s.on("close", () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

/** What the pair's manager hands to its successor agent's manager (handOff, start). */
const handedLbSchema = z
  .object({
    runningVersion: z.string().nullable(),
    holder: z.object({ member: z.string(), address: z.string(), vmId: z.string() }).strict().nullable(),
    draining: z.array(z.string()),
    member: handedMemberSchema.nullable(),
  })
  .strict();
type HandedLb = z.infer<typeof handedLbSchema>;

export class LbManager implements JobController {
  /** The pair's member skeleton (lease, failsafe, VIP, fencing); none for a single node. */
  private readonly cm: ClusterMember | undefined;
  private loop: Promise<void> | undefined;
  private stopping = false;
  private server: HttpServer | undefined;
  private holder: { member: string; address: string; vmId: string } | null = null;
  private sentence = "starting";
  private links: Links;
  /** Instances (ids) the control plane is draining: their servers take no new connections. */
  private draining = new Set<string>();
  private peers: Peer[] = [];
  private pulledAt = 0;
  private haproxyDownSince: number | null = null;
  /** Since when the active node has not answered its status API. */
  private readonly holderWatch = new LeaderWatch();
  /** The next cycle follows at once (the active was just fenced). */
  private hurry = false;
  /** The next cycle comes after SWITCHOVER_CYCLE_MS instead of 250 ms (a switchover names this node). */
  private soon = false;
  /** The version of the config HAProxy runs (set at prepare and at each reload). */
  runningVersion: string | null = null;
  /** This cycle's switchover names this node: the old active may still serve the VIP and is asked for it. */
  private planned = false;

  constructor(
    private readonly ctx: JobContext,
    private readonly config: HaproxyConfig,
    private readonly handle: JobHandle,
  ) {
    this.links = ctx.links;
    if (ctx.cluster) {
      this.cm = new ClusterMember(ctx, () => {
        // The deadline passed without a renewal: the other node may take over now.
        this.say("the lease deadline passed without a renewal (watchdog): dropped the VIP");
        this.dropVip();
      });
    }
  }

  private get store(): LeaseStore | undefined {
    return this.cm?.store;
  }
  private get held(): HeldLease | undefined {
    return this.cm?.held;
  }

  private get token(): number | null {
    return this.held?.token ?? null;
  }
  private get member() {
    return this.ctx.cluster?.member ?? "single";
  }
  private get key() {
    return this.ctx.cluster!.key;
  }

  /** The config for the current backends (prepare writes it before HAProxy starts). */
  render(): { text: string; version: string } {
    const servers = serversOf(this.config, this.links, this.draining);
    const text = renderHaproxyCfg({
      config: this.config,
      address: this.ctx.address,
      member: this.member,
      servers,
      statsSocket: haproxyPaths(this.ctx).stats,
    });
    return { text, version: configVersion(this.config, servers) };
  }

  async start(handedOver?: unknown): Promise<void> {
    if (this.loop) return;
    this.stopping = false;
    this.handedOff = false;
    if (handedOver !== undefined) {
      // A predecessor agent ran HAProxy with this config, holding (or not) the VIP.
      const h = parseWith(handedLbSchema, handedOver, "handover.controller");
      this.runningVersion = h.runningVersion;
      this.holder = h.holder;
      this.draining = new Set(h.draining);
      if (h.member) this.cm?.resume(h.member);
    }
    this.server ??= await listenStatus(
      this.ctx.address,
      this.config.status_port,
      this.ctx.cluster?.member_token ?? NOBODY,
      (req, res) => this.serveStatus(req, res),
    );
    this.loop = this.run();
  }

  /**
   * For a successor agent (HAProxy keeps running): the loop stops, the lease's
   * watchdog stops here; the lease and the VIP are handed over, not given up. This
   * node confirms no failsafe from now on (the successor does).
   */
  async handOff(): Promise<{ state: unknown; deadline: number | null } | undefined> {
    if (!this.loop) return undefined;
    this.handedOff = true;
    this.stopping = true;
    await this.loop;
    this.loop = undefined;
    this.holderWatch.stop();
    this.letVipGo("an agent handover"); // a VIP without the lease is not handed on
    const h: HandedLb = {
      runningVersion: this.runningVersion,
      holder: this.holder,
      draining: [...this.draining],
      member: this.cm?.handOff() ?? null,
    };
    return { state: h, deadline: handedDeadline(h.member) };
  }
  private handedOff = false;

  async stop(): Promise<void> {
    this.stopping = true;
    await this.loop;
    this.loop = undefined;
    this.holderWatch.stop();
    // In a handover's overlap the requests in flight finish (HAProxy's soft stop lets them).
    if (!this.letVipGo("the job stops")) this.dropVip();
    await this.held?.release();
    await closeServer(this.server);
    this.server = undefined;
  }

  async status(): Promise<LbNodeStatus> {
    let backends: BackendState[] = [];
    let oldWorkers: number | null = null;
    try {
      // The workers first: a server seen in maintenance then says nothing of a worker started since.
      oldWorkers = parseOldWorkers(await haproxySocket(haproxyPaths(this.ctx).master, "show proc"));
      backends = parseStat(await haproxySocket(haproxyPaths(this.ctx).stats, "show stat"));
    } catch {
      // HAProxy not running, or its master re-executing for a reload: unknown.
      oldWorkers = null;
    }
    return {
      member: this.member,
      role: !this.ctx.cluster ? "single" : this.token !== null && this.cm?.servesVip ? "active" : "standby",
      holder: this.token !== null ? this.member : (this.holder?.member ?? null),
      leaseToken: this.token,
      configVersion: this.runningVersion,
      backends,
      oldWorkers,
      decision: this.sentence,
    };
  }

  private serveStatus(req: IncomingMessage, res: ServerResponse): void {
    const u = new URL(req.url ?? "/", "http://node");
    res.setHeader("content-type", "application/json");
    if (u.pathname === "/status") {
      void this.status().then((s) => res.end(JSON.stringify(s)));
      return;
    }
    if (u.pathname === "/failsafe") {
      // The standby confirms an active that asks directly: it sees it as the holder and
      // neither holds nor is taking the lease. Confirming is a promise not to take the
      // lease for one TTL: the active keeps the VIP for less than that on it.
      const holder = u.searchParams.get("holder");
      const confirm =
        holder !== null &&
        !this.handedOff &&
        this.cm!.promise.confirm(
          holder,
          this.ctx.cluster!.ttl_ms,
          this.token === null && this.holder?.member === holder,
        );
      return void res.end(JSON.stringify({ member: this.member, confirm }));
    }
    // The node taking over in a planned handover holds the lease and the VIP's
    // assignment now: this node stops accepting on the VIP, and it binds it.
    if (this.cm!.serveVipRelease(req, res, (sentence) => this.ctx.log(`lb pair: ${sentence}`))) return;
    res.statusCode = 404;
    res.end(JSON.stringify({ error: "not_found" }));
  }

  private say(sentence: string): void {
    if (sentence === this.sentence) return;
    this.sentence = sentence;
    this.ctx.log(`lb pair: ${sentence}`);
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      // The config is pulled beside the cycle, not before it: a control plane that
      // does not answer must not hold up the lease's renewal or its failsafe.
      this.refreshing ??= this.refreshConfig()
        .catch((err: unknown) => this.say(`config refresh failed: ${errorMessage(err)}`))
        .finally(() => (this.refreshing = undefined));
      try {
        if (this.store) await this.cycle();
      } catch (err) {
        this.say(`cycle failed: ${errorMessage(err)}`);
      }
      if (!this.hurry) await sleep(this.soon ? SWITCHOVER_CYCLE_MS : 250);
      this.hurry = false;
      this.soon = false;
    }
    await this.refreshing;
  }

  private refreshing: Promise<unknown> | undefined;

  /** Asks the control plane for the backends' instances (each second); reloads HAProxy on a change. */
  private async refreshConfig(): Promise<void> {
    const now = Date.now();
    if (now - this.pulledAt < 1000) return;
    this.pulledAt = now;
    if (!this.ctx.cluster?.control_plane_url) return;
    try {
      const body = (await controlPlaneCall(this.ctx, "GET", "/v1/lb/backends", { timeoutMs: 2000 })) as {
        links: Links;
        peers: Peer[];
        draining?: unknown;
      };
      this.links = body.links;
      this.draining = new Set(
        Array.isArray(body.draining) ? body.draining.filter((d): d is string => typeof d === "string") : [],
      );
      this.peers = body.peers.filter((p) => p.member !== this.member);
    } catch {
      return; // the control plane is away: keep serving the config we have
    }
    const next = this.render();
    if (next.version === this.runningVersion || !this.handle.processRunning()) return;
    const paths = haproxyPaths(this.ctx);
    writeFileSync(`${paths.cfg}.new`, next.text);
    try {
      await run(HAPROXY, ["-c", "-q", "-f", `${paths.cfg}.new`]);
    } catch (err) {
      this.say(`new config refused by haproxy -c, keeping ${this.runningVersion}: ${errorMessage(err)}`);
      return;
    }
    renameSync(`${paths.cfg}.new`, paths.cfg);
    await haproxySocket(paths.master, "reload");
    this.ctx.log(`lb pair: reloaded HAProxy with config ${next.version} (was ${this.runningVersion})`);
    this.runningVersion = next.version;
  }

  private async leaseView(now: number): Promise<PairLease> {
    const store = this.store!;
    const key = `${this.key}/leader`;
    if (this.token !== null) return this.held!.view(now);
    try {
      const l = await store.read(key);
      if (!l) return { state: "free" };
      if (l.holder === this.ctx.vmId) {
        // This VM holds it (the job restarted): carry on as its holder, renewed now.
        this.held!.adopt(l.token);
        return this.held!.view(now);
      }
      const v = JSON.parse(l.value) as { member: string; address: string };
      this.holder = { ...v, vmId: l.holder };
      return { state: "other", holder: v };
    } catch {
      return { state: "unreachable" };
    }
  }

  private async cycle(): Promise<void> {
    const now = Date.now();
    const lease = await this.leaseView(now);
    // The lease came back during an overlap: the VIP may have moved to the other node
    // meanwhile, so it is let go here and moved back (the "serve" decision).
    if (lease.state === "mine") this.letVipGo("the lease is this node's again");
    // A promise to an active the control plane fenced since holds nobody back.
    const holder = this.holder;
    if (lease.state === "free" && holder && (await this.cm!.voidPromiseIfFenced(holder)))
      this.say(`${holder.member}, whose failsafe this node confirmed, was fenced: the promise is void`);
    const running = this.handle.processRunning();
    this.haproxyDownSince = running ? null : (this.haproxyDownSince ?? now);
    this.holderWatch.watch(
      lease.state === "other" ? `http://${lease.holder.address}:${this.config.status_port}/status` : null,
    );
    const holderCheck = this.holderWatch.state();
    const obs = {
      member: this.member,
      lease,
      now,
      deadline: this.held!.deadline,
      haproxyRunning: running,
      haproxyDownLong:
        this.haproxyDownSince !== null && now - this.haproxyDownSince > this.ctx.cluster!.ttl_ms,
      holderRefuses: holderCheck.result === "refused",
      holderUnansweredMs: holderCheck.unansweredMs,
      peerConfirms: lease.state === "unreachable" && this.token !== null ? await this.peerConfirms() : false,
      promised: this.cm!.promise.to() !== null,
      // A store that did not answer the lease is not asked again this cycle.
      switchoverTo:
        lease.state === "unreachable"
          ? null
          : await this.store!.read(`${this.key}/switchover`).then(
              (l) => l?.value ?? null,
              () => null,
            ),
    };
    const verdict = decidePair(obs);
    this.say(verdict.sentence);
    this.planned = obs.switchoverTo === this.member;
    await this.act(verdict.decision);
    // Named in a switchover and not holding the lease yet: look again soon, not in a
    // full cycle — clients reach nobody between the old node dropping the VIP and this
    // one serving it.
    if (obs.switchoverTo === this.member && this.token === null) this.soon = true;
  }

  /** The other node confirms directly (and promises not to compete for a TTL): the deadline moves. */
  private async peerConfirms(): Promise<boolean> {
    const sentAt = Date.now();
    const confirmed = await this.askPeers();
    if (confirmed) this.held?.extend(sentAt);
    return confirmed;
  }

  private async askPeers(): Promise<boolean> {
    for (const p of this.peers) {
      try {
        const r = await httpFetch(`http://${p.address}:${p.statusPort}/failsafe?holder=${this.member}`, {
          headers: memberHeaders(this.ctx),
          signal: AbortSignal.timeout(1000),
        });
        if (((await r.json()) as { confirm?: boolean }).confirm === true) return true;
      } catch {
        /* not confirmed */
      }
    }
    return false;
  }

  private async act(d: PairDecision): Promise<void> {
    const store = this.store!;
    const key = `${this.key}/leader`;
    switch (d.do) {
      case "wait":
        return;
      case "acquire": {
        // A failsafe confirmation given since the decision is a promise not to take it.
        const took = await this.cm!.promise.take(async () => {
          const sentAt = Date.now();
          const l = await store.acquire(
            key,
            this.ctx.vmId,
            this.ctx.cluster!.ttl_ms,
            JSON.stringify({ member: this.member, address: this.ctx.address }),
          );
          if (!l) return false;
          this.held!.took(l.token, sentAt);
          return true;
        });
        if (took) this.letVipGo("the lease is this node's again"); // moved back below
        if (took) await this.serveVip();
        return;
      }
      case "serve":
        await this.serveVip();
        return;
      case "stand-down":
        this.dropVip();
        return;
      case "handover":
        // Planned, with HAProxy running here: the VIP stays until the node taking
        // over asks for it, so that clients find it served all along but between this
        // node closing it and that one binding it (a request apart). An LB node keeps
        // no data: serving on without the lease can harm nobody, and on the local
        // cloud two VMs cannot bind one address at once. Marked before the release, so
        // that the ask finds this node handing however soon it comes.
        if (!this.handle.processRunning() || !this.cm!.handVip({ lingerMs: HANDOVER_LINGER_MS }))
          this.dropVip();
        await this.held!.release();
        return;
      case "fence": {
        const fence = await this.cm!.requestFence(this.holder!.vmId);
        if (fence.fenced)
          this.hurry = true; // its lease is broken: take it at once
        else if ("why" in fence) this.say(`fencing not done: ${fence.why}`);
        return;
      }
    }
  }

  private async serveVip(): Promise<void> {
    // Only a planned takeover asks: after a failure the old node is dead or fenced, and
    // asking it would cost the whole timeout before the bind.
    const vip = await this.cm!.serveVip(
      this.config.frontends.map((f) => f.port),
      this.planned ? () => this.cm!.askVipReleased(this.peers, this.member) : undefined,
    );
    if (vip) this.ctx.log(`lb pair: serving the VIP ${vip}`);
  }

  /**
   * Ends a planned handover's overlap (idempotent): new connections to the VIP go to
   * the other node now; the ones in flight here finish (HAProxy's hard-stop-after
   * bounds them too). True when this node still served the VIP.
   */
  private letVipGo(why: string): boolean {
    const went = this.cm?.letVipGo() ?? false;
    if (went) this.ctx.log(`lb pair: let the VIP go after the handover (${why})`);
    return went;
  }

  private dropVip(o: { lingerMs?: number } = {}): void {
    if (this.cm?.dropVip(o)) this.ctx.log("lb pair: dropped the VIP");
  }
}

/**
 * The master's `show proc` → how many workers of earlier configs still run (after a
 * reload they finish their connections, up to hard-stop-after): the lines under
 * "# old workers", up to the next "#" heading.
 */
export function parseOldWorkers(text: string): number {
  let inOld = false;
  let n = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) inOld = line.trim() === "# old workers";
    else if (inOld && /^\d+\s/.test(line)) n += 1;
  }
  return n;
}

/** `show stat` CSV → each server's state (BACKEND/FRONTEND summary rows left out). */
export function parseStat(csv: string): BackendState[] {
  const [head, ...rows] = csv.trim().split("\n");
  if (!head?.startsWith("# ")) return [];
  const cols = head.slice(2).split(",");
  const at = (name: string) => cols.indexOf(name);
  return rows
    .map((r) => r.split(","))
    .filter((r) => r[at("svname")] !== "BACKEND" && r[at("svname")] !== "FRONTEND")
    .map((r) => ({ backend: r[at("pxname")]!, server: r[at("svname")]!, status: r[at("status")]! }));
}
