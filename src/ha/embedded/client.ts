/** `HttpLeaseStore`: the embedded lease store as an agent (or a test) reaches it over HTTP. */
import { Conflict, NotFound } from "../../lib/errors.js";
import { JsonClient } from "../../lib/http-client.js";
import { pollWatch, type Lease, type LeaseStore } from "../lease-store.js";

export class HttpLeaseStore implements LeaseStore {
  private readonly http: JsonClient;

  /** `ca`: trust only this CA (PEM) for an https `url` (VMs off loopback). */
  constructor(o: { url: string; token: string; timeoutMs?: number; ca?: string }) {
    this.http = new JsonClient({
      baseUrl: o.url,
      token: o.token,
      timeoutMs: o.timeoutMs ?? 2000,
      ...(o.ca ? { ca: o.ca } : {}),
    });
  }

  async acquire(key: string, holder: string, ttlMs: number, value = ""): Promise<Lease | undefined> {
    try {
      return await this.http.request<Lease>("POST", "/v1/leases/acquire", {
        body: { key, holder, ttlMs, value },
      });
    } catch (err) {
      if (err instanceof Conflict) return undefined;
      throw err;
    }
  }

  async renew(key: string, holder: string, token: number): Promise<boolean> {
    return (
      await this.http.request<{ renewed: boolean }>("POST", "/v1/leases/renew", {
        body: { key, holder, token },
      })
    ).renewed;
  }

  async release(key: string, holder: string, token: number): Promise<void> {
    await this.http.request("POST", "/v1/leases/release", { body: { key, holder, token } });
  }

  async read(key: string): Promise<Lease | undefined> {
    try {
      return await this.http.request<Lease>("GET", "/v1/leases/read", { query: { key } });
    } catch (err) {
      if (err instanceof NotFound) return undefined;
      throw err;
    }
  }

  list(prefix: string): Promise<Lease[]> {
    return this.http.request("GET", "/v1/leases/list", { query: { prefix } });
  }

  async break(key: string, holder: string): Promise<boolean> {
    return (
      await this.http.request<{ broken: boolean }>("POST", "/v1/leases/break", { body: { key, holder } })
    ).broken;
  }

  async purge(prefix: string): Promise<number> {
    return (await this.http.request<{ purged: number }>("POST", "/v1/leases/purge", { body: { prefix } }))
      .purged;
  }

  watch(key: string, onChange: (lease: Lease | undefined) => void): () => void {
    return pollWatch(() => this.read(key), onChange);
  }
}
