/**
 * Which host of a zone gets a new VM: a pure function, like nova-scheduler's filter
 * chain. Hosts are filtered (up, attributes, capacity: the checks of src/placement,
 * plus a free address) and the fitting ones ordered: the caller's hints first, then
 * the host with the most free RAM. Every rejected host gets a reason ("z2/h1: lacks ssd").
 */
import type { Attributes, VmType } from "./cloud.js";
import { unfitReason } from "../placement/filters.js";

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
  return (
    unfitReason(host, host.used, vmType) ??
    (firstFreeSlot(host.usedSlots) === undefined ? `${host.id}: no free address` : undefined)
  );
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
