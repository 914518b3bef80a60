/**
 * An instance's lifecycle as the director drives it (STYLE.md point 9):
 *
 *   creating ─▶ running ◀─▶ stopped
 *      │          │ ▲          │
 *      │          ▼ │          │
 *      ├──────▶ updating ◀─────┤        any state ─▶ failed (its last step failed)
 *      ▼                                 any state ─▶ deleting ─▶ (gone)
 *   failed ─▶ updating
 *
 * Illegal transitions throw: they are bugs in the executor.
 */
export type InstanceState = "creating" | "updating" | "running" | "stopped" | "failed" | "deleting";

const TRANSITIONS: Record<InstanceState, readonly InstanceState[]> = {
  creating: ["running", "stopped", "failed", "deleting", "updating"],
  updating: ["running", "stopped", "failed", "deleting"],
  running: ["updating", "stopped", "failed", "deleting"],
  stopped: ["updating", "running", "failed", "deleting"],
  failed: ["updating", "running", "stopped", "deleting", "failed"],
  deleting: ["failed", "deleting"],
};

export function checkInstanceTransition(key: string, from: InstanceState, to: InstanceState): void {
  if (from === to && from !== "deleting" && from !== "failed") return;
  if (!TRANSITIONS[from].includes(to))
    throw new Error(`instance ${key}: illegal transition ${from} -> ${to}`);
}
