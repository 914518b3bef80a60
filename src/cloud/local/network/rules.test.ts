import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { renderRuleset, type NetworkView } from "./rules.js";

const cgroup = (vm: string) => ({ nftPath: `unified/zonal/b60/${vm}`, level: 3 });
const view: NetworkView = {
  table: "zonal_b60",
  members: [{ name: "vm-a", cgroup: cgroup("vm-a"), address: "127.61.1.2", mark: 1 }],
  silent: ["127.61.1.9"],
  held: [{ address: "127.61.0.1", holder: cgroup("vm-a") }],
  rules: [{ label: "f-1", from: [{ address: "127.61.1.2" }], to: "elsewhere", lossPct: 100 }],
};

/** The lines of one chain. */
function chain(text: string, name: string): string[] {
  const lines = text.split("\n");
  const from = lines.findIndex((l) => l.trim() === `chain ${name} {`);
  const to = lines.findIndex((l, i) => i > from && l.trim() === "}");
  return lines.slice(from + 1, to).map((l) => l.trim());
}

describe("renderRuleset: virtual addresses", () => {
  it("takes a held address's SYN at its holder only, after every fault and silent rule", () => {
    const received = chain(renderRuleset(view), "drop_received");
    const vip = received.filter((l) => l.includes("ip daddr 127.61.0.1 tcp flags syn / syn,ack"));
    assert.deepEqual(
      vip.map((l) =>
        l.replace(/^ct direction original ip daddr 127\.61\.0\.1 tcp flags syn \/ syn,ack /, ""),
      ),
      [
        'socket cgroupv2 level 3 "unified/zonal/b60/vm-a" accept comment "127.61.0.1: its holder listens"',
        'socket wildcard 0 drop comment "127.61.0.1: another VM listens"',
        'socket wildcard 1 drop comment "127.61.0.1: another VM listens"',
        'socket transparent 0 accept comment "127.61.0.1: TIME-WAIT"',
        'socket transparent 1 accept comment "127.61.0.1: TIME-WAIT"',
        'drop comment "127.61.0.1: nobody listens at its holder yet"',
      ],
    );
    const firstVip = received.indexOf(vip[0]!);
    const lastOther = Math.max(...received.map((l, i) => (/silent|f-1/.test(l) ? i : -1)));
    assert.ok(lastOther >= 0 && lastOther < firstVip, received.join("\n"));
  });

  it("renders no such rule without held addresses, and none in the other chains", () => {
    const text = renderRuleset({ ...view, held: [] });
    assert.doesNotMatch(text, /tcp flags syn/);
    assert.doesNotMatch(chain(renderRuleset(view), "drop_replies").join("\n"), /tcp flags syn/);
  });
});

describe("renderRuleset: VMs without a kernel", () => {
  const two: NetworkView = {
    ...view,
    members: [...view.members, { name: "vm-b", cgroup: cgroup("vm-b"), address: "127.61.1.3", mark: 2 }],
  };

  it("lets out the sockets of running members and drops every other socket of the cloud's group", () => {
    assert.deepEqual(chain(renderRuleset({ ...two, gone: ["vm-b"] }), "drop_orphans").slice(1), [
      'socket cgroupv2 level 3 "unified/zonal/b60/vm-a" return comment "vm-a"',
      'socket cgroupv2 level 2 "unified/zonal/b60" drop comment "a VM without a kernel"',
    ]);
    // Before anything else sees the packet: the marking and NAT of a member come later.
    assert.match(
      renderRuleset(two),
      /chain drop_orphans \{\n\s+type filter hook output priority mangle - 10;/,
    );
    assert.equal(chain(renderRuleset(two), "drop_orphans").filter((l) => l.includes("return")).length, 2);
  });

  it("has no such rule without members", () => {
    assert.deepEqual(chain(renderRuleset({ ...view, members: [] }), "drop_orphans").slice(1), []);
  });
});
