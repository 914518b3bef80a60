/**
 * The HTTP client zonal's own code uses: a fetch-shaped request over node's http and
 * https modules, kept-alive connections shared per CA. It is not the global fetch
 * (undici) because every VM's agent loads it: undici alone adds about 18 MiB to a
 * process (bench/agent-memory.ts), node's http modules about 2.
 *
 * With a CA (PEM) it trusts exactly that CA and checks the server's name (or IP)
 * against its certificate. Failures look like fetch's: a TypeError whose `cause`
 * carries the code (ECONNREFUSED, ECONNRESET, UNABLE_TO_VERIFY_LEAF_SIGNATURE, …);
 * an aborted request rejects with its signal's reason (a TimeoutError for
 * `AbortSignal.timeout`). The answer resolves once its whole body came (zonal's
 * answers are small; over 16 MiB is a failure), so an answer nobody reads never
 * holds its connection, and the signal bounds the body too.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { InvalidInput } from "./errors.js";

export interface FetchInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string | undefined;
  signal?: AbortSignal;
}

export interface FetchResponse {
  ok: boolean;
  status: number;
  statusText: string;
  /** The body as text. */
  text(): Promise<string>;
  /** The body parsed as JSON. */
  json(): Promise<unknown>;
  /** There for fetch's callers: the body was read whole already, nothing to cancel. */
  body: { cancel(): Promise<void> } | null;
  headers: { get(name: string): string | null };
}

export type Fetch = (url: URL | string, init?: FetchInit) => Promise<FetchResponse>;

const agents = new Map<string, HttpAgent>();
/**
 * An idle kept-alive connection is closed after this: before the servers close theirs
 * (node's http server after 5 s, Fastify's after 72 s), so a request never goes out on
 * a connection the server is closing. It does not bound a request in progress.
 */
const IDLE_MS = 4000;

function agentFor(https: boolean, ca: string | undefined): HttpAgent {
  const key = `${https ? "https" : "http"}\n${ca ?? ""}`;
  let agent = agents.get(key);
  if (!agent) {
    agent = https
      ? new HttpsAgent({ keepAlive: true, timeout: IDLE_MS, ...(ca === undefined ? {} : { ca }) })
      : new HttpAgent({ keepAlive: true, timeout: IDLE_MS });
    agents.set(key, agent);
  }
  return agent;
}

/** Bodies are read whole before the answer resolves; more than this is refused. */
const MAX_BODY = 16 * 1024 * 1024;

function request(url: URL | string, init: FetchInit, ca: string | undefined): Promise<FetchResponse> {
  const u = typeof url === "string" ? new URL(url) : url;
  const https = u.protocol === "https:";
  const signal = init.signal;
  return new Promise<FetchResponse>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const body = init.body === undefined ? undefined : Buffer.from(init.body);
    const req = (https ? httpsRequest : httpRequest)(u, {
      method: init.method ?? "GET",
      headers: { ...init.headers, ...(body ? { "content-length": String(body.length) } : {}) },
      agent: agentFor(https, ca),
    });
    let settled = false;
    const fail = (err: unknown) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener("abort", onAbort);
      reject(err);
      req.destroy();
    };
    const onAbort = () => fail(signal!.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    // Whether the request went out on a kept-alive connection (one that may have died idle).
    req.on("error", (err) =>
      fail(
        Object.assign(new TypeError("fetch failed", { cause: err }), { reusedConnection: req.reusedSocket }),
      ),
    );
    req.on("response", (r) => {
      const chunks: Buffer[] = [];
      let size = 0;
      r.on("data", (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY)
          fail(new TypeError("fetch failed", { cause: new Error(`a body over ${MAX_BODY} bytes`) }));
        else chunks.push(c);
      });
      r.on("error", (err) => fail(new TypeError("fetch failed", { cause: err })));
      r.on("end", () => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener("abort", onAbort);
        resolve(answer(r, Buffer.concat(chunks).toString("utf8")));
      });
    });
    req.end(body);
  });
}

function answer(r: IncomingMessage, text: string): FetchResponse {
  return {
    ok: r.statusCode! >= 200 && r.statusCode! < 300,
    status: r.statusCode!,
    statusText: r.statusMessage ?? "",
    text: () => Promise.resolve(text),
    json: () => Promise.resolve().then(() => JSON.parse(text) as unknown),
    body: { cancel: () => Promise.resolve() },
    headers: {
      get: (name) => {
        const v = r.headers[name.toLowerCase()];
        return v === undefined ? null : Array.isArray(v) ? v.join(", ") : v;
      },
    },
  };
}

/** A request over plain HTTP (or HTTPS trusting the system's CAs). */
export const httpFetch: Fetch = (url, init = {}) => request(url, init, undefined);

/**
 * The fetch for requests to `url`, trusting only `ca` when given. InvalidInput when a
 * CA is given for a URL that is not https (the CA would silently go unused).
 */
export function fetcherFor(url: string, ca?: string): Fetch {
  if (ca === undefined) return httpFetch;
  if (new URL(url).protocol !== "https:") {
    throw new InvalidInput(`${url}: a CA is given, so expected an https URL`);
  }
  return (u, init = {}) => request(u, init, ca);
}

/** What a failed fetch says went wrong: the cause's code (ECONNREFUSED, …), else the error's name. */
export function failureCode(err: unknown): string {
  return (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
}

/** Whether a failed fetch had gone out on a kept-alive connection (not one opened for it). */
export function onReusedConnection(err: unknown): boolean {
  return (err as { reusedConnection?: unknown }).reusedConnection === true;
}

/** A response body: undefined when empty, parsed JSON when it is JSON, else the text itself. */
export function parseBody(text: string): unknown {
  if (text === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
