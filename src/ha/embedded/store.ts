/**
 * The embedded lease store: leases kept by the control plane, in its state store,
 * so they survive a control plane restart. Every operation runs under one mutex
 * (one control plane per data dir) and is written before it returns; fencing
 * tokens come from one counter that only grows.
 *
 * An expired lease stays recorded until another holder takes it: its holder may
 * still renew it (the holder decides by its own deadline whether it still leads;
 * see the failsafe of the postgres cluster manager).
 */
import type { Selectable } from "kysely";
import { Mutex } from "../../lib/mutex.js";
import type { LeasesTable } from "../../store/schema.js";
import type { Store } from "../../store/store.js";
import { pollWatch, type Lease, type LeaseStore } from "../lease-store.js";

const COUNTER = "lease_token_counter";

function toLease(r: Selectable<LeasesTable>): Lease {
  return {
    key: r.key,
    holder: r.holder,
    token: Number(r.token),
    value: r.value,
    ttlMs: Number(r.ttl_ms),
    expiresAt: Number(r.expires_at),
  };
}

export class EmbeddedLeaseStore implements LeaseStore {
  private readonly mutex = new Mutex();

  constructor(
    private readonly store: Store,
    private readonly clock: () => number = Date.now,
  ) {}

  /**
   * Called once when the control plane starts, before it serves: every recorded lease
   * (live, or expired while the store was down) gets one full TTL from now, as etcd
   * does on a leader change. Holders could not renew while the store was down; this
   * gives them the time to, instead of handing their roles to whoever asks first.
   * Safe: a holder still steps down by its own deadline (sent time of its last renew
   * + TTL), so this only ever delays a takeover.
   */
  async renewAllAfterRestart(): Promise<number> {
    return this.mutex.run(async () => {
      const rows = await this.store.db.selectFrom("leases").selectAll().execute();
      for (const r of rows) {
        const expiresAt = Math.max(Number(r.expires_at), this.clock() + Number(r.ttl_ms));
        await this.store.db
          .updateTable("leases")
          .set({ expires_at: expiresAt })
          .where("key", "=", r.key)
          .execute();
      }
      return rows.length;
    });
  }

  private async row(key: string): Promise<Lease | undefined> {
    const r = await this.store.db.selectFrom("leases").selectAll().where("key", "=", key).executeTakeFirst();
    return r && toLease(r);
  }

  private live(l: Lease | undefined): Lease | undefined {
    return l && l.expiresAt > this.clock() ? l : undefined;
  }

  private async nextToken(): Promise<number> {
    const n = Number((await this.store.settings.get(COUNTER)) ?? "0") + 1;
    await this.store.settings.set(COUNTER, String(n));
    return n;
  }

  acquire(key: string, holder: string, ttlMs: number, value = ""): Promise<Lease | undefined> {
    return this.mutex.run(async () => {
      const current = await this.row(key);
      if (current && current.holder === holder) {
        const renewed = { ...current, ttlMs, value, expiresAt: this.clock() + ttlMs };
        await this.store.db
          .updateTable("leases")
          .set({ ttl_ms: ttlMs, value, expires_at: renewed.expiresAt })
          .where("key", "=", key)
          .execute();
        return renewed;
      }
      if (this.live(current)) return undefined;
      const lease: Lease = {
        key,
        holder,
        token: await this.nextToken(),
        value,
        ttlMs,
        expiresAt: this.clock() + ttlMs,
      };
      const row = { holder, token: lease.token, value, ttl_ms: ttlMs, expires_at: lease.expiresAt };
      await this.store.db
        .insertInto("leases")
        .values({ key, ...row })
        .onConflict((oc) => oc.column("key").doUpdateSet(row))
        .execute();
      return lease;
    });
  }

  renew(key: string, holder: string, token: number): Promise<boolean> {
    return this.mutex.run(async () => {
      const current = await this.row(key);
      if (!current || current.holder !== holder || current.token !== token) return false;
      await this.store.db
        .updateTable("leases")
        .set({ expires_at: this.clock() + current.ttlMs })
        .where("key", "=", key)
        .execute();
      return true;
    });
  }

  release(key: string, holder: string, token: number): Promise<void> {
    return this.mutex.run(async () => {
      await this.store.db
        .deleteFrom("leases")
        .where("key", "=", key)
        .where("holder", "=", holder)
        .where("token", "=", token)
        .execute();
    });
  }

  async read(key: string): Promise<Lease | undefined> {
    return this.live(await this.row(key));
  }

  async list(prefix: string): Promise<Lease[]> {
    // A handful of leases per deployment: filtering here keeps SQL free of LIKE-escaping differences.
    const rows = await this.store.db.selectFrom("leases").selectAll().execute();
    return rows.map(toLease).filter((l) => l.key.startsWith(prefix) && this.live(l) !== undefined);
  }

  break(key: string, holder: string): Promise<boolean> {
    return this.mutex.run(async () => {
      const current = await this.row(key);
      if (!current || current.holder !== holder) return false;
      await this.store.db.deleteFrom("leases").where("key", "=", key).execute();
      return true;
    });
  }

  purge(prefix: string): Promise<number> {
    return this.mutex.run(async () => {
      const keys = (await this.store.db.selectFrom("leases").select("key").execute())
        .map((r) => r.key)
        .filter((k) => k.startsWith(prefix));
      if (keys.length > 0) await this.store.db.deleteFrom("leases").where("key", "in", keys).execute();
      return keys.length;
    });
  }

  /** Every lease (live or expired) `holder` holds: what to break once it is fenced. */
  async heldBy(holder: string): Promise<Lease[]> {
    return (await this.store.db.selectFrom("leases").selectAll().where("holder", "=", holder).execute()).map(
      toLease,
    );
  }

  watch(key: string, onChange: (lease: Lease | undefined) => void): () => void {
    return pollWatch(() => this.read(key), onChange);
  }
}
