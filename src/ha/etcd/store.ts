/**
 * `EtcdLeaseStore`: leases in etcd v3, through its JSON gateway (no gRPC client
 * needed). A lease is a key bound to an etcd lease of the TTL; the fencing token is
 * the key's create_revision, which grows with every new holder across the whole
 * cluster. Acquiring is one transaction ("create the key if it does not exist"),
 * so two acquirers never both succeed. Requests go to each endpoint in turn until
 * one answers; a majority of etcd members must be up for any write to succeed.
 */
import { httpFetch } from "../../lib/fetch.js";
import { Unavailable } from "../../lib/errors.js";
import { pollWatch, type Lease, type LeaseStore } from "../lease-store.js";

interface Kv {
  key: string;
  value?: string;
  create_revision: string;
}

interface Stored {
  holder: string;
  value: string;
  leaseId: string;
  ttlMs: number;
}

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");
const unb64 = (s: string | undefined) => Buffer.from(s ?? "", "base64").toString("utf8");

/** The end of the key range that holds every key starting with `prefix`. */
function prefixEnd(prefix: string): string {
  const bytes = Buffer.from(prefix, "utf8");
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i]! < 0xff) {
      bytes[i]! += 1;
      return bytes.subarray(0, i + 1).toString("base64");
    }
  }
  return b64("\0");
}

export class EtcdLeaseStore implements LeaseStore {
  private next = 0;

  constructor(
    private readonly endpoints: string[],
    private readonly timeoutMs = 2000,
  ) {
    if (endpoints.length === 0) throw new Error("etcd: no endpoints");
  }

  private async call<T>(path: string, body: unknown): Promise<T> {
    const errors: string[] = [];
    for (let i = 0; i < this.endpoints.length; i++) {
      const endpoint = this.endpoints[(this.next + i) % this.endpoints.length]!;
      try {
        const res = await httpFetch(`${endpoint}${path}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(this.timeoutMs),
        });
        const text = await res.text();
        if (!res.ok) throw new Error(`HTTP ${res.status}: ${text.slice(0, 200)}`);
        this.next = (this.next + i) % this.endpoints.length;
        return JSON.parse(text) as T;
      } catch (err) {
        errors.push(`${endpoint}: ${(err as Error).message}`);
      }
    }
    throw new Unavailable(`etcd ${path}: no endpoint answered (${errors.join("; ")})`);
  }

  private async get(key: string): Promise<{ kv: Kv; stored: Stored } | undefined> {
    const r = await this.call<{ kvs?: Kv[] }>("/v3/kv/range", { key: b64(key) });
    const kv = r.kvs?.[0];
    return kv && { kv, stored: JSON.parse(unb64(kv.value)) as Stored };
  }

  private async keepAlive(leaseId: string): Promise<number> {
    const r = await this.call<{ result?: { TTL?: string } }>("/v3/lease/keepalive", { ID: leaseId });
    return Number(r.result?.TTL ?? 0);
  }

  private async ttlLeft(leaseId: string): Promise<number> {
    const r = await this.call<{ TTL?: string }>("/v3/lease/timetolive", { ID: leaseId });
    return Number(r.TTL ?? -1);
  }

  private toLease(key: string, kv: Kv, s: Stored, ttlLeftS: number): Lease {
    return {
      key,
      holder: s.holder,
      token: Number(kv.create_revision),
      value: s.value,
      ttlMs: s.ttlMs,
      expiresAt: Date.now() + Math.max(0, ttlLeftS) * 1000,
    };
  }

  async acquire(key: string, holder: string, ttlMs: number, value = ""): Promise<Lease | undefined> {
    const current = await this.get(key);
    if (current && current.stored.holder === holder) {
      const ttl = await this.keepAlive(current.stored.leaseId);
      if (ttl > 0) return this.toLease(key, current.kv, current.stored, ttl);
    }
    if (current && current.stored.holder !== holder) return undefined;
    const ttlS = Math.max(2, Math.ceil(ttlMs / 1000));
    const grant = await this.call<{ ID: string }>("/v3/lease/grant", { TTL: ttlS });
    const stored: Stored = { holder, value, leaseId: grant.ID, ttlMs };
    const txn = await this.call<{ succeeded?: boolean; header: { revision: string } }>("/v3/kv/txn", {
      compare: [{ key: b64(key), target: "CREATE", create_revision: "0" }],
      success: [{ requestPut: { key: b64(key), value: b64(JSON.stringify(stored)), lease: grant.ID } }],
    });
    if (!txn.succeeded) {
      await this.call("/v3/lease/revoke", { ID: grant.ID }).catch(() => undefined);
      return undefined;
    }
    return {
      key,
      holder,
      token: Number(txn.header.revision),
      value,
      ttlMs,
      expiresAt: Date.now() + ttlS * 1000,
    };
  }

  async renew(key: string, holder: string, token: number): Promise<boolean> {
    const current = await this.get(key);
    if (!current || current.stored.holder !== holder || Number(current.kv.create_revision) !== token)
      return false;
    return (await this.keepAlive(current.stored.leaseId)) > 0;
  }

  async release(key: string, holder: string, token: number): Promise<void> {
    const current = await this.get(key);
    if (!current || current.stored.holder !== holder || Number(current.kv.create_revision) !== token) return;
    await this.deleteIf(key, current.kv.create_revision, current.stored.leaseId);
  }

  private async deleteIf(key: string, createRevision: string, leaseId: string): Promise<boolean> {
    const txn = await this.call<{ succeeded?: boolean }>("/v3/kv/txn", {
      compare: [{ key: b64(key), target: "CREATE", create_revision: createRevision }],
      success: [{ requestDeleteRange: { key: b64(key) } }],
    });
    await this.call("/v3/lease/revoke", { ID: leaseId }).catch(() => undefined);
    return txn.succeeded === true;
  }

  async read(key: string): Promise<Lease | undefined> {
    const current = await this.get(key);
    if (!current) return undefined;
    return this.toLease(key, current.kv, current.stored, await this.ttlLeft(current.stored.leaseId));
  }

  async list(prefix: string): Promise<Lease[]> {
    const r = await this.call<{ kvs?: Kv[] }>("/v3/kv/range", {
      key: b64(prefix),
      range_end: prefixEnd(prefix),
    });
    return (r.kvs ?? []).map((kv) => {
      const s = JSON.parse(unb64(kv.value)) as Stored;
      return this.toLease(unb64(kv.key), kv, s, Math.ceil(s.ttlMs / 1000));
    });
  }

  async break(key: string, holder: string): Promise<boolean> {
    const current = await this.get(key);
    if (!current || current.stored.holder !== holder) return false;
    return this.deleteIf(key, current.kv.create_revision, current.stored.leaseId);
  }

  async purge(prefix: string): Promise<number> {
    const r = await this.call<{ deleted?: string }>("/v3/kv/deleterange", {
      key: b64(prefix),
      range_end: prefixEnd(prefix),
    });
    return Number(r.deleted ?? 0);
  }

  watch(key: string, onChange: (lease: Lease | undefined) => void): () => void {
    return pollWatch(() => this.read(key), onChange);
  }
}
