/**
 * The heartbeats agents send: checked against the owner's agent token (an
 * instance's or a standby's VM) and kept in memory, the newest per VM. The health
 * monitor judges from these. A heartbeat from a VM nobody owns is a zombie's: the
 * book tells whoever listens (the health monitor deletes it).
 */
import type { Heartbeat } from "../agent/heartbeat.js";
import { Unauthorized } from "../lib/errors.js";
import { tokensEqual } from "../lib/http-errors.js";
import type { Store } from "../store/store.js";

export interface LastBeat {
  at: number;
  beat: Heartbeat;
}

export class HeartbeatBook {
  private readonly last = new Map<string, LastBeat>();
  private readonly owners = new Map<string, { token: string }>();
  readonly startedAt = Date.now();
  onUnknownVm: (vmId: string) => void = () => {};

  constructor(private readonly store: Store) {}

  /** Records a heartbeat. Unauthorized when the token is not the VM's owner's. */
  async record(token: string, beat: Heartbeat): Promise<"recorded" | "unknown-vm"> {
    let owner = this.owners.get(beat.vmId);
    if (!owner) {
      const inst = await this.store.instances.byVm(beat.vmId);
      const standby = inst ? undefined : (await this.store.standbys.list()).find((s) => s.vmId === beat.vmId);
      const t = inst?.agentToken ?? standby?.agentToken;
      if (!t) {
        this.onUnknownVm(beat.vmId);
        return "unknown-vm";
      }
      owner = { token: t };
      this.owners.set(beat.vmId, owner);
    }
    if (!tokensEqual(token, owner.token)) throw new Unauthorized(`heartbeat for ${beat.vmId}: wrong token`);
    this.last.set(beat.vmId, { at: Date.now(), beat });
    return "recorded";
  }

  /** The newest heartbeat from this VM. */
  lastOf(vmId: string | null): LastBeat | undefined {
    return vmId ? this.last.get(vmId) : undefined;
  }

  /** Forgets a VM (deleted): its old heartbeats say nothing about its instance any more. */
  forget(vmId: string): void {
    this.last.delete(vmId);
    this.owners.delete(vmId);
  }
}
