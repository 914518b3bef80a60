/**
 * A write checker for a clustered database, whichever it is: writers insert numbered
 * rows (one sequence for all of them), each stamped by the member that committed it
 * and the timeline it was committed on, and keep every number whose commit was
 * acknowledged. One writer goes through the cluster's address (the VIP); more can
 * write to each member directly (`addDirect`), the way a client with an old address
 * would: a member that accepts a write it should not shows up there.
 *
 * `verify` reads the table back from a member that holds everything and judges the
 * history (write-history.ts): every acknowledged row is there, and there were never
 * two writers.
 *
 * What differs between databases (the client, the table's SQL, how a member names
 * itself) is a `CheckerDriver`; the loop, the bookkeeping and the judging are here
 * once. Drivers: pg-checker.ts (PostgreSQL), mariadb-checker.ts (MariaDB Galera).
 */
import { sleep, waitFor } from "../lib/sleep.js";
import { judgeHistory, type Ack, type HistoryVerdict, type Row } from "./write-history.js";

/**
 * How long a client waits for a connection and for each statement. A driver enforces
 * both on the client: a server that falls silent (a partition, a frozen VM) answers
 * no server-side timeout, and must cost a writer a second, not a TCP timeout.
 */
export interface Timeouts {
  connectMs: number;
  queryMs: number;
}

/** A writer gives up quickly: its failures are the gap being measured. */
export const WRITER_TIMEOUTS: Timeouts = { connectMs: 500, queryMs: 1000 };

/** The reader has room for a long table on a slow server. */
export const READER_TIMEOUTS: Timeouts = { connectMs: 2000, queryMs: 60_000 };

/**
 * One connection to one server. Any method may reject (the server went away, a
 * timeout passed, the server refused); the checker then closes the session and
 * connects again, so a session is never used after a failure.
 */
export interface CheckerSession {
  /**
   * Inserts row `n` and commits it, stamped with the member that committed it and its
   * timeline (0 where the database has none). Resolves only once the server
   * acknowledged the commit; a rejection says nothing about whether the row is there.
   */
  insert(n: number): Promise<{ member: string; timeline: number }>;
  /** Creates the checker's table unless it is there (idempotent). */
  createTable(): Promise<void>;
  /** The rows numbered `firstN` and up, in order, as this server holds them. */
  readRows(firstN: number): Promise<Row[]>;
  /** Ends the connection without waiting for it. Never throws; a second call does nothing. */
  close(): void;
}

/** How one database is reached: `T` is what names a server (address, credentials, TLS). */
export interface CheckerDriver<T> {
  /** A session to `target` within `timeouts`. A rejection leaves no connection open. */
  connect(target: T, timeouts: Timeouts): Promise<CheckerSession>;
}

/**
 * A target, or a function asked again at every reconnect (a cluster without a virtual
 * address: find its primary now).
 */
export type TargetSource<T> = T | (() => Promise<T>);

/** A write that was not acknowledged: the server refused, went away or timed out. */
export interface WriteFailure {
  n: number;
  /** When the attempt failed. */
  at: number;
  /** When the attempt began (its connect, if it had to, or its statement). */
  startedAt: number;
  via: string;
  error: string;
}

async function resolveTarget<T>(source: TargetSource<T>): Promise<T> {
  return typeof source === "function" ? (source as () => Promise<T>)() : source;
}

/** One client writing in a loop; reconnects (asking its target again) after a failure. */
class Writer<T> {
  private session: CheckerSession | undefined;
  private stopped = false;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly checker: WriteChecker<T>,
    private readonly driver: CheckerDriver<T>,
    readonly via: string,
    private readonly target: TargetSource<T>,
  ) {}

  async connect(): Promise<CheckerSession> {
    if (this.session) return this.session;
    this.session = await this.driver.connect(await resolveTarget(this.target), WRITER_TIMEOUTS);
    return this.session;
  }

  drop(): void {
    const s = this.session;
    this.session = undefined;
    s?.close();
  }

  start(): void {
    this.loop = (async () => {
      while (!this.stopped) {
        const n = this.checker.nextNumber();
        const startedAt = Date.now();
        try {
          const s = await this.connect();
          const { member, timeline } = await s.insert(n);
          this.checker.acked.push({ n, member, timeline, at: Date.now(), via: this.via });
          await sleep(10);
        } catch (err) {
          this.checker.failures.push({
            n,
            at: Date.now(),
            startedAt,
            via: this.via,
            error: (err as Error).message,
          });
          this.drop();
          await sleep(50);
        }
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    this.drop();
  }
}

export class WriteChecker<T> {
  readonly acked: Ack[] = [];
  readonly failures: WriteFailure[] = [];
  private next = 1;
  private readonly main: Writer<T>;
  private readonly writers: Writer<T>[] = [];

  /** `mainVia` names the main writer in the history ("vip": through the cluster's address). */
  constructor(
    private readonly driver: CheckerDriver<T>,
    target: TargetSource<T>,
    readonly mainVia = "vip",
  ) {
    this.main = new Writer(this, driver, mainVia, target);
    this.writers.push(this.main);
  }

  /** The next row number, unique across every writer. */
  nextNumber(): number {
    return this.next++;
  }

  async setup(): Promise<void> {
    const s = await this.main.connect();
    await s.createTable();
  }

  start(): this {
    for (const w of this.writers) w.start();
    return this;
  }

  /** Makes the table, starts writing, and resolves once `writes` were acknowledged (20 s at most). */
  async begin(writes = 30): Promise<this> {
    await this.setup();
    this.start();
    await waitFor(() => (this.acked.length > writes ? true : undefined), {
      timeoutMs: 20_000,
      what: `${writes} acknowledged writes`,
    });
    return this;
  }

  /** Starts one more writer, straight to one member (its own address). */
  addDirect(via: string, target: TargetSource<T>): this {
    const w = new Writer(this, this.driver, via, target);
    this.writers.push(w);
    w.start();
    return this;
  }

  async stop(): Promise<void> {
    await Promise.all(this.writers.map((w) => w.stop()));
  }

  /** Acknowledged writes since `t` (by the main writer unless `via` says otherwise). */
  since(t: number, via = this.mainVia): Ack[] {
    return this.acked.filter((a) => a.at >= t && a.via === via);
  }

  /** The longest stretch without an acknowledged write by the main writer (or `via`), within [from, to]. */
  longestGap(from: number, to = Date.now(), via = this.mainVia): number {
    let last = from;
    let gap = 0;
    for (const a of this.acked) {
      if (a.via !== via || a.at < from || a.at > to) continue;
      gap = Math.max(gap, a.at - last);
      last = a.at;
    }
    return Math.max(gap, to - last);
  }

  /**
   * The main writer's pauses within [from, to]: each gap longer than `overMs` between
   * two acknowledgements (or from `from`, or to `to`), where it began and how long.
   */
  pauses(from: number, to: number, overMs: number): Array<{ at: number; ms: number }> {
    const out: Array<{ at: number; ms: number }> = [];
    let last = from;
    const at = this.acked
      .filter((a) => a.via === this.mainVia && a.at >= from && a.at <= to)
      .map((a) => a.at);
    for (const t of [...at, to]) {
      if (t - last > overMs) out.push({ at: last, ms: t - last });
      last = t;
    }
    return out;
  }

  /** Acknowledgements by every writer received within `window` (all of them without one). */
  protected ackedWithin(window?: { from: number; to: number }): Ack[] {
    return window ? this.acked.filter((a) => a.at >= window.from && a.at <= window.to) : this.acked;
  }

  /**
   * Reads the rows back — from `from` (a member that holds every committed row), or
   * through the main writer's target — and judges the history: all of it, or (with
   * `window`) the acknowledgements received within it, against the rows numbered from
   * the first of them on.
   */
  async verify(from?: T, window?: { from: number; to: number }): Promise<HistoryVerdict & { rows: number }> {
    const acks = this.ackedWithin(window);
    const firstN = acks.reduce((min, a) => Math.min(min, a.n), window ? this.next : 0);
    const { rows, readAt } = await this.readRows(from, firstN);
    // Writers may still run: a commit acknowledged after the read began may not be in it.
    const judged = acks.filter((a) => a.at < readAt);
    return { ...judgeHistory(judged, rows), rows: rows.length };
  }

  /** Rows numbered `firstN` and up, and when the read began; retried for about 10 s. */
  private async readRows(from: T | undefined, firstN: number): Promise<{ rows: Row[]; readAt: number }> {
    for (let attempt = 0; ; attempt++) {
      let reader: CheckerSession | undefined;
      try {
        // A reader of its own for `from`, with room for a long table (a writer gives up after 1 s).
        if (from !== undefined) reader = await this.driver.connect(from, READER_TIMEOUTS);
        const s = reader ?? (await this.main.connect());
        const readAt = Date.now();
        return { rows: await s.readRows(firstN), readAt };
      } catch (err) {
        if (from === undefined) this.main.drop();
        if (attempt > 50) throw err;
        await sleep(200);
      } finally {
        reader?.close();
      }
    }
  }
}
