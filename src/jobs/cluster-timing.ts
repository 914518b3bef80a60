/**
 * How clustered jobs' members judge their leader's liveness: the numbers the pure
 * deciders and the watching code share (no I/O here).
 */

/** How long a member waits for another's status API before it counts the try as unanswered. */
export const PROBE_TIMEOUT_MS = 400;
/**
 * A leader unanswered this long (every probe timed out or failed) is suspected: a
 * member asks the control plane to fence it, which does so only if the leader's
 * agent has gone silent for the control plane too.
 */
export const SUSPECT_AFTER_MS = 1000;
/** How often a member asks the leader it watches (probes overlap when it is slow). */
export const PROBE_EVERY_MS = 200;
/**
 * How long one watch probe may take. Silence is judged by when the last answer came,
 * not by one probe's timeout: a leader behind a slow link (hundreds of ms each way)
 * still answers every probe, late, and is not suspected.
 */
export const WATCH_PROBE_TIMEOUT_MS = 2000;
/** How often a member a switchover names looks at the lease until it holds it (250 ms otherwise). */
export const SWITCHOVER_CYCLE_MS = 20;
