/**
 * A scripted OpenStack for request/response tests of the driver: Keystone answers
 * a token with a catalog pointing back at this server; every other request is
 * recorded and answered by the route the test set up (`on("POST /v2.0/ports", …)`).
 * It is a fake for testing the driver's wire format, not an OpenStack: the driver's
 * Nova calls are also run against real Nova (test/openstack).
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface Recorded {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage["headers"];
  body: unknown;
}

export interface Answer {
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
}

type Route = (req: Recorded, match: RegExpExecArray) => Answer | Promise<Answer>;

export const PROJECT = "p-123";

export class FakeOpenStack {
  readonly requests: Recorded[] = [];
  tokensIssued = 0;
  /** Seconds a token lives (the driver renews 5 min before). */
  tokenLifetimeS = 3600;
  /** Service types left out of the catalog (a cloud without Cinder: "volumev3"). */
  readonly without = new Set<string>();
  private readonly routes: Array<{ method: string; pattern: RegExp; literal: boolean; route: Route }> = [];
  private server: Server | undefined;
  url = "";

  on(spec: string, route: Route | Answer): this {
    const [method, path] = spec.split(" ") as [string, string];
    const pattern = new RegExp(`^${path.replace(/\{[^}]+\}/g, "([^/]+)")}$`);
    this.routes.unshift({
      method,
      pattern,
      literal: !path.includes("{"),
      route: typeof route === "function" ? route : () => route,
    });
    return this;
  }

  /** Recorded requests other than Keystone's, as "METHOD /path". */
  calls(): string[] {
    return this.requests.filter((r) => !r.path.startsWith("/identity")).map((r) => `${r.method} ${r.path}`);
  }

  find(spec: string): Recorded[] {
    return this.requests.filter((r) => `${r.method} ${r.path}` === spec);
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      let raw = "";
      req.on("data", (c: Buffer) => (raw += c.toString()));
      req.on("end", () => {
        void (async () => {
          const u = new URL(req.url ?? "/", "http://x");
          const rec: Recorded = {
            method: req.method ?? "GET",
            path: u.pathname,
            query: u.searchParams,
            headers: req.headers,
            body: raw ? (JSON.parse(raw) as unknown) : undefined,
          };
          this.requests.push(rec);
          const answer = await this.answer(rec);
          res.writeHead(answer.status ?? 200, { "content-type": "application/json", ...answer.headers });
          res.end(answer.body === undefined ? "" : JSON.stringify(answer.body));
        })();
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => this.server?.close(() => r()) ?? r());
  }

  private async answer(rec: Recorded): Promise<Answer> {
    // The newest route wins; a literal path before a pattern with parameters.
    for (const literal of [true, false])
      for (const r of this.routes) {
        if (r.method !== rec.method || r.literal !== literal) continue;
        const m = r.pattern.exec(rec.path);
        if (m) return r.route(rec, m);
      }
    if (rec.method === "POST" && rec.path === "/identity/v3/auth/tokens") {
      this.tokensIssued++;
      return {
        status: 201,
        headers: { "x-subject-token": `tok-${this.tokensIssued}` },
        body: {
          token: {
            expires_at: new Date(Date.now() + this.tokenLifetimeS * 1000).toISOString(),
            project: { id: PROJECT },
            catalog: [
              ["compute", "/compute/v2.1"],
              ["volumev3", `/volume/v3/${PROJECT}`],
              ["network", "/network"],
              ["image", "/image"],
            ]
              .filter(([type]) => !this.without.has(type!))
              .map(([type, path]) => ({
                type,
                endpoints: [{ interface: "public", region_id: "RegionOne", url: `${this.url}${path}` }],
              })),
          },
        },
      };
    }
    return {
      status: 404,
      body: { itemNotFound: { code: 404, message: `no route ${rec.method} ${rec.path}` } },
    };
  }
}
