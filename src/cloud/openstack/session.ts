/**
 * `OpenStackSession`: one authenticated conversation with an OpenStack cloud.
 *
 * - Keystone v3 password auth, project-scoped; the token is renewed before it
 *   expires (and once more when a service answers 401), and the service catalog
 *   of the token gives every endpoint (`endpoint("compute")`).
 * - Every request has a timeout. Transient failures (network errors, 409 on a
 *   server busy with another task, 429, 5xx) are retried with exponential backoff
 *   when the request may be repeated safely; what is left after the retries, and
 *   every fatal answer, becomes an `OpenStackError` carrying the status and the
 *   service's own message (Nova's `{"itemNotFound": {"message": ...}}`, Neutron's
 *   `{"NeutronError": {...}}`, Cinder's `{"badRequest": {...}}`).
 */
import { Unauthorized, Unavailable, ZonalError } from "../../lib/errors.js";
import { failureCode, parseBody } from "../../lib/fetch.js";
import { sleep } from "../../lib/sleep.js";

export interface Credentials {
  authUrl: string;
  username: string;
  password: string;
  projectName: string;
  userDomainName: string;
  projectDomainName: string;
  region?: string;
  /** Endpoint interface to use from the catalog (default `public`). */
  interface?: "public" | "internal" | "admin";
}

export interface SessionOptions {
  /** Per request (default 30 s). */
  timeoutMs?: number;
  /** Attempts for a retryable failure (default 5: waits 0.5, 1, 2, 4 s between them). */
  attempts?: number;
  backoffMs?: number;
}

export interface Request {
  /** Absolute URL, or a path appended to `endpoint(service)`. */
  service?: string;
  path: string;
  method?: string;
  body?: unknown;
  query?: Record<string, string | number | boolean | string[] | undefined>;
  headers?: Record<string, string>;
  /**
   * Whether repeating the request is safe after a failure that may have reached the
   * service (GET, PUT and DELETE are; a POST that creates something is not). A request
   * refused before the service saw it (connection refused) is retried either way.
   */
  idempotent?: boolean;
  /** Retry on 409 too (an action refused while the server is busy with another task). */
  retryConflict?: boolean;
  /** Statuses returned to the caller instead of thrown (e.g. 404 for "already gone"). */
  okStatuses?: number[];
}

export interface Response<T = unknown> {
  status: number;
  body: T;
  headers: Headers;
}

/**
 * A failure answered by an OpenStack service (`serviceStatus`), or the lack of an
 * answer after every retry. It crosses zonal's own API as 502: the cloud failed.
 */
export class OpenStackError extends ZonalError {
  readonly code = "openstack_error";
  readonly status = 502;
  override readonly retryable: boolean;
  constructor(
    readonly serviceStatus: number,
    message: string,
    readonly service: string,
  ) {
    super(message);
    this.retryable = serviceStatus === 409 || serviceStatus === 429 || serviceStatus >= 500;
  }
}

interface Token {
  value: string;
  expiresAt: number;
  projectId: string;
  catalog: CatalogEntry[];
}

interface CatalogEntry {
  type: string;
  name?: string;
  endpoints: Array<{ interface: string; region?: string; region_id?: string; url: string }>;
}

const RENEW_BEFORE_MS = 5 * 60_000;

export class OpenStackSession {
  private token: Token | undefined;
  private authenticating: Promise<Token> | undefined;
  private readonly timeoutMs: number;
  private readonly attempts: number;
  private readonly backoffMs: number;

  constructor(
    readonly credentials: Credentials,
    opts: SessionOptions = {},
  ) {
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.attempts = opts.attempts ?? 5;
    this.backoffMs = opts.backoffMs ?? 500;
  }

  /** The project the token is scoped to (Cinder's URLs carry it). */
  async projectId(): Promise<string> {
    return (await this.validToken()).projectId;
  }

  /** The catalog URL of a service type (`compute`, `volumev3`, `network`, `image`, `placement`). */
  async endpoint(type: string | string[]): Promise<string> {
    return this.endpointIn(await this.validToken(), type);
  }

  /** True when the catalog has an endpoint of one of these types (a cloud may lack Cinder). */
  async hasEndpoint(type: string | string[]): Promise<boolean> {
    try {
      await this.endpoint(type);
      return true;
    } catch (err) {
      if (err instanceof OpenStackError && err.serviceStatus === 404) return false;
      throw err;
    }
  }

  private endpointIn(token: Token, type: string | string[]): string {
    const types = Array.isArray(type) ? type : [type];
    const wanted = this.credentials.interface ?? "public";
    for (const t of types) {
      const entry = token.catalog.find((e) => e.type === t);
      const ep = entry?.endpoints.find(
        (e) =>
          e.interface === wanted &&
          (!this.credentials.region || (e.region_id ?? e.region) === this.credentials.region),
      );
      if (ep) return ep.url.replace(/\/+$/, "");
    }
    throw new OpenStackError(
      404,
      `the service catalog has no ${wanted} endpoint of type ${types.join(" or ")}` +
        (this.credentials.region ? ` in region ${this.credentials.region}` : ""),
      "keystone",
    );
  }

  async request<T = unknown>(req: Request): Promise<Response<T>> {
    const method = req.method ?? "GET";
    const policy = {
      idempotent: req.idempotent ?? method !== "POST",
      retryConflict: req.retryConflict ?? false,
    };
    for (let reauthenticated = false; ; reauthenticated = true) {
      const token = await this.validToken();
      const url = this.urlOf(token, req);
      const res = await this.send(
        method,
        url,
        { "x-auth-token": token.value, ...req.headers },
        req.body,
        policy,
      );
      if ((res.status >= 200 && res.status < 300) || req.okStatuses?.includes(res.status))
        return { status: res.status, body: res.body as T, headers: res.headers };
      if (res.status === 401 && !reauthenticated) {
        this.token = undefined; // revoked or expired early: log in again, once
        continue;
      }
      throw new OpenStackError(
        res.status,
        `${method} ${new URL(url).pathname}: ${res.status} ${messageOf(res.body) ?? res.statusText}`,
        req.service ?? "openstack",
      );
    }
  }

  /**
   * One exchange under the retry policy: a network failure is retried when the request
   * may be repeated (or never left: connection refused); so are 429, 409 when asked,
   * and 5xx when idempotent (503 always: the service did not take it). The last answer
   * is returned whatever its status; no answer at all is Unavailable.
   */
  private async send(
    method: string,
    url: string,
    headers: Record<string, string>,
    body: unknown,
    policy: { idempotent: boolean; retryConflict: boolean },
  ): Promise<{ status: number; statusText: string; body: unknown; text: string; headers: Headers }> {
    for (let attempt = 1; ; attempt++) {
      let res: globalThis.Response;
      try {
        res = await fetch(url, {
          method,
          headers: {
            accept: "application/json",
            ...(body === undefined ? {} : { "content-type": "application/json" }),
            ...headers,
          },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(this.timeoutMs),
        });
      } catch (err) {
        const code = failureCode(err);
        if ((policy.idempotent || code === "ECONNREFUSED") && attempt < this.attempts) {
          await this.backoff(attempt);
          continue;
        }
        throw new Unavailable(`${method} ${url}: ${code}`, { cause: err });
      }
      const text = await res.text();
      const retryable =
        res.status === 429 ||
        (res.status === 409 && policy.retryConflict) ||
        (res.status >= 500 && (policy.idempotent || res.status === 503));
      if (retryable && attempt < this.attempts) {
        await this.backoff(attempt);
        continue;
      }
      return {
        status: res.status,
        statusText: res.statusText,
        body: parseBody(text),
        text,
        headers: res.headers,
      };
    }
  }

  private urlOf(token: Token, req: Request): string {
    const base = /^https?:\/\//.test(req.path)
      ? req.path
      : `${this.endpointIn(token, req.service!)}${req.path}`;
    const url = new URL(base);
    for (const [k, v] of Object.entries(req.query ?? {})) {
      if (v === undefined) continue;
      for (const item of Array.isArray(v) ? v : [v]) url.searchParams.append(k, String(item));
    }
    return url.toString();
  }

  private backoff(attempt: number): Promise<void> {
    return sleep(this.backoffMs * 2 ** (attempt - 1));
  }

  private async validToken(): Promise<Token> {
    if (this.token && this.token.expiresAt - Date.now() > RENEW_BEFORE_MS) return this.token;
    this.authenticating ??= this.authenticate().finally(() => (this.authenticating = undefined));
    this.token = await this.authenticating;
    return this.token;
  }

  private async authenticate(): Promise<Token> {
    const c = this.credentials;
    const url = `${c.authUrl.replace(/\/+$/, "").replace(/\/v3$/, "")}/v3/auth/tokens`;
    const body = {
      auth: {
        identity: {
          methods: ["password"],
          password: { user: { name: c.username, domain: { name: c.userDomainName }, password: c.password } },
        },
        scope: { project: { name: c.projectName, domain: { name: c.projectDomainName } } },
      },
    };
    // Asking for a token changes nothing lasting: safe to repeat.
    const res = await this.send("POST", url, {}, body, { idempotent: true, retryConflict: false });
    if (res.status === 401)
      throw new Unauthorized(
        `Keystone refused user ${c.username} (domain ${c.userDomainName}) for project ${c.projectName}: ${messageOf(res.body) ?? "401"}`,
      );
    const value = res.headers.get("x-subject-token");
    const token = (res.body as { token?: KeystoneToken } | undefined)?.token;
    if (res.status !== 201 || !value || !token)
      throw new OpenStackError(
        res.status,
        `Keystone at ${url}: ${res.status} ${messageOf(res.body) ?? res.text.slice(0, 200)}`,
        "keystone",
      );
    return {
      value,
      expiresAt: Date.parse(token.expires_at),
      projectId: token.project?.id ?? "",
      catalog: token.catalog ?? [],
    };
  }
}

interface KeystoneToken {
  expires_at: string;
  project?: { id: string };
  catalog?: CatalogEntry[];
}

/**
 * The message of an OpenStack error body, whatever its shape:
 * `{"itemNotFound": {"message": ...}}` (Nova, Cinder), `{"NeutronError": {"message": ...}}`,
 * `{"error": {"message": ...}}` (Keystone), `{"message": ...}`, or plain text.
 */
export function messageOf(body: unknown): string | undefined {
  if (typeof body === "string") return body.trim().slice(0, 500) || undefined;
  if (!body || typeof body !== "object") return undefined;
  const o = body as Record<string, unknown>;
  if (typeof o.message === "string") return o.message;
  for (const v of Object.values(o))
    if (v && typeof v === "object" && typeof (v as { message?: unknown }).message === "string")
      return (v as { message: string }).message;
  return undefined;
}
