/**
 * The local cloud's network fails like a real one (as root: nftables and cgroups):
 * a VM's connections leave from its own address; a crashed VM answers nothing
 * while one whose processes died answers with resets; partitions, isolation and
 * lossy links drop packets (the sender sees silence, never a refusal); heal, a
 * daemon stop and a daemon start remove every rule of the cloud; bad input names
 * the field and changes nothing.
 *
 * The packet-level cases use sockets bound to a VM's addresses by the test itself:
 * rules match addresses, whoever holds the socket.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { readFileSync } from "node:fs";
import { createServer, type AddressInfo, type Server } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Vm } from "../../src/cloud/cloud.js";
import type { LocalCloudClient } from "../../src/cloud/local/client.js";
import { InvalidInput } from "../../src/lib/errors.js";
import { isAlive } from "../../src/lib/proc.js";
import { sleep, waitFor } from "../../src/lib/sleep.js";
import { CloudHarness } from "../../src/testing/cloud-harness.js";
import { HeartbeatSink } from "../../src/testing/heartbeat-sink.js";
import { tryConnect } from "../../src/testing/try-connect.js";
import { bootVm } from "../../src/testing/vms.js";

/** A TCP listener on one address of the test's own (a stand-in for a service on that address). */
async function listenOn(address: string): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => s.on("error", () => undefined).end());
  await new Promise<void>((r) => server.listen(0, address, () => r()));
  return { server, port: (server.address() as AddressInfo).port };
}

const tableExists = (name: string) => spawnSync("nft", ["list", "table", "ip", name]).status === 0;

describe("local cloud network", () => {
  const harness = new CloudHarness();
  const sink = new HeartbeatSink();
  let cloud: LocalCloudClient;
  let a: Vm; // z1
  let b: Vm; // z2
  let c: Vm; // z1
  const servers: Server[] = [];
  const table = () => `zonal_b${harness.addressBase}`;

  before(async () => {
    await sink.start();
    cloud = await harness.start();
    a = (await bootVm(cloud, { zone: "z1", agent: { heartbeat: { url: sink.url, intervalMs: 200 } } })).vm;
    b = (await bootVm(cloud, { zone: "z2" })).vm;
    c = (await bootVm(cloud, { zone: "z1" })).vm;
  });
  after(async () => {
    for (const s of servers) s.close();
    await harness.teardown();
    await sink.stop();
    assert.equal(tableExists(table()), false, "teardown removed the cloud's table");
  });

  const serve = async (address: string) => {
    const l = await listenOn(address);
    servers.push(l.server);
    return l.port;
  };

  it("a VM's connections leave from its own address", async () => {
    await waitFor(() => (sink.from(a.id).length >= 2 ? true : undefined), {
      timeoutMs: 10_000,
      what: "heartbeats of VM a",
    });
    assert.equal(sink.from(a.id).at(-1)!.from, a.address);
  });

  it("partition A B drops packets both ways, silently; others and clients are untouched; heal restores it", async () => {
    const portB = await serve(b.address);
    const portA = await serve(a.address);
    assert.equal(await tryConnect(b.address, portB, a.address), "connected");
    const f = await cloud.addNetworkFault({ kind: "partition", a: a.id, b: b.id, oneWay: false });
    assert.match(f.id, /^net-/);
    assert.equal(await tryConnect(b.address, portB, a.address), "silent", "a -> b dropped, not refused");
    assert.equal(await tryConnect(a.address, portA, b.address), "silent", "b -> a dropped");
    assert.equal(await tryConnect(b.address, portB, c.address), "connected", "c is not in the partition");
    assert.equal(await tryConnect(b.address, portB), "connected", "a client outside zonal still reaches b");
    assert.deepEqual(
      (await cloud.faults()).network.map((n) => n.id),
      [f.id],
    );
    assert.deepEqual(await cloud.healNetwork(f.id), [f.id]);
    assert.equal(await tryConnect(b.address, portB, a.address), "connected");
    assert.deepEqual((await cloud.faults()).network, []);
  });

  it("a one-way partition drops only what goes from A to B", async () => {
    const portB = await serve(b.address);
    const f = await cloud.addNetworkFault({ kind: "partition", a: "z2", b: "z1", oneWay: true });
    // b (z2) -> a (z1): dropped. a -> b: the SYN passes, the SYN-ACK back is dropped: silent too.
    assert.equal(await tryConnect(b.address, portB, a.address), "silent");
    const u = createSocket("udp4");
    const received: string[] = [];
    u.on("message", (m) => received.push(m.toString()));
    await new Promise<void>((r) => u.bind(0, b.address, () => r()));
    const sender = createSocket("udp4");
    await new Promise<void>((r) => sender.bind(0, a.address, () => r()));
    sender.send("a->b", u.address().port, b.address);
    await sleep(200);
    assert.deepEqual(received, ["a->b"], "from z1 to z2 packets pass");
    const back = createSocket("udp4");
    const got: string[] = [];
    back.on("message", (m) => got.push(m.toString()));
    await new Promise<void>((r) => back.bind(0, a.address, () => r()));
    const fromB = createSocket("udp4");
    await new Promise<void>((r) => fromB.bind(0, b.address, () => r()));
    fromB.send("b->a", back.address().port, a.address);
    await sleep(200);
    assert.deepEqual(got, [], "from z2 to z1 packets are lost");
    for (const s of [u, sender, back, fromB]) s.close();
    await cloud.healNetwork(f.id);
  });

  it("a one-way partition drops the replies to connections the far side opens (they carry its address until conntrack)", async () => {
    // VM d beats to a listener on b's address: its connections leave from d's address.
    const onB = await new HeartbeatSink().start(undefined, b.address);
    const d = (await bootVm(cloud, { zone: "z3", agent: { heartbeat: { url: onB.url, intervalMs: 100 } } }))
      .vm;
    try {
      await waitFor(() => (onB.from(d.id).length > 0 ? true : undefined), {
        timeoutMs: 10_000,
        what: "beats of d",
      });
      const f = await cloud.addNetworkFault({ kind: "partition", a: b.id, b: d.id, oneWay: true });
      // Requests on d's open connection still arrive (d -> b passes) until d gives up
      // waiting for an answer (1 s); after that every new connection stays half-open.
      await sleep(1500);
      const cut = Date.now();
      await sleep(2000);
      assert.deepEqual(onB.from(d.id, cut), [], "d's SYN reaches b, b's answer never reaches d");
      await cloud.healNetwork(f.id);
      const healedAt = Date.now();
      await waitFor(() => (onB.from(d.id, healedAt).length > 0 ? true : undefined), {
        timeoutMs: 10_000,
        what: "beats after the heal",
      });
    } finally {
      await onB.stop();
      await cloud.deleteVm(d.id);
    }
  });

  it("isolate cuts a VM off from every other zonal party, not from clients", async () => {
    const portA = await serve(a.address);
    const f = await cloud.addNetworkFault({ kind: "isolate", target: a.id });
    assert.equal(await tryConnect(a.address, portA, c.address), "silent", "from its zone");
    assert.equal(await tryConnect(a.address, portA, b.address), "silent", "from another zone");
    assert.equal(await tryConnect(a.address, portA), "connected", "a client still reaches it");
    await cloud.healNetwork(f.id);
    assert.equal(await tryConnect(a.address, portA, c.address), "connected");
  });

  it("isolating one service of a VM cuts it off from its own VM too, and nothing else", async () => {
    const service = await serve(a.address);
    const other = await serve(a.address);
    const f = await cloud.addNetworkFault({ kind: "isolate", target: `${a.id}:${service}` });
    assert.equal(await tryConnect(a.address, service, a.address), "silent", "from its own VM's address");
    assert.equal(await tryConnect(a.address, service, b.address), "silent", "from another VM");
    assert.equal(await tryConnect(a.address, service), "connected", "a client still reaches it");
    assert.equal(
      await tryConnect(a.address, other, b.address),
      "connected",
      "the VM's other ports are reachable",
    );
    await cloud.healNetwork(f.id);
  });

  it("a slow link loses its share of the packets", async () => {
    const f = await cloud.addNetworkFault({ kind: "slow", target: b.id, delayMs: 0, lossPct: 50 });
    const rx = createSocket("udp4");
    let n = 0;
    rx.on("message", () => (n += 1));
    await new Promise<void>((r) => rx.bind(0, b.address, () => r()));
    const tx = createSocket("udp4");
    for (let i = 0; i < 400; i++) {
      tx.send("x", rx.address().port, b.address);
      if (i % 50 === 0) await sleep(5);
    }
    await sleep(300);
    rx.close();
    tx.close();
    // Binomial(400, 0.5): 140..260 is more than 6 standard deviations wide.
    assert.ok(n > 140 && n < 260, `${n} of 400 packets arrived with 50% loss`);
    await cloud.healNetwork(f.id);
  });

  /** What a lost delayed packet leaves to read: the delayer, its queue, the rules and their counters. */
  const delayDiagnostics = (): string => {
    const sh = (cmd: string, args: string[]) => {
      const r = spawnSync(cmd, args, { encoding: "utf8" });
      return `$ ${cmd} ${args.join(" ")}\n${r.stdout}${r.stderr}`;
    };
    const log = readFileSync(join(harness.dataDir, "delay.log"), "utf8").slice(-2000);
    return [
      `the delayer's log: ${JSON.stringify(log)}`,
      `delay queues: ${JSON.stringify(
        (harness.state().network?.delays ?? []).map((d) => ({
          ...d,
          alive: isAlive(d.proc.pid, d.proc.startTime),
        })),
      )}`,
      `nfnetlink_queue (queue portid waiting copy range dropped user_dropped id):\n${readFileSync("/proc/net/netfilter/nfnetlink_queue", "utf8")}`,
      sh("/usr/sbin/iptables-nft", ["-t", "filter", "-L", "-v", "-n", "-x"]),
      sh("nft", ["list", "table", "ip", `zonal_b${harness.addressBase}`]),
    ].join("\n");
  };

  it("a slow link delays every packet it lets through; heal takes the delay away", async () => {
    // Five packets 50 ms apart, each timed from its own send: every one that arrives
    // must be late by the delay.
    const arrivals = async (): Promise<number[]> => {
      const rx = createSocket("udp4");
      const tx = createSocket("udp4");
      await new Promise<void>((r) => rx.bind(0, b.address, () => r()));
      const sent: number[] = [];
      const took: number[] = [];
      rx.on("message", (msg) => took.push(Date.now() - sent[Number(msg.toString())]!));
      for (let i = 0; i < 5; i++) {
        sent.push(Date.now());
        tx.send(String(i), rx.address().port, b.address);
        await sleep(50);
      }
      await waitFor(async () => (took.length === 5 ? true : undefined), {
        timeoutMs: 5000,
        what: "five packets",
      }).catch(() => undefined);
      rx.close();
      tx.close();
      return took;
    };
    const f = await cloud.addNetworkFault({ kind: "slow", target: b.id, delayMs: 300, lossPct: 0 });
    const slow = await arrivals();
    // Under heavy load a delayed packet is now and then lost (2 of 5, once, beside a CI
    // run: the delayer had given every verdict): harsher than the link asked for, never
    // kinder; the README says so. Every one that arrives is late by the delay.
    if (slow.length === 0) assert.fail(`no packet arrived; ${delayDiagnostics()}`);
    if (slow.length < 5) console.log(`# ${slow.length} of 5 delayed packets arrived; ${delayDiagnostics()}`);
    for (const ms of slow) assert.ok(ms >= 295, `a packet to the slow VM took ${ms} ms (delay 300 ms)`);
    await cloud.healNetwork(f.id);
    const fast = await arrivals();
    assert.equal(fast.length, 5, `after heal ${fast.length} of 5 packets arrived`);
    for (const ms of fast) assert.ok(ms < 200, `after heal: ${ms} ms`);
  });

  it("a crashed VM answers nothing; one whose processes were killed answers with resets", async () => {
    const x = (await bootVm(cloud, { zone: "z3" })).vm;
    const y = (await bootVm(cloud, { zone: "z3" })).vm;
    assert.equal(await tryConnect(x.address, x.agentPort), "connected");
    await cloud.crashVm(x.id);
    await cloud.killVmProcesses(y.id);
    assert.equal(await tryConnect(x.address, x.agentPort), "silent", "a dead kernel sends no reset");
    assert.equal(await tryConnect(y.address, y.agentPort), "refused", "a live kernel refuses");
    assert.ok((await cloud.faults()).silentVms.includes(x.id));
    await cloud.powerOffVm(y.id);
    assert.equal(await tryConnect(y.address, y.agentPort), "silent", "a powered-off VM answers nothing");
    await cloud.rebootVm(x.id);
    await waitFor(
      async () => ((await tryConnect(x.address, x.agentPort)) === "connected" ? true : undefined),
      {
        timeoutMs: 20_000,
        what: "the rebooted VM's agent",
      },
    );
    await cloud.deleteVm(x.id);
    await cloud.deleteVm(y.id);
  });

  it("a frozen VM is silent to new connections until it thaws", async () => {
    const x = (await bootVm(cloud, { zone: "z3" })).vm;
    await cloud.freezeVm(x.id);
    assert.equal(await tryConnect(x.address, x.agentPort), "silent");
    await cloud.thawVm(x.id);
    assert.equal(await tryConnect(x.address, x.agentPort), "connected");
    await cloud.deleteVm(x.id);
  });

  it("bad input names the field and changes nothing", async () => {
    const before = await cloud.faults();
    await assert.rejects(
      cloud.addNetworkFault({ kind: "partition", a: "z9", b: a.id, oneWay: false }),
      (err: Error) => err instanceof InvalidInput && /^a: "z9" is no zone/.test(err.message),
    );
    await assert.rejects(
      cloud.addNetworkFault({ kind: "isolate", target: `${a.id}:99999` }),
      (err: Error) =>
        err instanceof InvalidInput && /target: expected a port from 1 to 65535/.test(err.message),
    );
    await assert.rejects(
      cloud.addNetworkFault({ kind: "slow", target: a.id, delayMs: 0, lossPct: 0 }),
      (err: Error) =>
        err instanceof InvalidInput && /delayMs: a slow link needs a delay or a loss/.test(err.message),
    );
    await assert.rejects(
      cloud.addNetworkFault({ kind: "isolate", target: "control-plane" }),
      (err: Error) =>
        err instanceof InvalidInput &&
        /target: the control plane has no address of its own/.test(err.message),
    );
    await assert.rejects(cloud.healNetwork("net-nothing"), /network fault net-nothing does not exist/);
    assert.deepEqual(await cloud.faults(), before);
  });

  it("stopping the daemon removes its table; one that crashed leaves it, and starting again heals it and restores the rest", async () => {
    const portB = await serve(b.address);
    await cloud.addNetworkFault({ kind: "partition", a: a.id, b: b.id, oneWay: false });
    await harness.killDaemon("SIGTERM"); // as zonal down stops it
    assert.equal(tableExists(table()), false, "a stopped daemon leaves no rule behind");
    cloud = await harness.start();
    await cloud.addNetworkFault({ kind: "partition", a: a.id, b: b.id, oneWay: false });
    await harness.killDaemon(); // a crash: the rules stay behind
    assert.equal(tableExists(table()), true);
    cloud = await harness.start();
    assert.deepEqual((await cloud.faults()).network, [], "faults of the old daemon healed");
    assert.equal(await tryConnect(b.address, portB, a.address), "connected");
    await waitFor(() => (sink.from(a.id, Date.now() - 300).length > 0 ? true : undefined), {
      timeoutMs: 5000,
      what: "a heartbeat after the restart",
    });
    assert.equal(sink.from(a.id).at(-1)!.from, a.address, "VMs still leave from their own address");
  });
});
