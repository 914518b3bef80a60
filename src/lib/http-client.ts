/**
 * A small JSON-over-HTTP client for zonal's own APIs. Network failures and
 * timeouts (and, over HTTPS, a server certificate the CA did not sign or that names
 * another host) become `Unavailable` (retryable); error bodies become the matching
 * error class, so `await client.x()` throws what the server threw.
 */
import {
  Conflict,
  Forbidden,
  Internal,
  InvalidInput,
  NotFound,
  Unauthorized,
  Unavailable,
  type ZonalError,
} from "./errors.js";
import {
  failureCode,
  fetcherFor,
  onReusedConnection,
  parseBody,
  type Fetch,
  type FetchResponse,
} from "./fetch.js";
import type { ErrorBody } from "./http-errors.js";

export type ErrorDecoder = (status: number, body: ErrorBody) => ZonalError | undefined;

export interface JsonClientOptions {
  baseUrl: string;
  token?: string;
  timeoutMs?: number;
  /**
   * Trust exactly this CA (PEM) for the server's certificate; `baseUrl` must then be
   * https (InvalidInput from the constructor otherwise). Without it, plain fetch.
   */
  ca?: string;
  /** Maps API-specific error codes to classes; falls back to the generic mapping by status. */
  decodeError?: ErrorDecoder;
}

export interface RequestOptions {
  body?: unknown;
  query?: Record<string, string | number | boolean | undefined>;
  timeoutMs?: number;
  /** Statuses that are not errors; their body is returned as is. */
  okStatuses?: number[];
  /**
   * The request is idempotent though its method is not (a POST that stops what is
   * stopped already): it is retried once on a kept-alive connection found dead, like a
   * GET or PUT.
   */
  idempotent?: boolean;
}

const IDEMPOTENT = new Set(["GET", "HEAD", "PUT", "DELETE"]);
const STALE_CONNECTION = new Set(["ECONNRESET", "EPIPE"]);

export class JsonClient {
  private readonly fetch: Fetch;

  constructor(private readonly opts: JsonClientOptions) {
    this.fetch = fetcherFor(opts.baseUrl, opts.ca);
  }

  get baseUrl(): string {
    return this.opts.baseUrl;
  }

  async request<T>(method: string, path: string, ro: RequestOptions = {}): Promise<T> {
    const url = new URL(path, this.opts.baseUrl);
    for (const [k, v] of Object.entries(ro.query ?? {}))
      if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { accept: "application/json" };
    if (this.opts.token) headers.authorization = `Bearer ${this.opts.token}`;
    if (ro.body !== undefined) headers["content-type"] = "application/json";
    const timeoutMs = ro.timeoutMs ?? this.opts.timeoutMs ?? 10_000;
    let res: FetchResponse | undefined;
    // An idempotent request is retried once when the kept-alive connection it went out
    // on turns out to be dead (the server restarted); anything else, and a connection
    // opened for it that failed, reports the failure (RFC 9110 9.2.2).
    for (let attempt = 1; !res; attempt++) {
      try {
        res = await this.fetch(url, {
          method,
          headers,
          body: ro.body === undefined ? undefined : JSON.stringify(ro.body),
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (err) {
        const cause = failureCode(err);
        const stale = STALE_CONNECTION.has(cause) && onReusedConnection(err);
        if (attempt === 1 && (ro.idempotent || IDEMPOTENT.has(method)) && stale) continue;
        throw new Unavailable(`${method} ${url.origin}${url.pathname}: ${cause}`, { cause: err });
      }
    }
    const text = await res.text();
    const parsed = parseBody(text);
    if (res.ok || ro.okStatuses?.includes(res.status)) return parsed as T;
    const body: ErrorBody =
      parsed && typeof parsed === "object" && "message" in parsed
        ? (parsed as ErrorBody)
        : { error: "http_" + res.status, message: text.slice(0, 500) || res.statusText };
    throw this.opts.decodeError?.(res.status, body) ?? genericError(res.status, body);
  }
}

export function genericError(status: number, body: ErrorBody): ZonalError {
  switch (status) {
    case 400:
    case 422:
      return new InvalidInput(body.message, body.problems ?? []);
    case 401:
      return new Unauthorized(body.message);
    case 403:
      return new Forbidden(body.message);
    case 404:
      return new NotFound(body.message);
    case 409:
      return new Conflict(body.message);
    case 502:
    case 503:
    case 504:
      return new Unavailable(body.message);
    default:
      return new Internal(`HTTP ${status}: ${body.message}`);
  }
}
