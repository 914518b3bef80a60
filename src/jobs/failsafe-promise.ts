/**
 * A member's side of the failsafe. When a leader whose lease store is away asks a
 * member directly, the member confirms it only if it follows that leader and is not
 * taking the lease itself; a confirmation is a promise not to take the lease for one
 * TTL (the leader keeps writing for less than that on it). A member taking the lease
 * confirms nobody meanwhile, and a promise given since it decided to take the lease
 * stops it. A promise to a leader the control plane has fenced since (a marker in the
 * store) is void: a powered-off leader writes no more.
 */
import { fencedKey, type LeaseStore } from "../ha/lease-store.js";

export class FailsafePromise {
  private promise: { leader: string; until: number } | null = null;
  private taking = false;

  /** The leader this member promised not to compete with, while the promise lives. */
  to(now = Date.now()): string | null {
    return this.promise && this.promise.until > now ? this.promise.leader : null;
  }

  /** For a successor agent: the promise given, if it still stands. */
  handOff(): { leader: string; until: number } | null {
    return this.promise && this.promise.until > Date.now() ? { ...this.promise } : null;
  }

  /** Keeps a promise a predecessor agent gave. */
  resume(p: { leader: string; until: number } | null): void {
    this.promise = p;
  }

  /** Confirms `leader` when the member `follows` it and is not taking the lease; whether it did. */
  confirm(leader: string, ttlMs: number, follows: boolean): boolean {
    if (!follows || this.taking) return false;
    this.promise = { leader, until: Date.now() + ttlMs };
    return true;
  }

  /** Runs `take` (taking the lease) unless a promise stands now; nobody is confirmed while it runs. */
  async take<T>(take: () => Promise<T>): Promise<T | undefined> {
    if (this.to() !== null) return undefined;
    this.taking = true;
    try {
      return await take();
    } finally {
      this.taking = false;
    }
  }

  /**
   * Voids the promise to `leader` when the store holds the control plane's fencing
   * marker for its VM; whether it did. A store that cannot be read voids nothing.
   */
  async voidIfFenced(
    store: LeaseStore,
    clusterKey: string,
    leader: { member: string; vmId: string },
  ): Promise<boolean> {
    if (this.to() !== leader.member) return false;
    const marker = await store.read(fencedKey(clusterKey, leader.vmId)).catch(() => undefined);
    if (!marker) return false;
    this.promise = null;
    return true;
  }
}
