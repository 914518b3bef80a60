/** The VIP forwarder: a dropped address cuts its connections, or lets them finish when asked to linger. */
import assert from "node:assert/strict";
import { connect, createServer, type Server, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { waitFor } from "../lib/sleep.js";
import { claimAddressBlock } from "../testing/addresses.js";
import { AddressForwarder } from "./addresses.js";
import { closeListeners, liveListeners } from "../lib/handed-sockets.js";
import { sendConnections } from "./handoff.js";
import { spawn } from "node:child_process";

const block = claimAddressBlock();
const vmAddress = `127.${block.base}.1.1`;
const vip = `127.${block.base}.0.1`;
const PORT = 7100;

/** A connection through the VIP, with what came back so far and whether it closed. */
async function open(): Promise<{ socket: Socket; got: () => string; closed: () => boolean }> {
  let got = "";
  let closed = false;
  const socket = connect({ host: vip, port: PORT });
  socket.on("data", (d: Buffer) => (got += d.toString()));
  socket.on("close", () => (closed = true));
  socket.on("error", () => undefined);
  await new Promise<void>((res, rej) => socket.once("connect", res).once("error", rej));
  return { socket, got: () => got, closed: () => closed };
}

const refused = () =>
  new Promise<boolean>((res) => {
    const s = connect({ host: vip, port: PORT });
    s.once("connect", () => (s.destroy(), res(false)));
    s.once("error", (err: NodeJS.ErrnoException) => res(err.code === "ECONNREFUSED"));
  });

describe("AddressForwarder", () => {
  let echo: Server;
  before(async () => {
    echo = createServer((s) => s.pipe(s));
    await new Promise<void>((res) => echo.listen(PORT, vmAddress, res));
  });
  after(() => {
    echo.close();
    block.release();
  });

  async function served(f: AddressForwarder) {
    f.set([{ address: vip, ports: [PORT] }]);
    await waitFor(() => (f.statuses()[0]?.state === "bound" ? true : undefined), {
      timeoutMs: 5000,
      what: "the VIP bound",
    });
  }

  it("cuts the connections of an address it drops", async () => {
    const f = new AddressForwarder(vmAddress, 20);
    await served(f);
    const c = await open();
    f.set([]);
    await waitFor(() => (c.closed() ? true : undefined), { timeoutMs: 2000, what: "the connection cut" });
    assert.equal(await refused(), true, "no new connection");
    f.close();
  });

  it("lets them finish for lingerMs on a planned drop, taking no new ones", async () => {
    const f = new AddressForwarder(vmAddress, 20);
    await served(f);
    const c = await open();
    f.set([], { lingerMs: 1500 });
    assert.equal(await refused(), true, "no new connection");
    c.socket.write("still here");
    await waitFor(() => (c.got() === "still here" ? true : undefined), {
      timeoutMs: 1000,
      what: "the open connection to go on",
    });
    assert.equal(c.closed(), false);
    await waitFor(() => (c.closed() ? true : undefined), { timeoutMs: 3000, what: "the cut after 1.5 s" });
    f.close();
  });

  it("hands its listener and a busy connection to another process: nothing refused, nothing lost", async () => {
    const f = new AddressForwarder(vmAddress, 20);
    await served(f);
    const c = await open();
    // A stream of numbered lines in flight through the whole handover.
    let sent = 0;
    const pump = setInterval(() => {
      for (let i = 0; i < 20; i++) c.socket.write(`${++sent}\n`);
    }, 2);
    await waitFor(() => (c.got().length > 1000 ? true : undefined), { timeoutMs: 2000, what: "echoes" });
    const listeners = liveListeners();
    assert.deepEqual(Object.keys(listeners), [`${vip}:${PORT}`], "the VIP's listener is tracked");
    // The successor: the same forwarder code in another process, on the descriptor it inherits.
    const mod = (path: string) => JSON.stringify(new URL(path, import.meta.url).href);
    const successor = spawn(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `import { AddressForwarder } from ${mod("./addresses.js")};
         import { reportReady } from ${mod("./handoff.js")};
         import { inheritListeners } from ${mod("../lib/handed-sockets.js")};
         inheritListeners({ ${JSON.stringify(`${vip}:${PORT}`)}: 4 });
         const f = new AddressForwarder(${JSON.stringify(vmAddress)});
         f.adopt([{ address: ${JSON.stringify(vip)}, ports: [${PORT}] }]);
         reportReady("/nonexistent/zonal-handoff.json", [], (b, client, upstream) => f.adoptConnection(b, client, upstream));`,
      ],
      { stdio: ["ignore", "inherit", "inherit", "ipc", ...Object.values(listeners)] },
    );
    try {
      await new Promise<void>((res, rej) => {
        successor.once("message", () => res());
        successor.once("exit", (code) => rej(new Error(`the successor exited (${code})`)));
      });
      // As an agent does once its successor serves: stop accepting, quiesce, send.
      closeListeners();
      const connections = await f.quiesce();
      assert.equal(connections.length, 1, "the connection is handed");
      await sendConnections(successor, connections);
      f.close();
      clearInterval(pump);
      const expected = Array.from({ length: sent }, (_, i) => `${i + 1}\n`).join("");
      await waitFor(() => (c.got().length >= expected.length ? true : undefined), {
        timeoutMs: 5000,
        what: `all ${sent} lines echoed`,
      });
      assert.equal(c.got(), expected, "every line came back once, in order");
      assert.equal(c.closed(), false, "the connection stays open");
      const fresh = await open();
      fresh.socket.write("new");
      await waitFor(() => (fresh.got() === "new" ? true : undefined), {
        timeoutMs: 2000,
        what: "a new connection served by the successor",
      });
      fresh.socket.destroy();
    } finally {
      clearInterval(pump);
      successor.kill("SIGKILL");
      c.socket.destroy();
    }
  });
});
