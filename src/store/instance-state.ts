/**
 * An instance's lifecycle as the director drives it (STYLE.md point 9):
 *
 *   creating ─▶ running ◀─▶ stopped
 *      │          │ ▲          │
 *      │          ▼ │          │
 *      ├──────▶ updating ◀─────┤        any state ─▶ failed (its last step failed)
 *      ▼                                 any state ─▶ deleting ─▶ (gone)
 *   failed ─▶ updating
 *   running, stopped, failed, creating, updating ─▶ recovering ─▶ running (the health monitor rebuilt it)
 *
 * Illegal transitions throw: they are bugs in the executor.
 */
export type InstanceState =
  "creating" | "updating" | "running" | "stopped" | "failed" | "deleting" | "recovering";

const TRANSITIONS: Record<InstanceState, readonly InstanceState[]> = {
  creating: ["running", "stopped", "failed", "deleting", "updating", "recovering"],
  updating: ["running", "stopped", "failed", "deleting", "recovering"],
  running: ["updating", "stopped", "failed", "deleting", "recovering"],
  stopped: ["updating", "running", "failed", "deleting", "recovering"],
  failed: ["updating", "running", "stopped", "deleting", "failed", "recovering"],
  deleting: ["failed", "deleting"],
  recovering: ["running", "stopped", "failed", "deleting", "updating", "recovering"],
};

export function checkInstanceTransition(key: string, from: InstanceState, to: InstanceState): void {
  if (from === to && from !== "deleting" && from !== "failed") return;
  if (!TRANSITIONS[from].includes(to))
    throw new Error(`instance ${key}: illegal transition ${from} -> ${to}`);
}
