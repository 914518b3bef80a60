/**
 * Galera's recovery rules as pure functions (galera-manager.ts acts on them):
 *
 * - where a node's data ends: its saved state (grastate.dat: uuid, seqno,
 *   safe_to_bootstrap) or, after an unclean stop (seqno -1), the position
 *   `mariadbd --wsrep-recover` prints;
 * - how a node starts: join a running Primary component; or, when none runs,
 *   bootstrap a new one — only the node with the highest committed seqno of the
 *   cluster's history, only once every member said where it ends (a node that comes
 *   back last holds the others until it does), never two. An operator may force a
 *   named node, knowing what the others may have that it lacks.
 */

/** Where a node's data ends: its cluster history (uuid) and the last transaction in it (seqno). */
export interface Position {
  uuid: string;
  seqno: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const NIL_UUID = "00000000-0000-0000-0000-000000000000";

/** grastate.dat: null when it is missing a field or unreadable (then ask --wsrep-recover). */
export function parseGrastate(text: string): (Position & { safeToBootstrap: boolean }) | null {
  const field = (name: string) => new RegExp(`^${name}:\\s*(\\S*)\\s*$`, "m").exec(text)?.[1];
  const uuid = field("uuid");
  const seqno = Number(field("seqno"));
  if (!uuid || !UUID.test(uuid) || !Number.isInteger(seqno)) return null;
  return { uuid, seqno, safeToBootstrap: field("safe_to_bootstrap") === "1" };
}

/**
 * The position `mariadbd --wsrep-recover` logs ("WSREP: Recovered position uuid:seqno"),
 * the last one. The line may run into the next one's date with no newline between
 * ("…:2322026-12-02 17:11:29 …" is seqno 232): the seqno ends where a date begins.
 */
export function parseRecoveredPosition(log: string): Position | null {
  const all = [...log.matchAll(/Recovered position:?\s+([0-9a-f-]{36}):(-?\d+?)(?=\d{4}-\d\d-\d\d|\D|$)/g)];
  const last = all.at(-1);
  if (!last || !UUID.test(last[1]!)) return null;
  return { uuid: last[1]!, seqno: Number(last[2]) };
}

/** A node's position, known: a real history and a seqno (−1 means "ask --wsrep-recover"). */
export const known = (p: Position | null | undefined): p is Position =>
  !!p && p.uuid !== NIL_UUID && p.seqno >= 0;

export interface StartInput {
  me: string;
  /** Every member of the cluster, this one included (m0, m1, …). */
  members: string[];
  /** The cluster has had data (its first bootstrap happened: the control plane's init marker). */
  initialized: boolean;
  /** A member runs in a Primary component now (it answers Synced and Primary). */
  primaryRunning: boolean;
  /**
   * Where each member said its data ends (undefined: it has not said yet; "empty": it
   * holds no data of the cluster — a new disk — and can only join).
   */
  positions: Record<string, Position | "empty" | undefined>;
  /** An operator forced this member to bootstrap (whatever the others hold). */
  forced: string | null;
}

export type StartDecision =
  { do: "join"; sentence: string } | { do: "bootstrap"; sentence: string } | { do: "wait"; sentence: string };

/** How this node starts; the first clause that applies decides. */
export function decideStart(o: StartInput): StartDecision {
  if (o.primaryRunning) return { do: "join", sentence: "a Primary component runs: joining it" };
  if (o.forced !== null)
    return o.forced === o.me
      ? { do: "bootstrap", sentence: "an operator forced this node to bootstrap the cluster" }
      : { do: "wait", sentence: `an operator forced ${o.forced} to bootstrap: waiting for it` };
  if (!o.initialized) {
    const first = [...o.members].sort()[0]!;
    return first === o.me
      ? { do: "bootstrap", sentence: "a new cluster: the first member bootstraps it" }
      : { do: "wait", sentence: `a new cluster: waiting for ${first} to bootstrap it` };
  }
  const silent = o.members.filter((m) => o.positions[m] === undefined);
  if (silent.length > 0)
    return {
      do: "wait",
      sentence: `no Primary component; waiting for ${silent.join(", ")} to say where its data ends (the most advanced node must bootstrap)`,
    };
  const withData = o.members.filter((m) => o.positions[m] !== "empty");
  const at = (m: string) => o.positions[m] as Position;
  const unknown = withData.filter((m) => !known(at(m)));
  if (unknown.length > 0)
    return {
      do: "wait",
      sentence: `no Primary component; ${unknown.join(", ")} could not recover its position: an operator must force a node`,
    };
  if (withData.length === 0)
    return {
      do: "wait",
      sentence: "no Primary component and no member holds the cluster's data: an operator must force a node",
    };
  const histories = new Set(withData.map((m) => at(m).uuid));
  if (histories.size > 1)
    return {
      do: "wait",
      sentence: `no Primary component; the members hold ${histories.size} different histories: an operator must choose`,
    };
  const best = [...withData].sort((a, b) => at(b).seqno - at(a).seqno || a.localeCompare(b))[0]!;
  const seqno = at(best).seqno;
  return best === o.me
    ? {
        do: "bootstrap",
        sentence: `no Primary component; this node has the highest seqno (${seqno}): bootstrapping`,
      }
    : {
        do: "wait",
        sentence: `no Primary component; ${best} has the highest seqno (${seqno}): waiting for it to bootstrap`,
      };
}

/** A writer in the Primary component stays writer this long while not Synced (donating state, Joined). */
export const HOLDER_UNSYNCED_MS = 5000;
/** A node outside any Primary component this long starts over (the start decision again). */
export const STUCK_NON_PRIMARY_MS = 30_000;

export interface RunningInput {
  now: number;
  /** The server as its manager last saw it (state null: it did not answer). */
  node: { running: boolean; state: string | null; primary: boolean };
  /** The leader lease: this node's, another's, free, or not known now (the store did not answer). */
  lease: "mine" | "other" | "free" | "unreachable";
  /** The writer (another's lease) went unanswered long enough to be suspected. */
  writerSilent: boolean;
  /** As holder: since when its server has not been Synced (null: it is). */
  unsyncedSince: number | null;
  /** A bootstrap this node began holds the lease until then while its server starts. */
  bootstrapUntil: number;
  /** Since that bootstrap began, its server was seen in the Primary component. */
  seenPrimary: boolean;
  /** Since when the server has been outside any Primary component (null: it is in one). */
  nonPrimarySince: number | null;
}

export type RunningDecision =
  | { do: "lead"; sentence: string }
  | { do: "hold"; sentence: string }
  | { do: "step-down"; sentence: string }
  | { do: "fence"; sentence: string }
  | { do: "take"; sentence: string }
  | { do: "start-over"; sentence: string }
  | { do: "follow"; sentence: string };

/**
 * What a running member does about writes; the first clause that applies decides.
 * Only a holder that is Synced in the Primary component writes (a moment of donating
 * state aside); a follower takes a free lease, or asks to fence a silent writer, only
 * when it is Synced in the Primary component itself.
 */
export function decideRunning(o: RunningInput): RunningDecision {
  const n = o.node;
  const unsyncedFor = o.unsyncedSince === null ? 0 : o.now - o.unsyncedSince;
  if (o.lease === "mine") {
    if (n.running && n.state === null && unsyncedFor < HOLDER_UNSYNCED_MS)
      return { do: "hold", sentence: "the server did not answer its manager: keeping the lease a moment" };
    if (n.primary && (n.state === "Synced" || unsyncedFor < HOLDER_UNSYNCED_MS))
      return { do: "lead", sentence: `writer (${n.state})` };
    if (o.now < o.bootstrapUntil && (n.primary || !o.seenPrimary))
      return { do: "hold", sentence: "bootstrapping: waiting to be Synced" };
    return {
      do: "step-down",
      sentence: n.primary
        ? `the node is ${n.state ?? "silent"}, not Synced`
        : "the node left the Primary component",
    };
  }
  const fit = n.primary && n.state === "Synced";
  if (o.lease === "other" && fit && o.writerSilent)
    return { do: "fence", sentence: "the writer does not answer: asking to fence it" };
  if (o.lease === "free" && fit) return { do: "take", sentence: "the lease is free: taking it" };
  if (!n.primary && o.nonPrimarySince !== null && o.now - o.nonPrimarySince > STUCK_NON_PRIMARY_MS)
    return {
      do: "start-over",
      sentence: `outside any Primary component for ${STUCK_NON_PRIMARY_MS / 1000} s: starting over`,
    };
  return { do: "follow", sentence: n.primary ? `${n.state ?? "?"}` : "non-primary" };
}
