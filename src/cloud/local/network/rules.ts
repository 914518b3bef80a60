/**
 * The local cloud's nftables table, rendered from what the network should do
 * (pure: a view in, nft's text out; `nft.ts` loads it in one transaction).
 *
 *   chain drop_orphans (output, mangle - 10)  packets of sockets whose VM has no kernel now
 *   chain mark_members (output, mangle)       a member's packets, known by its cgroup, get its mark
 *   chain nat_members  (postrouting, srcnat)  a marked connection leaves from the member's own address
 *   chain drop_received (prerouting)          silent addresses and network faults: packets
 *                                             (then a virtual address's SYN that its holder does not take)
 *   chain drop_replies  (output)              vanish, or get a slow link's mark (an NFQUEUE
 *                                             rule delays them)
 *
 * Everything runs on loopback, so every packet is both sent and received here. A
 * packet that opens or continues a connection in its first direction is dropped
 * where it is received (prerouting): its sender sees a lost packet, no error, no
 * reset — dropping it at output would fail a connect() at once. A reply is dropped
 * as it is sent (output, between conntrack and NAT): a reply to a member's own
 * connection carries the member's address only until NAT turns it back into
 * 127.0.0.1 on its way out, and a TCP reply that cannot be sent is simply
 * retransmitted later, silently.
 * Marking by cgroup and translating the source is what lets rules on addresses tell
 * VMs apart: without it, every VM's connections leave from 127.0.0.1.
 *
 * A virtual address takes a new connection only at the VM the cloud assigned it to,
 * and only once a process there listens on it (the VM "configured" it): a SYN that
 * would reach another VM's socket on it (the old holder, not yet closed), or no socket
 * at all, is dropped on receipt, as a real network drops a packet for an address no
 * host has taken yet (its sender retransmits; no reset). The rules come last in
 * drop_received, after the faults, which an accept there would skip.
 *
 * A VM whose kernel is gone (crashed, frozen, powered off, deleted) sends nothing at
 * all, from any address: the host kernel would keep its killed processes' connections
 * (orphans) and retransmit what they had not sent — an answer from a virtual address
 * that has moved on to another VM since (a commit's answer reached a client 4 s
 * after its primary was powered off, in CI). drop_orphans lets out the sockets of
 * every member that runs, and drops every other full socket of this cloud's cgroup
 * (a deleted VM's group is gone from the members, yet its sockets still name it).
 * Replies the kernel sends for no socket (a reset, a TIME-WAIT's ack) are not
 * matched: a VM whose processes were killed still answers with resets.
 */

export interface Endpoint {
  address: string;
  /** A service on that address (TCP or UDP port); none: every packet of the address. */
  port?: number;
}

/** A party whose outgoing connections leave from its own address (a VM, the control plane). */
export interface Member {
  name: string;
  cgroup: { nftPath: string; level: number };
  address: string;
  /** Its packet mark, unique on this machine. */
  mark: number;
}

/**
 * Packets from `from` to `to` are lost, all of them or a share. One direction.
 * One side may be "elsewhere": every address outside the other side (clients included).
 */
export interface PacketRule {
  /** Shown as the rule's comment (a fault's id). */
  label: string;
  from: Endpoint[] | "elsewhere";
  to: Endpoint[] | "elsewhere";
  /** Share of the packets lost, in percent (100: all of them). */
  lossPct: number;
  /** Instead of dropping: mark the packets (a slow link's delay queue takes marked packets). */
  mark?: number;
}

/** A virtual address the cloud assigned to a running member: new connections reach it there only. */
export interface HeldAddress {
  address: string;
  holder: Member["cgroup"];
}

export interface NetworkView {
  table: string;
  members: Member[];
  /** Addresses that answer nothing, in or out (a crashed, frozen or powered-off VM). */
  silent: string[];
  /** Virtual addresses held by a running member. */
  held?: HeldAddress[];
  /** Members whose kernel is gone (crashed, frozen, powered off): their sockets send nothing. */
  gone?: string[];
  rules: PacketRule[];
}

const set = (items: Array<string | number>): string => `{ ${[...new Set(items)].join(", ")} }`;
const hex = (n: number): string => `0x${n.toString(16).padStart(8, "0")}`;
const quote = (s: string): string => `"${s.replace(/["\\]/g, "")}"`;

function loss(pct: number): string {
  if (pct >= 100) return "";
  return `numgen random mod 10000 < ${Math.round(pct * 100)} `;
}

/** The matches of one side: address-only endpoints together, each service on its own. */
function sides(endpoints: Endpoint[], dir: "s" | "d"): string[] {
  const plain = endpoints.filter((e) => e.port === undefined).map((e) => e.address);
  const services = endpoints.filter((e) => e.port !== undefined);
  const out = plain.length > 0 ? [`ip ${dir}addr ${set(plain)}`] : [];
  for (const e of services)
    out.push(`ip ${dir}addr ${e.address} meta l4proto { tcp, udp } th ${dir}port ${e.port}`);
  return out;
}

function renderRule(r: PacketRule): string[] {
  if (r.from === "elsewhere" && r.to === "elsewhere") throw new Error(`${r.label}: one side must be named`);
  if (r.from.length === 0 || r.to.length === 0) return []; // a side with nothing in it (yet)
  const outside = (other: Endpoint[], dir: "s" | "d") => [
    `ip ${dir}addr != ${set(other.map((e) => e.address))}`,
  ];
  const froms = r.from === "elsewhere" ? outside(r.to as Endpoint[], "s") : sides(r.from, "s");
  const tos = r.to === "elsewhere" ? outside(r.from as Endpoint[], "d") : sides(r.to, "d");
  const lines: string[] = [];
  const action = r.mark === undefined ? `${loss(r.lossPct)}drop` : `meta mark set ${hex(r.mark)}`;
  for (const f of froms) for (const t of tos) lines.push(`${f} ${t} ${action} comment ${quote(r.label)}`);
  return lines;
}

export function renderRuleset(v: NetworkView): string {
  const t = `table ip ${v.table}`;
  const marks = v.members.map(
    (m) =>
      `    socket cgroupv2 level ${m.cgroup.level} ${quote(m.cgroup.nftPath)} meta mark set ${hex(m.mark)} comment ${quote(m.name)}`,
  );
  const snats = v.members.map(
    (m) => `    meta mark ${hex(m.mark)} snat to ${m.address} comment ${quote(m.name)}`,
  );
  const drops = [
    ...(v.silent.length > 0
      ? [`ip saddr ${set(v.silent)} drop comment "silent"`, `ip daddr ${set(v.silent)} drop comment "silent"`]
      : []),
    ...v.rules.flatMap(renderRule),
  ];
  const inDirection = (dir: "original" | "reply") => drops.map((l) => `    ct direction ${dir} ${l}`);
  const gone = new Set(v.gone ?? []);
  const first = v.members[0]?.cgroup;
  const orphans = first
    ? [
        ...v.members
          .filter((m) => !gone.has(m.name))
          .map(
            (m) =>
              `    socket cgroupv2 level ${m.cgroup.level} ${quote(m.cgroup.nftPath)} return comment ${quote(m.name)}`,
          ),
        `    socket cgroupv2 level ${first.level - 1} ${quote(first.nftPath.split("/").slice(0, -1).join("/"))} drop comment "a VM without a kernel"`,
      ]
    : [];
  // Add-then-delete makes the replacement one transaction whether or not the table exists.
  return [
    `add ${t}`,
    `delete ${t}`,
    `${t} {`,
    "  chain drop_orphans {",
    "    type filter hook output priority mangle - 10; policy accept;",
    ...orphans,
    "  }",
    "  chain mark_members {",
    "    type filter hook output priority mangle; policy accept;",
    ...marks,
    "  }",
    "  chain nat_members {",
    "    type nat hook postrouting priority srcnat; policy accept;",
    ...snats,
    "  }",
    "  chain drop_received {",
    "    type filter hook prerouting priority mangle; policy accept;",
    ...inDirection("original"),
    ...(v.held ?? []).flatMap((h) => {
      const syn = `    ct direction original ip daddr ${h.address} tcp flags syn / syn,ack`;
      const says = (what: string) => `comment ${quote(`${h.address}: ${what}`)}`;
      return [
        `${syn} socket cgroupv2 level ${h.holder.level} ${quote(h.holder.nftPath)} accept ${says("its holder listens")}`,
        // `wildcard` matches a full socket only: a listener of another VM.
        `${syn} socket wildcard 0 drop ${says("another VM listens")}`,
        `${syn} socket wildcard 1 drop ${says("another VM listens")}`,
        // Any other socket is a TIME-WAIT (or half-open) one: the kernel hands the SYN to
        // whichever listener matches, the old holder's too if it still listens then.
        `${syn} socket transparent 0 accept ${says("TIME-WAIT")}`,
        `${syn} socket transparent 1 accept ${says("TIME-WAIT")}`,
        `${syn} drop ${says("nobody listens at its holder yet")}`,
      ];
    }),
    "  }",
    // After mark_members (a delay mark must not be overwritten), before NAT.
    "  chain drop_replies {",
    "    type filter hook output priority mangle + 10; policy accept;",
    ...inDirection("reply"),
    "  }",
    "}",
    "",
  ].join("\n");
}
