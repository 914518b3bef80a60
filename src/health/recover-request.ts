/**
 * What the health monitor asks for when it decides to recover an instance: the
 * payload of a `recover` task, which the director runs (src/director/recover.ts).
 */
export interface RecoverPayload {
  instanceId: string;
  /** The VM that failed (fenced before anything is taken from it); null when the instance had none. */
  failedVmId: string | null;
  /** Why the monitor decided to recover it. */
  reason: string;
  /** Rebuild in another (healthy) zone: its own is down and the group may relocate. */
  relocate: boolean;
  detectedAt: number;
}
