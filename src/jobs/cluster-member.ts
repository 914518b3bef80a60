/**
 * What every clustered job's controller needs beside its decisions (the postgres
 * cluster manager, the load-balancer pair): its lease store, a holder's lease that
 * renews itself on schedule and watches its own deadline, the control plane's
 * member API, a status server on the VM's address, and a watch on the leader's
 * status API that tells a refusal (its processes died, its kernel answers) from
 * silence (its VM crashed, froze or is cut off: nothing answers).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { z } from "zod";
import { EtcdLeaseStore } from "../ha/etcd/store.js";
import { HttpLeaseStore } from "../ha/embedded/client.js";
import { errorMessage } from "../lib/errors.js";
import { sleep } from "../lib/sleep.js";
import { fetcherFor, httpFetch } from "../lib/fetch.js";
import { listenOptions, track } from "../lib/handed-sockets.js";
import { bearerToken, tokensEqual } from "../lib/http-errors.js";
import type { LeaseStore } from "../ha/lease-store.js";
import type { ClusterSpec, JobContext } from "./job-type.js";
import { FailsafePromise } from "./failsafe-promise.js";
import {
  PROBE_EVERY_MS,
  PROBE_TIMEOUT_MS,
  SUSPECT_AFTER_MS,
  WATCH_PROBE_TIMEOUT_MS,
} from "./cluster-timing.js";

export { PROBE_TIMEOUT_MS, SUSPECT_AFTER_MS } from "./cluster-timing.js";

/**
 * How long a member that gave up its role in a planned handover goes on listening on
 * the VIP at most, for the member taking over to ask for it (it asks once the control
 * plane moved the VIP to it, and binds it at once after).
 */
export const VIP_HANDOVER_MS = 2_000;
/** How long the member taking over waits for each other member to let the VIP go. */
const VIP_RELEASE_TIMEOUT_MS = 500;
/** A member's lease-free hint is heeded once a second at most. */
const LEASE_FREE_EVERY_MS = 1000;

/** The cluster's lease store, as this VM reaches it (1 s timeouts: a cycle never waits long). */
export function leaseStoreFor(ctx: JobContext): LeaseStore {
  const c = ctx.cluster!;
  return c.lease.store === "etcd"
    ? new EtcdLeaseStore(c.lease.endpoints, 1000)
    : new HttpLeaseStore({
        url: c.lease.url,
        token: ctx.services.token,
        timeoutMs: 1000,
        ...(ctx.services.ca ? { ca: ctx.services.ca } : {}),
      });
}

/**
 * Calls the control plane's member API (VIP moves, fencing, LB backends) with the
 * VM's token, over TLS trusting only the control plane's CA when the VM has one.
 * Rejects with the status and body of a refusal, or the network error.
 */
export async function controlPlaneCall(
  ctx: JobContext,
  method: "GET" | "POST",
  path: string,
  o: { body?: unknown; timeoutMs?: number } = {},
): Promise<unknown> {
  const base = ctx.cluster?.control_plane_url ?? ctx.services.controlPlaneUrl;
  if (!base) throw new Error(`${path}: this VM knows no control plane (its agent sends no heartbeats)`);
  const url = `${base}${path}`;
  const res = await fetcherFor(url, ctx.services.ca)(url, {
    method,
    headers: {
      authorization: `Bearer ${ctx.services.token}`,
      ...(o.body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: o.body === undefined ? undefined : JSON.stringify(o.body),
    signal: AbortSignal.timeout(o.timeoutMs ?? 10_000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : undefined;
}

/** POSTs to the control plane's member API (VIP moves, fencing). */
export function controlPlanePost(ctx: JobContext, path: string, body: unknown): Promise<unknown> {
  return controlPlaneCall(ctx, "POST", path, { body });
}

/** How a member calls another's status API: with the cluster's member token. */
export function memberHeaders(ctx: JobContext): Record<string, string> {
  return { authorization: `Bearer ${ctx.cluster!.member_token}` };
}

/**
 * Starts a member's status server on the VM's address. It answers the cluster's
 * members only (their member token; 401 otherwise — still an answer, so a peer's
 * liveness probe needs no token).
 */
export async function listenStatus(
  address: string,
  port: number,
  memberToken: string,
  handle: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<Server> {
  const server = createServer((req, res) => {
    const token = bearerToken(req.headers.authorization);
    if (!token || !tokensEqual(token, memberToken)) {
      res.statusCode = 401;
      res.setHeader("content-type", "application/json");
      return void res.end(
        JSON.stringify({ error: "unauthorized", message: "a cluster member's token is needed" }),
      );
    }
    handle(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(listenOptions(address, port), () => resolve());
  });
  track(address, port, server);
  return server;
}

/**
 * A POST to `path` on a member's status API (its token already checked): its URL;
 * undefined for another path; null when answered here (405: another method).
 */
function memberPost(req: IncomingMessage, res: ServerResponse, path: string): URL | null | undefined {
  const u = new URL(req.url ?? "/", "http://member");
  if (u.pathname !== path) return undefined;
  res.setHeader("content-type", "application/json");
  if (req.method === "POST") return u;
  res.statusCode = 405;
  res.end(JSON.stringify({ error: "method_not_allowed", message: "POST only" }));
  return null;
}

export const closeServer = (server: Server | undefined): Promise<void> =>
  new Promise((r) => (server ? server.close(() => r()) : r()));

export type ProbeResult = "answers" | "refused" | "silent";

/** One HTTP GET: answered (any status), refused (nothing listens there), or silent (no answer in time). */
export function probe(url: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<ProbeResult> {
  return httpFetch(url, { signal: AbortSignal.timeout(timeoutMs) }).then(
    async (res): Promise<ProbeResult> => {
      await res.body?.cancel();
      return "answers";
    },
    (err: unknown): ProbeResult => {
      const code = (err as { cause?: { code?: string } }).cause?.code;
      return code === "ECONNREFUSED" ? "refused" : "silent";
    },
  );
}

/**
 * Watches one peer (the leader this member follows) through its status API, on its
 * own timer (a probe every PROBE_EVERY_MS, whatever the member's cycle is waiting
 * on): since when it has not answered, and whether it refused. Watching another
 * peer starts the count again.
 */
export class LeaderWatch {
  private url: string | null = null;
  private lastAnswer = 0;
  private refused = false;
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;

  /** Watches `url` from now on (null: nobody). The same url again changes nothing. */
  watch(url: string | null): void {
    if (url === this.url) return;
    clearInterval(this.timer);
    this.url = url;
    this.lastAnswer = Date.now();
    this.refused = false;
    if (url === null) return;
    this.timer = setInterval(() => void this.tick(url), PROBE_EVERY_MS);
    void this.tick(url);
  }

  private async tick(url: string): Promise<void> {
    // A silent peer: enough probes are out waiting (a slow one: they overlap).
    if (this.inFlight >= WATCH_PROBE_TIMEOUT_MS / PROBE_EVERY_MS) return;
    this.inFlight += 1;
    const result = await probe(url, WATCH_PROBE_TIMEOUT_MS).finally(() => (this.inFlight -= 1));
    if (this.url !== url) return;
    if (result === "answers") {
      this.lastAnswer = Date.now();
      this.refused = false;
    } else if (result === "refused") this.refused = true;
  }

  /** The watched peer now: refused, or how long it has gone unanswered (0 while it answers). */
  state(): { result: ProbeResult; unansweredMs: number } {
    if (this.url === null) return { result: "answers", unansweredMs: 0 };
    const ms = Date.now() - this.lastAnswer;
    if (this.refused) return { result: "refused", unansweredMs: ms };
    return ms > PROBE_EVERY_MS + PROBE_TIMEOUT_MS
      ? { result: "silent", unansweredMs: ms }
      : { result: "answers", unansweredMs: 0 };
  }

  /** True when `url` is watched and has gone unanswered for SUSPECT_AFTER_MS or more (or refused). */
  suspects(url: string): boolean {
    const s = this.state();
    return this.url === url && (s.result === "refused" || s.unansweredMs >= SUSPECT_AFTER_MS);
  }

  stop(): void {
    this.watch(null);
  }
}

/**
 * A cycle's calls to the lease store beside the lease view. Once one fails, the rest
 * of the cycle makes none (each would wait for its timeout), and the next lease view
 * renews at once instead of trusting the last renewal: a holder learns that the store
 * is away one cycle sooner and asks for the failsafe while its lease still holds.
 */
export class StoreGate {
  private open = true;
  private missed = false;

  constructor(private readonly store: LeaseStore) {}

  /** A new cycle; whether a call failed since the last one (the lease view should renew now). */
  begin(): boolean {
    const missed = this.missed;
    this.missed = false;
    this.open = true;
    return missed;
  }

  /** The lease view did not get an answer: no further call this cycle. */
  close(): void {
    this.open = false;
  }

  /** Makes `call` unless a call failed this cycle (then it rejects at once). */
  async call<T>(call: (store: LeaseStore) => Promise<T>): Promise<T> {
    if (!this.open) throw new Error("the lease store did not answer this cycle");
    try {
      return await call(this.store);
    } catch (err) {
      this.open = false;
      this.missed = true;
      throw err;
    }
  }
}

/**
 * A lease this VM holds: renewed at most every `renew_ms`; its deadline is the sent
 * time of the last good renew + TTL (minus a margin), never later than the store's.
 *
 * The deadline has a watchdog: when it passes without a renewal (or a failsafe
 * extension), `onDeadline` runs at once from a timer — not at the holder's next
 * cycle, which may be stuck waiting on something — so the holder stops acting
 * before anyone else may take over.
 */
export class HeldLease {
  token: number | null = null;
  private until: number | null = null;
  private lastRenewAt = 0;
  private lastRenewOk = false;
  private watchdog: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: LeaseStore,
    private readonly key: string,
    private readonly holder: string,
    private readonly cluster: Pick<ClusterSpec, "ttl_ms" | "renew_ms">,
    private readonly onDeadline: () => void = () => undefined,
  ) {}

  /** Until when the lease is surely this VM's; null when it holds none (or has not renewed an adopted one yet). */
  get deadline(): number | null {
    return this.until;
  }

  private setDeadline(deadline: number | null): void {
    this.until = deadline;
    clearTimeout(this.watchdog);
    this.watchdog = undefined;
    if (deadline === null) return;
    this.watchdog = setTimeout(() => this.check(), Math.max(0, deadline - Date.now()));
  }

  private check(): void {
    if (this.until === null) return;
    if (this.until > Date.now()) return this.setDeadline(this.until);
    this.onDeadline();
  }

  /** Took it (acquire or bootstrap) with `token`, asked for at `sentAt`. */
  took(token: number, sentAt: number): void {
    this.token = token;
    this.lastRenewAt = sentAt;
    this.lastRenewOk = true;
    this.setDeadline(sentAt + this.cluster.ttl_ms - 250);
  }

  /** Holds it already (found in the store after a restart): not surely mine until the next view renews it. */
  adopt(token: number): void {
    this.token = token;
    this.lastRenewAt = 0;
    this.lastRenewOk = false;
    this.setDeadline(null);
  }

  /**
   * Every other member confirmed directly, asked at `sentAt`, that it follows this one
   * and will not compete for a TTL from when it answered: the deadline moves to a TTL
   * from `sentAt`, never back.
   */
  extend(sentAt: number): void {
    if (this.token === null) return;
    this.setDeadline(Math.max(this.until ?? 0, sentAt + this.cluster.ttl_ms - 250));
  }

  forget(): void {
    this.token = null;
    this.setDeadline(null);
  }

  /**
   * For a successor agent: the lease as held now (token, deadline, last renewal),
   * with the watchdog stopped here — the successor's takes over the same deadline.
   */
  handOff(): HandedLease | null {
    clearTimeout(this.watchdog);
    this.watchdog = undefined;
    if (this.token === null) return null;
    return {
      token: this.token,
      until: this.until,
      lastRenewAt: this.lastRenewAt,
      lastRenewOk: this.lastRenewOk,
    };
  }

  /** Holds what a predecessor agent handed over: the same token and deadline, the watchdog armed. */
  resume(h: HandedLease | null): void {
    if (h === null) return this.forget();
    this.token = h.token;
    this.lastRenewAt = h.lastRenewAt;
    this.lastRenewOk = h.lastRenewOk;
    this.setDeadline(h.until);
  }

  /** Gives it up (best effort: if the store is away, it expires) and forgets it. True if it was held. */
  async release(): Promise<boolean> {
    const token = this.token;
    this.forget();
    if (token === null) return false;
    await this.store.release(this.key, this.holder, token).catch(() => undefined);
    return true;
  }

  /**
   * Renews when due (or at once with `renewNow`: another call to the store failed
   * since): mine, lost (someone else has it, or it was broken), or unreachable.
   */
  async view(
    now: number,
    renewNow = false,
  ): Promise<{ state: "mine"; token: number } | { state: "lost" } | { state: "unreachable" }> {
    const token = this.token!;
    if (!renewNow && now - this.lastRenewAt < this.cluster.renew_ms)
      return this.lastRenewOk ? { state: "mine", token } : { state: "unreachable" };
    this.lastRenewAt = now;
    try {
      if (await this.store.renew(this.key, this.holder, token)) {
        if (this.token !== token) return { state: "lost" }; // given up meanwhile
        this.setDeadline(Math.max(this.until ?? 0, now + this.cluster.ttl_ms - 250));
        this.lastRenewOk = true;
        return { state: "mine", token };
      }
      this.forget();
      return { state: "lost" };
    } catch {
      this.lastRenewOk = false;
      return { state: "unreachable" };
    }
  }
}

/** A held lease as one agent hands it to its successor (epoch milliseconds: the same host's clock). */
export const handedLeaseSchema = z
  .object({
    token: z.number().int(),
    until: z.number().nullable(),
    lastRenewAt: z.number(),
    lastRenewOk: z.boolean(),
  })
  .strict();
export type HandedLease = z.infer<typeof handedLeaseSchema>;

/** What a cluster member hands to its successor agent (ClusterMember.handOff). */
export const handedMemberSchema = z
  .object({
    lease: handedLeaseSchema.nullable(),
    promise: z.object({ leader: z.string(), until: z.number() }).strict().nullable(),
    vipServed: z.boolean(),
  })
  .strict();
export type HandedMember = z.infer<typeof handedMemberSchema>;

/** Until when a handed member surely holds its lease (null: it holds none). */
export const handedDeadline = (h: HandedMember | null): number | null => h?.lease?.until ?? null;

/** The leader lease as a member sees it (ClusterMember.leaseView); `T` is what holders publish. */
export type LeaseLook<T> =
  | { state: "mine"; token: number }
  | { state: "lost" }
  | { state: "other"; leader: T }
  | { state: "free" }
  | { state: "unreachable" };

/** How a fencing request ended: fenced, refused (the control plane's reason), or not sent (asked too lately). */
export type FenceOutcome =
  { fenced: true } | { fenced: false; why: string } | { fenced: false; skipped: true };

/**
 * What every clustered controller holds as a member of its cluster — the one
 * skeleton each controller uses, handed its job's context (no global lookup): the
 * lease store, the leader lease with its deadline watchdog (`onDeadline` runs the
 * moment it passes without a renewal), the failsafe promises it gave, the cluster's
 * VIP on this VM (served only after the control plane moved it here for the lease's
 * holder and token; dropped at once), and requests to fence a silent leader.
 */
export class ClusterMember {
  readonly store: LeaseStore;
  readonly held: HeldLease;
  /** Failsafe confirmations given, and the guard around taking the lease. */
  readonly promise = new FailsafePromise();
  private vipServed = false;
  /** A planned handover's overlap: how long open connections may finish after it. */
  private handing: { lingerMs: number } | null = null;
  /** When a lease-free hint was last heeded. */
  private leaseFreeAt = 0;
  private fenceAt = 0;

  constructor(
    private readonly ctx: JobContext,
    onDeadline: () => void,
  ) {
    const c = ctx.cluster;
    if (!c) throw new Error("a cluster member needs the spec's cluster section (the director fills it in)");
    this.store = leaseStoreFor(ctx);
    this.held = new HeldLease(this.store, `${c.key}/leader`, ctx.vmId, c, onDeadline);
  }

  get spec(): ClusterSpec {
    return this.ctx.cluster!;
  }

  get leaderKey(): string {
    return `${this.spec.key}/leader`;
  }

  /** The leader lease's fencing token while this member holds it. */
  get token(): number | null {
    return this.held.token;
  }

  /** Whether this VM serves the cluster's VIP now. */
  get servesVip(): boolean {
    return this.vipServed;
  }

  /**
   * Serves the cluster's VIP on `ports` once the control plane moved it to this VM
   * (it checks that this VM holds the leader lease with this token). Returns the VIP
   * when it starts serving it now; null when it already did, holds no lease, or the
   * cluster has none. Rejects with the control plane's refusal. `beforeBind` runs once
   * the VIP is moved, before this VM binds it (a planned handover asks the old holder
   * to let it go then).
   */
  async serveVip(ports: number[], beforeBind?: () => Promise<void>): Promise<string | null> {
    const vip = this.spec.vip;
    const token = this.token;
    if (!vip || this.vipServed || token === null) return null;
    await controlPlanePost(this.ctx, "/v1/clusters/vip", { key: this.spec.key, token });
    await beforeBind?.();
    // The move took a while: serve only if the lease is still this token's and its
    // deadline has not passed meanwhile (the watchdog found nothing to drop then).
    if (this.token !== token || (this.held.deadline ?? 0) <= Date.now()) return null;
    this.ctx.services.setAddresses([{ address: vip, ports }]);
    this.vipServed = true;
    return vip;
  }

  /**
   * Stops serving the VIP at once (idempotent): no new connection; the open ones are
   * cut unless `lingerMs` lets them finish. True when it served it.
   */
  dropVip(o: { lingerMs?: number } = {}): boolean {
    this.handing = null;
    if (!this.vipServed) return false;
    this.ctx.services.setAddresses([], o);
    this.vipServed = false;
    return true;
  }

  /**
   * A planned handover, on the member giving up its role: it goes on listening on the
   * VIP (it served it) until the member taking over, which the control plane moved the
   * VIP to, asks for it (`letVipGo`, from `serveVipRelease`), or VIP_HANDOVER_MS pass
   * (its own timer). A client that connects meanwhile reaches this member instead of
   * losing its SYN to an address nobody listens on (a second, on a real network as on
   * the local cloud). `cut`: the connections open now are cut at once (a database
   * writer: nobody goes on writing through it; a new connection meets its read-only or
   * stopping server and fails at once). `lingerMs`: what letting go leaves the
   * connections open then. True when it hands the VIP over, false when it served none.
   */
  handVip(o: { cut?: boolean; lingerMs?: number } = {}): boolean {
    if (!this.vipServed) return false;
    if (o.cut) this.ctx.services.cutConnections();
    this.handing = { lingerMs: o.lingerMs ?? 0 };
    // On its own timer: the controller's cycle may be held up meanwhile (a restart).
    const handing = this.handing;
    setTimeout(() => {
      if (this.handing === handing && this.letVipGo())
        this.ctx.log(`let the VIP go: nobody asked for it in ${VIP_HANDOVER_MS} ms`);
    }, VIP_HANDOVER_MS).unref();
    return true;
  }

  /** Whether this member still listens on the VIP after a planned handover. */
  get handsVip(): boolean {
    return this.handing !== null;
  }

  /**
   * Waits while this member hands the VIP over: until the member taking over asks for it,
   * or VIP_HANDOVER_MS after the handover began (its timer lets it go). A job that
   * stops right after its handover (a rolling update) waits here before its listener
   * goes, so clients meet a listener until the new one binds.
   */
  async vipHandedOver(): Promise<void> {
    while (this.handing !== null) await sleep(20);
  }

  /** Ends a planned handover's overlap (idempotent). True when this member still served the VIP. */
  letVipGo(): boolean {
    if (this.handing === null) return false;
    return this.dropVip({ lingerMs: this.handing.lingerMs });
  }

  /**
   * The member giving up its role in a switchover, once it released the lease, tells the
   * member the switchover names to look at the lease now (`POST /lease-free`, answered
   * by `serveLeaseFree`); that member would otherwise see it free at its next cycle, up
   * to a cycle later. Not awaited, and nothing depends on it: the lease decides.
   */
  tellLeaseFree(peer: { address: string; statusPort: number } | undefined, me: string): void {
    if (!peer) return;
    httpFetch(`http://${peer.address}:${peer.statusPort}/lease-free?from=${encodeURIComponent(me)}`, {
      method: "POST",
      headers: memberHeaders(this.ctx),
      signal: AbortSignal.timeout(VIP_RELEASE_TIMEOUT_MS),
    }).then(
      (r) => r.body?.cancel(),
      () => undefined, // it looks at its next cycle instead
    );
  }

  /**
   * Answers `POST /lease-free` on the member's status API: `wake` cuts the controller's
   * wait between cycles short, so it looks at the lease now. It changes nothing else: a
   * member that calls it only hurries a look, once a second at most (a member calling
   * it in a loop does not spin this one's). True when the request was for that path.
   */
  serveLeaseFree(req: IncomingMessage, res: ServerResponse, wake: () => void): boolean {
    const u = memberPost(req, res, "/lease-free");
    if (u === undefined) return false;
    if (u === null) return true;
    const now = Date.now();
    const looking = now - this.leaseFreeAt >= LEASE_FREE_EVERY_MS;
    if (looking) {
      this.leaseFreeAt = now;
      this.ctx.log(
        `${(u.searchParams.get("from") ?? "a member").slice(0, 64)} says the lease is free: looking now`,
      );
      wake();
    }
    res.end(JSON.stringify({ looking }));
    return true;
  }

  /**
   * The member taking over in a planned handover asks the others to let the VIP go
   * (`POST /vip-release` on their status APIs), once the control plane moved it to it
   * and before it binds it. Only a planned takeover asks: after a failure the old
   * member is dead or fenced, and asking it would cost the timeout before the bind.
   */
  async askVipReleased(peers: Array<{ address: string; statusPort: number }>, me: string): Promise<void> {
    // Done when a member says it let the VIP go (one handed it), or when every member
    // answered or timed out: a member that is down must not hold up the bind.
    await new Promise<void>((resolve) => {
      let left = peers.length;
      if (left === 0) return resolve();
      for (const p of peers)
        httpFetch(`http://${p.address}:${p.statusPort}/vip-release?to=${encodeURIComponent(me)}`, {
          method: "POST",
          headers: memberHeaders(this.ctx),
          signal: AbortSignal.timeout(VIP_RELEASE_TIMEOUT_MS),
        })
          .then(
            async (r) => ((await r.json()) as { released?: unknown }).released === true,
            () => false, // not handing it, or gone: the bind is retried until the address is free
          )
          .then((released) => {
            left -= 1;
            if (released || left === 0) resolve();
          });
    });
  }

  /**
   * The status API's `/vip-release` (a member's token already checked): lets the VIP go
   * when this member hands it over. True when the request was for that path (answered).
   * `said` hears who asked, when this member let it go.
   */
  serveVipRelease(req: IncomingMessage, res: ServerResponse, said: (sentence: string) => void): boolean {
    const u = memberPost(req, res, "/vip-release");
    if (u === undefined) return false;
    if (u === null) return true;
    const released = this.letVipGo();
    if (released)
      said(`let the VIP go after the handover (${u.searchParams.get("to") ?? "the other member"} asked)`);
    res.end(JSON.stringify({ member: this.spec.member, released }));
    return true;
  }

  /**
   * Asks the control plane to fence the leader on `vmId` (it agrees only when that VM
   * is silent to it too), at most once per `minIntervalMs`.
   */
  async requestFence(vmId: string, minIntervalMs = 0): Promise<FenceOutcome> {
    if (Date.now() - this.fenceAt < minIntervalMs) return { fenced: false, skipped: true };
    this.fenceAt = Date.now();
    return controlPlanePost(this.ctx, "/v1/clusters/fence", { key: this.spec.key, vmId }).then(
      (): FenceOutcome => ({ fenced: true }),
      (err: unknown): FenceOutcome => ({ fenced: false, why: errorMessage(err) }),
    );
  }

  /**
   * The leader lease as the store has it: this VM's (renewed when due, or at once with
   * `renewNow`), lost since the last look, another member's (with the value it
   * published), free, or unreachable. A lease this VM holds but had forgotten (its
   * manager restarted) is adopted and renewed now.
   */
  async leaseView<T>(now: number, renewNow: boolean): Promise<LeaseLook<T>> {
    if (this.held.token !== null) return this.held.view(now, renewNow);
    try {
      const l = await this.store.read(this.leaderKey);
      if (!l) return { state: "free" };
      if (l.holder === this.ctx.vmId) {
        this.held.adopt(l.token);
        return this.held.view(now);
      }
      return { state: "other", leader: JSON.parse(l.value) as T };
    } catch {
      return { state: "unreachable" };
    }
  }

  /**
   * For a successor agent (the job keeps running): the lease with its deadline, the
   * failsafe promise given, whether the VIP is served here. Nothing is released or
   * dropped; this member's watchdog stops (the successor's takes the same deadline).
   */
  handOff(): HandedMember {
    return { lease: this.held.handOff(), promise: this.promise.handOff(), vipServed: this.vipServed };
  }

  /** Goes on from what a predecessor agent handed over (the VIP's listener came along). */
  resume(h: HandedMember): void {
    this.held.resume(h.lease);
    this.promise.resume(h.promise);
    this.vipServed = h.vipServed;
  }

  /** Voids a failsafe promise to `leader` if the control plane fenced it since. True when it did. */
  voidPromiseIfFenced(leader: { member: string; vmId: string }): Promise<boolean> {
    return this.promise.voidIfFenced(this.store, this.spec.key, leader);
  }
}
