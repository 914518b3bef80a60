/**
 * NodeNetwork as root: a process started through a node's launcher is in the node's
 * group and leaves from the node's address; a silent address answers nothing; an
 * isolated node reaches no other party; `close` leaves no process, table or group.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer, connect, type Server } from "node:net";
import { after, before, describe, it } from "node:test";
import { cgroup2Root } from "../cloud/local/network/cgroups.js";
import { claimAddressBlock } from "./addresses.js";
import { NodeNetwork } from "./node-network.js";

/** What this machine lacks for the test (the suite runs as root with nftables and cgroup v2). */
const missing =
  process.getuid?.() !== 0
    ? "root"
    : cgroup2Root() === undefined
      ? "cgroup v2"
      : existsSync("/usr/sbin/nft")
        ? undefined
        : "nft (scripts/setup.sh installs nftables)";

/** Runs `node -e script` as node `name`; resolves with its exit code. */
function runAs(net: NodeNetwork, name: string, script: string): Promise<number | null> {
  const [sh, ...args] = net.launcher(name);
  const child = spawn(sh!, [...args, process.execPath, "-e", script], { stdio: "ignore" });
  return new Promise((resolve) => child.on("exit", (code) => resolve(code)));
}

/** Whether a TCP connection from here (127.0.0.1) to `host:port` opens within 500 ms. */
function reaches(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port, timeout: 500 });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.on("connect", () => done(true));
    s.on("timeout", () => done(false));
    s.on("error", () => done(false));
  });
}

describe("NodeNetwork", () => {
  const block = claimAddressBlock();
  const a = `127.${block.base}.0.11`;
  const b = `127.${block.base}.0.12`;
  let net: NodeNetwork;
  let server: Server;
  const peers: string[] = [];
  let port = 0;

  before(async () => {
    assert.equal(missing, undefined, `NodeNetwork needs ${missing}`);
    net = await NodeNetwork.open(
      block.base,
      "/dev/null",
      [{ name: "a", address: a }],
      [{ name: "b", address: b }],
    );
    server = createServer((s) => {
      peers.push(s.remoteAddress ?? "");
      s.destroy();
    });
    await new Promise<void>((r) => server.listen(0, b, r));
    port = (server.address() as { port: number }).port;
  });
  after(async () => {
    server?.close();
    await net?.close();
    block.release();
  });

  const dial = `const s = require("net").connect(PORT, "${b}"); s.on("connect", () => process.exit(0)); s.on("error", () => process.exit(2)); setTimeout(() => process.exit(3), 1000);`;

  it("a node's connections leave from its address, and an isolated node reaches no other party", async () => {
    assert.equal(await runAs(net, "a", dial.replace("PORT", String(port))), 0);
    assert.equal(peers.at(-1), a, "the peer sees the node's own address");
    await net.isolate("a");
    assert.equal(await runAs(net, "a", dial.replace("PORT", String(port))), 3, "silence, not a refusal");
    assert.equal(await reaches(b, port), true, "clients elsewhere still reach the other party");
    await net.heal();
    assert.equal(await runAs(net, "a", dial.replace("PORT", String(port))), 0);
  });

  it("a silent address answers nothing until it speaks again", async () => {
    await net.silence("b", true);
    assert.equal(await reaches(b, port), false);
    await net.silence("b", false);
    assert.equal(await reaches(b, port), true);
  });

  it("finds, stops and kills every process of a node", async () => {
    const [sh, ...args] = net.launcher("a");
    const child = spawn(sh!, [...args, "sleep", "60"], { stdio: "ignore" });
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(
      net.processes("a").map((p) => p.pid),
      [child.pid],
    );
    net.signal("a", "SIGSTOP");
    assert.match(spawnSync("ps", ["-o", "stat=", "-p", String(child.pid)], { encoding: "utf8" }).stdout, /T/);
    await net.kill("a");
    assert.deepEqual(net.processes("a"), []);
  });
});
