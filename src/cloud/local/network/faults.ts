/**
 * Network faults of the local cloud, and what they mean in packets (pure).
 *
 * A target is a zone (`z1`), a host (`z1/h1`), a VM (`vm-3f2a…`), one service of a
 * VM (`vm-3f2a…:5432`), or `control-plane`. Targets are kept as written and
 * resolved each time the rules are rendered, so a VM created in an isolated zone is
 * isolated too, and a virtual address counts for the VM that holds it now.
 *
 * - partition A B: packets between A and B are lost (`oneWay`: only from A to B).
 * - isolate T: packets between T and every other zonal party (VMs, virtual
 *   addresses, the control plane) are lost. Clients outside zonal (an operator's
 *   shell, an application at 127.0.0.1) still reach T: the harshest case for a
 *   split brain. A service target (`vm:port`) is cut off from its own VM too.
 * - slow T: a share of the packets between T and anything outside it is lost, and
 *   (where the machine can) the rest are delayed.
 */
import { invalidField } from "../../../lib/validate.js";
import type { Endpoint, PacketRule } from "./rules.js";

export type NetworkFaultSpec =
  | { kind: "partition"; a: string; b: string; oneWay: boolean }
  | { kind: "isolate"; target: string }
  | { kind: "slow"; target: string; delayMs: number; lossPct: number };

export type NetworkFault = NetworkFaultSpec & { id: string; since: string };

/** What targets resolve against: the cloud as it is now. */
export interface NetworkState {
  zones: string[];
  hosts: Array<{ id: string; zone: string }>;
  vms: Array<{ id: string; zone: string; host: string; address: string }>;
  /** Virtual addresses and the VM holding each. */
  vips: Array<{ address: string; holder?: string }>;
  /** The control plane's own address, when it registered one. */
  controlPlane?: string;
}

export type Target =
  | { kind: "control-plane" }
  | { kind: "zone"; zone: string }
  | { kind: "host"; host: string }
  | { kind: "vm"; vm: string; port?: number };

export const CONTROL_PLANE = "control-plane";

/** Reads a target; an unknown one is refused naming `field` and what exists. */
export function parseTarget(text: string, s: NetworkState, field: string): Target {
  const problem = (message: string): never => {
    throw invalidField(field, message);
  };
  if (text === CONTROL_PLANE) {
    if (!s.controlPlane)
      problem(
        "the control plane has no address of its own here (it listens on 127.0.0.1, or it did not register with this cloud): start it with --listen on an address of its own, e.g. 127.0.0.2:25555",
      );
    return { kind: "control-plane" };
  }
  const [name, portText, ...rest] = text.split(":");
  if (rest.length > 0 || !name)
    problem(`expected a zone, zone/host, VM, VM:port or control-plane, got "${text}"`);
  const vm = s.vms.find((v) => v.id === name);
  if (portText !== undefined) {
    const port = Number(portText);
    if (!vm) problem(`"${name}" is not a VM of this cloud (only a VM takes a :port)`);
    if (!Number.isInteger(port) || port < 1 || port > 65535)
      problem(`expected a port from 1 to 65535 after "${name}:", got "${portText}"`);
    return { kind: "vm", vm: name!, port };
  }
  if (vm) return { kind: "vm", vm: vm.id };
  if (s.hosts.some((h) => h.id === name)) return { kind: "host", host: name! };
  if (s.zones.includes(name!)) return { kind: "zone", zone: name! };
  return problem(
    `"${text}" is no zone (${s.zones.join(", ")}), host (zone/host), VM of this cloud or ${CONTROL_PLANE}`,
  );
}

function vmEndpoints(s: NetworkState, vmIds: Set<string>): Endpoint[] {
  return [
    ...s.vms.filter((v) => vmIds.has(v.id)).map((v) => ({ address: v.address })),
    ...s.vips
      .filter((a) => a.holder !== undefined && vmIds.has(a.holder))
      .map((a) => ({ address: a.address })),
  ];
}

/** The addresses (and services) a target stands for now. */
export function endpointsOf(t: Target, s: NetworkState): Endpoint[] {
  switch (t.kind) {
    case "control-plane":
      return s.controlPlane ? [{ address: s.controlPlane }] : [];
    case "vm": {
      const vm = s.vms.find((v) => v.id === t.vm);
      if (!vm) return [];
      return t.port === undefined
        ? vmEndpoints(s, new Set([vm.id]))
        : [{ address: vm.address, port: t.port }];
    }
    case "host":
      return vmEndpoints(s, new Set(s.vms.filter((v) => v.host === t.host).map((v) => v.id)));
    case "zone":
      return vmEndpoints(s, new Set(s.vms.filter((v) => v.zone === t.zone).map((v) => v.id)));
  }
}

/** Every address of a zonal party: VMs, held virtual addresses, the control plane. */
function zonalAddresses(s: NetworkState): string[] {
  return [
    ...s.vms.map((v) => v.address),
    ...s.vips.filter((a) => a.holder !== undefined).map((a) => a.address),
    ...(s.controlPlane ? [s.controlPlane] : []),
  ];
}

const both = (label: string, a: Endpoint[] | "elsewhere", b: Endpoint[] | "elsewhere", lossPct: number) => [
  { label, from: a, to: b, lossPct },
  { label, from: b, to: a, lossPct },
];

/**
 * The packet rules a fault makes, against the cloud as it is now. A slow link's
 * surviving packets get `delayMark` (when it has a delay): its delay queue holds them.
 */
export function rulesOf(f: NetworkFault, s: NetworkState, delayMark?: number): PacketRule[] {
  const at = (text: string) => resolve(text, s);
  switch (f.kind) {
    case "partition": {
      const a = at(f.a);
      const b = at(f.b);
      return f.oneWay ? [{ label: f.id, from: a, to: b, lossPct: 100 }] : both(f.id, a, b, 100);
    }
    case "isolate": {
      const t = at(f.target);
      const service = t.some((e) => e.port !== undefined);
      const own = new Set(t.map((e) => e.address));
      const others = zonalAddresses(s)
        .filter((address) => service || !own.has(address))
        .map((address) => ({ address }));
      return both(f.id, t, others, 100);
    }
    case "slow": {
      const t = at(f.target);
      return [
        ...(f.lossPct > 0 ? both(f.id, t, "elsewhere", f.lossPct) : []),
        ...(f.delayMs > 0 && delayMark !== undefined
          ? both(f.id, t, "elsewhere", 0).map((r) => ({ ...r, mark: delayMark }))
          : []),
      ];
    }
  }
}

/** A target as it is now; one that no longer exists (a deleted VM) stands for nothing. */
function resolve(text: string, s: NetworkState): Endpoint[] {
  try {
    return endpointsOf(parseTarget(text, s, "target"), s);
  } catch {
    return [];
  }
}

export function describeFault(f: NetworkFaultSpec): string {
  switch (f.kind) {
    case "partition":
      return `${f.a} ${f.oneWay ? "->" : "<->"} ${f.b}`;
    case "isolate":
      return `${f.target} <-> every other zonal party`;
    case "slow":
      return `${f.target}: +${f.delayMs} ms, ${f.lossPct}% lost`;
  }
}
