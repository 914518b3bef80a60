/**
 * The `LeaseStore` interface: time-bound, exclusive claims on keys (the leader of a
 * cluster, the holder of a VIP), like Patroni's DCS. Implementations: the embedded
 * store served by the control plane (`embedded/`), and etcd (`etcd/`). One contract
 * suite (`contract.ts`) runs against both.
 *
 * Every grant carries a fencing token that only grows: a newer holder always has a
 * larger token than every earlier one, so anyone acting on a holder's behalf (the
 * control plane moving a VIP) can refuse a stale holder.
 *
 * Time: a lease expires `ttlMs` after the store received the acquire or the last
 * renew. A holder must treat its lease as lost `ttlMs` after it *sent* its last
 * successful renew (never later), which is never after the store expires it.
 *
 * Failures: any method may reject with `Unavailable` (the store cannot be reached or
 * did not answer in time); for acquire and renew that means "unknown", and the
 * holder keeps counting down its own deadline. Nothing else is retried silently.
 */

export interface Lease {
  key: string;
  holder: string;
  /**
   * The fencing token of this grant; 0 when the store does not show it to this caller
   * (the embedded store's API shows a VM the token of a lease it holds only).
   */
  token: number;
  /** What the holder published with it (e.g. its address), opaque to the store. */
  value: string;
  ttlMs: number;
  /** When the store will expire it, in the store's clock (ms since epoch); approximate for etcd. */
  expiresAt: number;
}

export interface LeaseStore {
  /**
   * Takes `key` for `holder` if nobody holds it (or its lease expired or was broken).
   * When `holder` already holds it, renews it and returns the same token. Atomic: two
   * concurrent acquirers never both succeed. Returns undefined when someone else holds it.
   */
  acquire(key: string, holder: string, ttlMs: number, value?: string): Promise<Lease | undefined>;

  /** Extends the lease if `holder` still holds it with `token`. False when it is lost. */
  renew(key: string, holder: string, token: number): Promise<boolean>;

  /** Gives the lease up if `holder` holds it with `token`. Idempotent. */
  release(key: string, holder: string, token: number): Promise<void>;

  /** The current lease of `key`, or undefined when it is free. */
  read(key: string): Promise<Lease | undefined>;

  /** Every current lease whose key starts with `prefix`. */
  list(prefix: string): Promise<Lease[]>;

  /**
   * Ends the lease at once, whoever holds it, if `holder` holds it — for a holder that
   * is confirmed fenced (powered off) and so can no longer act. Returns whether it broke one.
   */
  break(key: string, holder: string): Promise<boolean>;

  /**
   * Deletes every lease under `prefix`, live or expired, whoever holds it; returns how
   * many. Only for a deployment being deleted, after its VMs are gone (nobody can
   * hold them any more). Idempotent.
   */
  purge(prefix: string): Promise<number>;

  /** Calls `onChange` whenever the lease of `key` changes (taken, renewed by another, freed). */
  watch(key: string, onChange: (lease: Lease | undefined) => void): () => void;
}

/** Defaults (configurable per deployment). */
export const DEFAULT_LEASE_TTL_MS = 5000;
export const DEFAULT_RENEW_MS = 1000;

/** Polls `read` for `watch`: both stores answer reads cheaply. */
export function pollWatch(
  read: () => Promise<Lease | undefined>,
  onChange: (lease: Lease | undefined) => void,
  intervalMs = 100,
): () => void {
  let last = "";
  let stopped = false;
  const loop = async () => {
    while (!stopped) {
      try {
        const lease = await read();
        const now = lease ? `${lease.holder}/${lease.token}` : "";
        if (now !== last) {
          last = now;
          onChange(lease);
        }
      } catch {
        /* unreachable: try again */
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  };
  void loop();
  return () => {
    stopped = true;
  };
}

/**
 * The marker the control plane leaves when it fences `vmId`, a member of the cluster
 * whose keys start with `clusterKey`: proof that this VM can no longer act.
 */
export const fencedKey = (clusterKey: string, vmId: string): string => `${clusterKey}/fenced/${vmId}`;
