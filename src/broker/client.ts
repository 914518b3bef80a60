/**
 * A small OSB client: what a platform sends (basic auth, X-Broker-API-Version 2.17,
 * an originating identity), and the raw status and body back, since OSB callers act
 * on the status. Used by the `zonal` service commands and the tests.
 */
import { randomUUID } from "node:crypto";
import { Unavailable } from "../lib/errors.js";
import { fetcherFor, type FetchResponse } from "../lib/fetch.js";

export interface OsbResponse<T = Record<string, unknown>> {
  status: number;
  body: T;
  headers: FetchResponse["headers"];
}

export interface OsbEndpoint {
  /** e.g. http://127.0.0.1:25555/v2 */
  url: string;
  username: string;
  password: string;
  /** The CA (PEM) to trust for an https URL no public CA vouches for (the control plane's own). */
  ca?: string;
}

export class OsbClient {
  constructor(
    private readonly ep: OsbEndpoint,
    private readonly identity = { platform: "zonal-cli", user_id: process.env.USER ?? "operator" },
  ) {}

  async call<T = Record<string, unknown>>(
    method: string,
    path: string,
    opts: {
      body?: unknown;
      query?: Record<string, string | undefined>;
      headers?: Record<string, string>;
    } = {},
  ): Promise<OsbResponse<T>> {
    const url = new URL(this.ep.url.replace(/\/$/, "") + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
    const { platform, ...who } = this.identity;
    const headers: Record<string, string> = {
      authorization: `Basic ${Buffer.from(`${this.ep.username}:${this.ep.password}`).toString("base64")}`,
      "x-broker-api-version": "2.17",
      "x-broker-api-originating-identity": `${platform} ${Buffer.from(JSON.stringify(who)).toString("base64")}`,
      "x-broker-api-request-identity": randomUUID(),
      ...(opts.body !== undefined ? { "content-type": "application/json" } : {}),
      ...opts.headers,
    };
    let res: FetchResponse;
    try {
      res = await fetcherFor(this.ep.url, this.ep.ca)(url, {
        method,
        headers,
        ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
        signal: AbortSignal.timeout(60_000),
      });
    } catch (err) {
      throw new Unavailable(`service broker at ${this.ep.url}: ${(err as Error).message}`);
    }
    const text = await res.text();
    let body: unknown = {};
    try {
      body = text ? JSON.parse(text) : {};
    } catch {
      body = { description: text };
    }
    return { status: res.status, body: body as T, headers: res.headers };
  }
}
