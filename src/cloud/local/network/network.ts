/**
 * The local cloud's network: one nftables table per cloud (`zonal_b<address_base>`)
 * and a cgroup per VM. `sync` renders the whole table from the cloud's state and
 * loads it in one transaction, after every change that touches it (a VM booted,
 * crashed or deleted, a virtual address moved, a fault made or healed).
 *
 * Available only as root with nft and cgroup v2 (`detect` says why not otherwise);
 * without it the local cloud still runs, but its VMs leave from 127.0.0.1, a dead
 * VM answers with resets and network faults are refused.
 */
import { isAlive } from "../../../lib/proc.js";
import {
  cgroup2Root,
  cgroupRef,
  ensureCgroup,
  moveToCgroup,
  removeCgroup,
  type CgroupRef,
} from "./cgroups.js";
import { rulesOf, type NetworkFault, type NetworkState } from "./faults.js";
import { DelayQueues, type DelayQueue } from "./delay.js";
import { deleteTable, loadRuleset, nftUnavailable } from "./nft.js";
import { renderRuleset, type Member } from "./rules.js";

/** Marks of this machine's zonal members: 0x5a in the top byte, the cloud's address base, an index. */
const markOf = (addressBase: number, index: number) => (0x5a << 24) | (addressBase << 12) | (index & 0xfff);

export interface NetworkInput {
  state: NetworkState;
  /** VMs that run processes (a cgroup each) and so leave from their own address. */
  members: Array<{ id: string; address: string }>;
  /** The control plane, when it registered its process and an address of its own. */
  controlPlane?: { address: string };
  /** Addresses that answer nothing. */
  silent: string[];
  /** Virtual addresses and the member (VM id) the cloud assigned each to. */
  held: Array<{ address: string; holder: string }>;
  /** Members (VM ids) whose kernel is gone: their sockets send nothing. */
  gone?: string[];
  faults: NetworkFault[];
  /** The slow links' delay queues running now (what the last sync returned). */
  delays: DelayQueue[];
}

export class LocalNetwork {
  readonly table: string;
  private readonly delay: DelayQueues;

  private constructor(
    private readonly root: string,
    private readonly addressBase: number,
    logPath: string,
  ) {
    this.table = `zonal_b${addressBase}`;
    this.delay = new DelayQueues(addressBase, logPath);
  }

  /** The network of a cloud with this address base, or why there is none. `logPath`: delay.py's log. */
  static async detect(addressBase: number, logPath: string): Promise<LocalNetwork | { unavailable: string }> {
    if (process.getuid?.() !== 0)
      return { unavailable: "network faults need root (nftables rules and cgroups)" };
    const root = cgroup2Root();
    if (!root) return { unavailable: "network faults need cgroup v2 mounted under /sys/fs/cgroup" };
    const nft = await nftUnavailable();
    if (nft) return { unavailable: nft };
    return new LocalNetwork(root, addressBase, logPath);
  }

  private get network(): string {
    return `b${this.addressBase}`;
  }

  /** The cgroup of a VM (or of the control plane), made if missing. */
  cgroup(name: string): CgroupRef {
    const ref = cgroupRef(this.root, this.network, name);
    ensureCgroup(ref);
    return ref;
  }

  /** The `cgroup.procs` file a VM's first process writes itself into. */
  cgroupProcs(name: string): string {
    return `${this.cgroup(name).dir}/cgroup.procs`;
  }

  /** Moves a running process (the control plane) into a group of its own. */
  adopt(name: string, pid: number, startTime: number): void {
    if (!isAlive(pid, startTime)) return;
    moveToCgroup(this.cgroup(name), pid);
  }

  forget(name: string): void {
    removeCgroup(cgroupRef(this.root, this.network, name));
  }

  /**
   * Loads the table for `input`, replacing what was there, in one transaction (the
   * slow links' delay queues first). Returns the delay queues now running.
   */
  async sync(input: NetworkInput): Promise<DelayQueue[]> {
    const delays = await this.delay.sync(
      input.delays,
      input.faults.flatMap((f) =>
        f.kind === "slow" && f.delayMs > 0 ? [{ faultId: f.id, delayMs: f.delayMs }] : [],
      ),
    );
    const members: Member[] = input.members.map((m, i) => {
      const ref = this.cgroup(m.id);
      return { name: m.id, cgroup: ref, address: m.address, mark: markOf(this.addressBase, i + 1) };
    });
    if (input.controlPlane) {
      const ref = this.cgroup("control-plane");
      members.push({
        name: "control-plane",
        cgroup: ref,
        address: input.controlPlane.address,
        mark: markOf(this.addressBase, 0),
      });
    }
    await loadRuleset(
      renderRuleset({
        table: this.table,
        members,
        silent: input.silent,
        gone: input.gone ?? [],
        held: input.held.flatMap((h) => {
          const holder = members.find((m) => m.name === h.holder);
          return holder ? [{ address: h.address, holder: holder.cgroup }] : [];
        }),
        rules: input.faults.flatMap((f) =>
          rulesOf(f, input.state, delays.find((d) => d.faultId === f.id)?.mark),
        ),
      }),
    );
    return delays;
  }

  /** Removes the table and the delay queues: no rule of this cloud is left. */
  async clear(delays: DelayQueue[]): Promise<void> {
    await deleteTable(this.table);
    await this.delay.clear(delays);
  }
}
