/**
 * A client doing continuous HTTP requests (a new connection each, so it follows a
 * moving VIP) and recording every answer: when, which load-balancer node served it
 * (X-Zonal-LB) and what the backend said. For the load-balancer tests and bench: the
 * longest gap without an answer, and whether two nodes ever answered at once.
 */
import { request } from "node:http";

export interface HttpSample {
  at: number;
  /** How long the request took, answered or not. */
  ms: number;
  ok: boolean;
  lb?: string;
  body?: string;
  error?: string;
}

export class HttpChecker {
  readonly samples: HttpSample[] = [];
  private running = false;
  private loop: Promise<void> | undefined;

  /**
   * `timeoutMs`: how long a request may go without a byte. 500 ms by default: a silent
   * VIP (its holder dead) costs a client that long. A client that waits as browsers and
   * HTTP libraries do (seconds) outlasts a SYN lost while a VIP moves: TCP sends it again
   * after a second.
   */
  constructor(
    private readonly url: string,
    private readonly intervalMs = 50,
    private readonly timeoutMs = 500,
  ) {}

  start(): void {
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        this.samples.push(await this.once());
        await new Promise((r) => setTimeout(r, this.intervalMs));
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  once(): Promise<HttpSample> {
    return new Promise((resolve) => {
      const at = Date.now();
      const req = request(this.url, { agent: false, timeout: this.timeoutMs }, (res) => {
        let body = "";
        res.on("data", (d: Buffer) => (body += d.toString()));
        res.on("end", () =>
          resolve({
            at,
            ms: Date.now() - at,
            ok: res.statusCode === 200,
            body: body.trim(),
            ...(typeof res.headers["x-zonal-lb"] === "string" ? { lb: res.headers["x-zonal-lb"] } : {}),
            ...(res.statusCode === 200 ? {} : { error: `HTTP ${res.statusCode}` }),
          }),
        );
        res.on("error", (err) => resolve({ at, ms: Date.now() - at, ok: false, error: err.message }));
      });
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.on("error", (err) => resolve({ at, ms: Date.now() - at, ok: false, error: err.message }));
      req.end();
    });
  }

  since(t0: number): HttpSample[] {
    return this.samples.filter((s) => s.at >= t0);
  }

  /** The longest time between two successful answers from `t0` on (or from t0 to the first). */
  longestGap(t0: number, until = Date.now()): number {
    let last = t0;
    let gap = 0;
    for (const s of this.since(t0)) {
      if (s.at > until) break;
      if (!s.ok) continue;
      gap = Math.max(gap, s.at - last);
      last = s.at;
    }
    return gap;
  }

  /**
   * The nodes that answered from `t0` on, in runs: e.g. ["m0", "m1"]. Two actives at
   * once show as a node coming back after another answered: ["m0", "m1", "m0"].
   */
  runs(t0: number): string[] {
    const out: string[] = [];
    for (const s of this.since(t0)) if (s.ok && s.lb && out.at(-1) !== s.lb) out.push(s.lb);
    return out;
  }
}
