/**
 * Which host of a zone gets a new VM: a pure function, like nova-scheduler's filter
 * chain. Hosts are filtered (up, attributes, capacity, free address) and the fitting
 * ones ordered: the caller's hints first, then the host with the most free RAM.
 * Every rejected host gets a reason ("z2/h1: lacks ssd").
 */
import type { Attributes, VmType } from "../cloud.js";

export interface HostView {
  id: string;
  up: boolean;
  attributes: Attributes;
  capacity: { cpu: number; ramMb: number };
  used: { cpu: number; ramMb: number };
  usedSlots: ReadonlySet<number>;
}

export type HostChoice = { ok: true; host: string; slot: number } | { ok: false; reasons: string[] };

export const MAX_SLOT = 254;

export function firstFreeSlot(used: ReadonlySet<number>): number | undefined {
  for (let slot = 1; slot <= MAX_SLOT; slot++) if (!used.has(slot)) return slot;
  return undefined;
}

/** Why `host` cannot take a VM of `vmType`, or undefined when it can. */
export function rejectReason(host: HostView, vmType: VmType): string | undefined {
  if (!host.up) return `${host.id}: host has failed`;
  for (const [key, want] of Object.entries(vmType.hostAttributes ?? {})) {
    const have = host.attributes[key];
    if (have === undefined) return `${host.id}: lacks ${key}`;
    if (have !== want) return `${host.id}: ${key} is ${String(have)}, needs ${String(want)}`;
  }
  const freeRam = host.capacity.ramMb - host.used.ramMb;
  if (freeRam < vmType.ramMb) return `${host.id}: ${freeRam} MiB RAM free, needs ${vmType.ramMb}`;
  const freeCpu = host.capacity.cpu - host.used.cpu;
  if (freeCpu < vmType.cpu) return `${host.id}: ${freeCpu} CPUs free, needs ${vmType.cpu}`;
  if (firstFreeSlot(host.usedSlots) === undefined) return `${host.id}: no free address`;
  return undefined;
}

export function chooseHost(hosts: HostView[], vmType: VmType, hints: string[] = []): HostChoice {
  const reasons: string[] = [];
  const fitting: HostView[] = [];
  for (const host of hosts) {
    const reason = rejectReason(host, vmType);
    if (reason) reasons.push(reason);
    else fitting.push(host);
  }
  if (fitting.length === 0) return { ok: false, reasons };
  const rank = (h: HostView): number => {
    const i = hints.indexOf(h.id);
    return i === -1 ? hints.length : i;
  };
  fitting.sort(
    (a, b) =>
      rank(a) - rank(b) ||
      b.capacity.ramMb - b.used.ramMb - (a.capacity.ramMb - a.used.ramMb) ||
      a.id.localeCompare(b.id),
  );
  const host = fitting[0]!;
  return { ok: true, host: host.id, slot: firstFreeSlot(host.usedSlots)! };
}
