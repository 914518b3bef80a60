/**
 * The heartbeats agents send: checked against the instance's agent token and kept
 * in memory (the newest per instance). The health monitor decides from these.
 */
import type { Heartbeat } from "../agent/heartbeat.js";
import { tokensEqual } from "../lib/http-server.js";
import { Unauthorized } from "../lib/errors.js";
import type { Store } from "../store/store.js";

export interface LastBeat {
  at: number;
  beat: Heartbeat;
}

export class HeartbeatBook {
  private readonly last = new Map<string, LastBeat>();
  private readonly byVm = new Map<string, { instanceId: string; token: string }>();
  readonly startedAt = Date.now();

  constructor(private readonly store: Store) {}

  /** Records a heartbeat. Unauthorized when the token is not the VM's; a VM no instance owns is ignored. */
  async record(token: string, beat: Heartbeat): Promise<"recorded" | "unknown-vm"> {
    let owner = this.byVm.get(beat.vmId);
    if (!owner) {
      const inst = await this.store.instances.byVm(beat.vmId);
      if (!inst || !inst.agentToken) return "unknown-vm";
      owner = { instanceId: inst.id, token: inst.agentToken };
      this.byVm.set(beat.vmId, owner);
    }
    if (!tokensEqual(token, owner.token)) throw new Unauthorized(`heartbeat for ${beat.vmId}: wrong token`);
    this.last.set(owner.instanceId, { at: Date.now(), beat });
    return "recorded";
  }

  lastOf(instanceId: string): LastBeat | undefined {
    return this.last.get(instanceId);
  }
}
