/**
 * The local cloud's network faults for processes that are not its VMs (Patroni's
 * nodes in bench/failover), so that both sides of a comparison fail alike. Each
 * node is a cgroup v2 group of its own: a process started through `launcher(name)`
 * joins it before it execs, its children follow, and its connections leave from the
 * node's address (src/cloud/local/network/README.md). One nftables table,
 * `zonal_b<addressBase>`, holds what is silent and what is cut off.
 *
 * - silence(name): the node's address answers nothing and sends nothing (a kernel
 *   panic or a frozen VM as the local cloud makes them);
 * - isolate(name): packets between the node and every other party named here (the
 *   other nodes, the lease store) are lost; clients elsewhere still reach it;
 * - kill / signal: every process of the node, found in its cgroup (PID and start
 *   time read together, so a reused PID is never signalled).
 *
 * `close` kills what is left in the groups, removes them and the table: nothing of
 * it outlives the test, even one that failed.
 */
import { readFileSync } from "node:fs";
import { LocalNetwork } from "../cloud/local/network/network.js";
import type { NetworkFault, NetworkState } from "../cloud/local/network/faults.js";
import { isAlive, isZombie, readStat, signalPid } from "../lib/proc.js";
import { sleep } from "../lib/sleep.js";

export interface Party {
  name: string;
  address: string;
}

export class NodeNetwork {
  private readonly silent = new Set<string>();
  private faults: NetworkFault[] = [];

  private constructor(
    private readonly net: LocalNetwork,
    /** Processes run here, in a cgroup each. */
    private readonly nodes: Party[],
    /** Addresses that take part (a lease store) without processes of ours in a group. */
    private readonly others: Party[],
  ) {}

  /** Opens the table for `nodes`; throws when this machine cannot (not root, no nft, no cgroup v2). */
  static async open(
    addressBase: number,
    logPath: string,
    nodes: Party[],
    others: Party[],
  ): Promise<NodeNetwork> {
    const net = await LocalNetwork.detect(addressBase, logPath);
    if ("unavailable" in net) throw new Error(`network faults are needed here: ${net.unavailable}`);
    const n = new NodeNetwork(net, nodes, others);
    await n.sync();
    return n;
  }

  /** `sh -c` arguments that put the shell in the node's group, then exec the command. */
  launcher(name: string): string[] {
    return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', this.net.cgroupProcs(name)];
  }

  /** The node's live processes. */
  processes(name: string): Array<{ pid: number; startTime: number }> {
    let text = "";
    try {
      text = readFileSync(this.net.cgroupProcs(name), "utf8");
    } catch {
      return [];
    }
    return text
      .split("\n")
      .filter(Boolean)
      .map((line) => readStat(Number(line)))
      .filter((st) => st !== undefined && !isZombie(st))
      .map((st) => ({ pid: st!.pid, startTime: st!.startTime }));
  }

  /** Signals every process of the node; returns how many there were. */
  signal(name: string, signal: NodeJS.Signals): number {
    const procs = this.processes(name);
    for (const p of procs) if (isAlive(p.pid, p.startTime)) signalPid(p.pid, signal);
    return procs.length;
  }

  /** SIGKILL to every process of the node, until none is left. */
  async kill(name: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    this.signal(name, "SIGCONT"); // a stopped process dies only once it runs
    while (this.signal(name, "SIGKILL") > 0) {
      if (Date.now() > deadline) throw new Error(`processes of ${name} did not die within ${timeoutMs} ms`);
      await sleep(20);
    }
  }

  /** Silences the node's address (`on`), or lets it speak again. */
  async silence(name: string, on: boolean): Promise<void> {
    const address = this.addressOf(name);
    if (on) this.silent.add(address);
    else this.silent.delete(address);
    await this.sync();
  }

  /** Cuts the node off from every other party; `heal` undoes it. */
  async isolate(name: string): Promise<void> {
    this.faults.push({
      id: `isolate-${name}`,
      since: new Date().toISOString(),
      kind: "isolate",
      target: name,
    });
    await this.sync();
  }

  async heal(): Promise<void> {
    this.faults = [];
    await this.sync();
  }

  async close(): Promise<void> {
    for (const n of this.nodes) await this.kill(n.name).catch(() => undefined);
    await this.net.clear([]).catch(() => undefined);
    await sleep(50); // the killed are reaped
    for (const n of this.nodes) this.net.forget(n.name);
    this.net.forget(""); // the network's own group, the parent of the nodes'
  }

  private addressOf(name: string): string {
    const party = [...this.nodes, ...this.others].find((p) => p.name === name);
    if (!party) throw new Error(`${name} is not a party of this network`);
    return party.address;
  }

  private async sync(): Promise<void> {
    const state: NetworkState = {
      zones: ["nodes"],
      hosts: [{ id: "nodes/h1", zone: "nodes" }],
      vms: [...this.nodes, ...this.others].map((p) => ({
        id: p.name,
        zone: "nodes",
        host: "nodes/h1",
        address: p.address,
      })),
      vips: [],
    };
    await this.net.sync({
      state,
      members: this.nodes.map((n) => ({ id: n.name, address: n.address })),
      silent: [...this.silent],
      held: [],
      faults: this.faults,
      delays: [],
    });
  }
}
