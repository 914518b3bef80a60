import { SUSPECT_AFTER_MS } from "../cluster-timing.js";

/**
 * The load-balancer pair's run cycle as a pure decision: which node serves the VIP.
 * The node holding the pair's lease is active; the other is warm (its HAProxy runs
 * with the same config) and takes over only when the lease is free — expired, or
 * broken once the active was fenced. No preference: a node that comes back stays the
 * standby until an operator asks for a switchover (no flapping).
 */
export type PairLease =
  | { state: "mine"; token: number }
  | { state: "lost" }
  | { state: "other"; holder: { member: string; address: string } }
  | { state: "free" }
  | { state: "unreachable" };

export interface PairObservation {
  member: string;
  lease: PairLease;
  now: number;
  /** As holder: until when the lease is surely mine (sent time of the last good renew + TTL). */
  deadline: number | null;
  /** HAProxy runs here (a node whose HAProxy is down never takes the VIP). */
  haproxyRunning: boolean;
  /** HAProxy has been down here for longer than the lease TTL (the agent could not bring it back). */
  haproxyDownLong: boolean;
  /** The holder's status API refused a connection: its processes died, its kernel answers. */
  holderRefuses: boolean;
  /** How long the holder's status API has gone unanswered (0 while it answers). */
  holderUnansweredMs: number;
  /** The other node confirmed directly that it sees this one as the holder (asked when the store is unreachable). */
  peerConfirms: boolean;
  /** This node confirmed the active's failsafe moments ago: a promise not to take the lease for a TTL. */
  promised: boolean;
  /** An operator's switchover: the member to serve next. */
  switchoverTo: string | null;
}

export type PairDecision =
  | { do: "serve" }
  | { do: "acquire" }
  | { do: "stand-down" }
  | { do: "handover" }
  | { do: "fence" }
  | { do: "wait" };

export interface PairVerdict {
  decision: PairDecision;
  sentence: string;
}

const v = (d: PairDecision["do"], sentence: string): PairVerdict => ({
  decision: { do: d } as PairDecision,
  sentence,
});

export function decidePair(o: PairObservation): PairVerdict {
  switch (o.lease.state) {
    case "mine":
      if (o.switchoverTo && o.switchoverTo !== o.member)
        return v(
          "handover",
          `switchover to ${o.switchoverTo}: released the lease; the VIP goes when it asks`,
        );
      if (!o.haproxyRunning && o.haproxyDownLong)
        return v(
          "handover",
          "HAProxy has not run here for a lease TTL: released the lease for the other node",
        );
      if (!o.haproxyRunning) return v("stand-down", "HAProxy is not running here: gave the VIP up");
      return v("serve", `active: serving the VIP with lease token ${o.lease.token}`);
    case "lost":
      return v("stand-down", "the lease was lost: dropped the VIP");
    case "unreachable":
      if (o.deadline === null) return v("wait", "lease store unreachable; standing by");
      if (o.peerConfirms)
        return v("serve", "lease store unreachable; kept the VIP: the other node confirms it directly");
      if (o.now < o.deadline)
        return v(
          "serve",
          `lease store unreachable; the lease holds ${((o.deadline - o.now) / 1000).toFixed(1)} s more`,
        );
      return v(
        "stand-down",
        "the lease could not be renewed in time and nobody confirms this node: dropped the VIP",
      );
    case "other":
      if (o.holderRefuses)
        return v(
          "fence",
          `active ${o.lease.holder.member} refuses connections: asked the control plane to fence it`,
        );
      if (o.holderUnansweredMs >= SUSPECT_AFTER_MS)
        return v(
          "fence",
          `active ${o.lease.holder.member} has not answered for ${o.holderUnansweredMs} ms: asked the control plane to fence it`,
        );
      return v("wait", `standby of ${o.lease.holder.member}`);
    case "free":
      if (o.switchoverTo && o.switchoverTo !== o.member)
        return v("wait", `switchover to ${o.switchoverTo} in progress`);
      if (!o.haproxyRunning) return v("wait", "the lease is free, but HAProxy is not running here");
      if (o.promised)
        return v(
          "wait",
          "the lease is free, but this node promised the active (failsafe) not to take it yet",
        );
      return v("acquire", "the lease is free: taking it and the VIP");
  }
}
