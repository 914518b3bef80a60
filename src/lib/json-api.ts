/**
 * A JSON API on node's http (or https) server, for a process that must stay small:
 * the agent, which every VM pays for (Fastify alone adds about 17 MiB to a process;
 * bench/agent-memory.ts). Routes by method and path pattern (`/v1/jobs/:name`),
 * bearer-token auth, and the same error bodies and statuses as the Fastify APIs
 * (http-errors.ts). `inject` answers a request in-process, as Fastify's does.
 *
 * Bodies: JSON only (415 otherwise), at most 4 MiB (413), malformed → 400; a body
 * is parsed only when the request has one.
 */
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { InvalidInput, NotFound, Unauthorized, ZonalError } from "./errors.js";
import { bearerToken, errorBody, tokensEqual } from "./http-errors.js";

const BODY_LIMIT = 4 * 1024 * 1024;
/** Kept-alive connections stay as long as Fastify's (72 s): clients close theirs first. */
const KEEP_ALIVE_MS = 72_000;

export interface JsonRequest {
  params: Record<string, string>;
  query: Record<string, string | undefined>;
  /** The parsed JSON body; undefined without one. */
  body: unknown;
}

export type Handler = (req: JsonRequest) => Promise<unknown>;

export interface JsonApiOptions {
  /** Every request must carry `Authorization: Bearer <token>`, except to the `open` paths. */
  token?: string;
  open?: string[];
  https?: { cert: string; key: string };
  /** Told about every 5xx. */
  onServerError?: (err: unknown, method: string, path: string) => void;
}

export interface InjectRequest {
  method: string;
  url: string;
  headers?: Record<string, string>;
  /** A JSON body: an object (serialized here) or its text. */
  payload?: unknown;
}

export interface InjectResponse {
  statusCode: number;
  body: string;
  json(): any; // eslint-disable-line @typescript-eslint/no-explicit-any -- a test reads what it expects
}

/** A refusal of the request's form (its body's type or size), as Fastify answers it. */
class HttpError extends ZonalError {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

interface Route {
  method: string;
  parts: string[];
  handler: Handler;
}

export class JsonApi {
  readonly server: Server;
  private readonly routes: Route[] = [];

  constructor(private readonly opts: JsonApiOptions = {}) {
    const serve = (req: IncomingMessage, res: ServerResponse) => void this.serve(req, res);
    this.server = opts.https ? createHttpsServer(opts.https, serve) : createHttpServer(serve);
    this.server.keepAliveTimeout = KEEP_ALIVE_MS;
  }

  get(path: string, handler: Handler): this {
    return this.route("GET", path, handler);
  }

  put(path: string, handler: Handler): this {
    return this.route("PUT", path, handler);
  }

  post(path: string, handler: Handler): this {
    return this.route("POST", path, handler);
  }

  private route(method: string, path: string, handler: Handler): this {
    this.routes.push({ method, parts: path.split("/"), handler });
    return this;
  }

  /** Listens on an address and port, or on an inherited descriptor (`{ fd }`). */
  listen(at: { host: string; port: number } | { fd: number }): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(at, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
  }

  /** Stops listening and closes idle connections; open requests finish. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.server.listening) return resolve();
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
    });
  }

  /** One request answered in-process (tests). */
  async inject(r: InjectRequest): Promise<InjectResponse> {
    const text =
      r.payload === undefined ? "" : typeof r.payload === "string" ? r.payload : JSON.stringify(r.payload);
    const headers = { ...(text ? { "content-type": "application/json" } : {}), ...r.headers };
    const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
    const { status, body } = await this.answer(r.method, r.url, lower, text);
    return { statusCode: status, body, json: () => JSON.parse(body) as unknown };
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let answer: { status: number; body: string };
    try {
      // The token is checked on the headers, before any body is read.
      this.authorize(new URL(req.url ?? "/", "http://agent").pathname, req.headers);
      const text = await readBody(req);
      answer = await this.answer(req.method ?? "GET", req.url ?? "/", req.headers, text);
    } catch (err) {
      answer = this.failed(err, req.method ?? "GET", req.url ?? "/");
    }
    res.statusCode = answer.status;
    // The rest of a body too large is not read: the connection ends with the answer.
    if (answer.status === 413) res.setHeader("connection", "close");
    if (answer.body !== "") res.setHeader("content-type", "application/json; charset=utf-8");
    res.end(answer.body);
  }

  private async answer(
    method: string,
    url: string,
    headers: Record<string, string | string[] | undefined>,
    text: string,
  ): Promise<{ status: number; body: string }> {
    try {
      const u = new URL(url, "http://agent");
      this.authorize(u.pathname, headers);
      const found = this.match(method, u.pathname);
      if (!found) throw new NotFound(`no route ${method} ${url}`);
      const body = parseJson(text, one(headers["content-type"]));
      const query: Record<string, string> = {};
      for (const [k, v] of u.searchParams) query[k] = v;
      const result = await found.route.handler({ params: found.params, query, body });
      return { status: 200, body: result === undefined ? "" : JSON.stringify(result) };
    } catch (err) {
      return this.failed(err, method, url);
    }
  }

  private authorize(path: string, headers: Record<string, string | string[] | undefined>): void {
    if (this.opts.token === undefined || (this.opts.open ?? []).includes(path)) return;
    const given = bearerToken(one(headers.authorization));
    if (given === undefined || !tokensEqual(given, this.opts.token))
      throw new Unauthorized("missing or wrong bearer token");
  }

  private failed(err: unknown, method: string, url: string): { status: number; body: string } {
    const { status, body } = errorBody(err);
    if (status >= 500) this.opts.onServerError?.(err, method, url.split("?")[0]!);
    return { status, body: JSON.stringify(body) };
  }

  private match(method: string, path: string): { route: Route; params: Record<string, string> } | undefined {
    const parts = path.split("/");
    for (const route of this.routes) {
      if (route.method !== method || route.parts.length !== parts.length) continue;
      const params: Record<string, string> = {};
      const fits = route.parts.every((p, i) => {
        if (!p.startsWith(":")) return p === parts[i];
        if (parts[i] === "") return false;
        params[p.slice(1)] = decodeSegment(parts[i]!);
        return true;
      });
      if (fits) return { route, params };
    }
    return undefined;
  }
}

const one = (h: string | string[] | undefined): string | undefined => (Array.isArray(h) ? h[0] : h);

function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new InvalidInput(`the path segment "${s.slice(0, 100)}" is not valid percent-encoding`);
  }
}

function parseJson(text: string, contentType: string | undefined): unknown {
  if (text === "") return undefined;
  if (!/^application\/json\s*(;|$)/i.test(contentType ?? ""))
    throw new HttpError(
      415,
      "unsupported_media_type",
      `expected a body of type application/json, got ${contentType ?? "none"}`,
    );
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new InvalidInput(`the body is not valid JSON: ${(err as Error).message}`);
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > BODY_LIMIT) {
        reject(new HttpError(413, "payload_too_large", `the body is over ${BODY_LIMIT} bytes`));
        req.resume();
      } else chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}
