import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { Unavailable } from "./errors.js";
import { JsonClient } from "./http-client.js";

/**
 * A server whose kept-alive connections die under their second request (a restarted
 * server's old connection): it drops the connection without an answer; and a path
 * whose every request it drops.
 */
describe("JsonClient on a kept-alive connection found dead", () => {
  let server: Server;
  let client: JsonClient;
  const seen: string[] = [];
  const perSocket = new WeakMap<Socket, number>();
  before(async () => {
    server = createServer((req, res) => {
      const n = (perSocket.get(req.socket) ?? 0) + 1;
      perSocket.set(req.socket, n);
      seen.push(`${req.method} ${req.url} #${n}`);
      if (n > 1 || req.url === "/die-now") return void req.socket.destroy();
      req.resume();
      req.on("end", () => {
        res.setHeader("content-type", "application/json");
        res.end('{"ok":true}');
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    client = new JsonClient({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  /** Leaves one kept-alive connection that served one request (a GET found dead is retried). */
  const warm = async () => {
    assert.deepEqual(await client.request("GET", "/warm"), { ok: true });
    seen.length = 0;
  };

  it("retries a POST said to be idempotent once, on a new connection", async () => {
    await warm();
    assert.deepEqual(await client.request("POST", "/stop", { idempotent: true }), { ok: true });
    assert.deepEqual(seen, ["POST /stop #2", "POST /stop #1"]);
  });

  it("does not retry when the connection was opened for the request (the server itself reset it)", async () => {
    server.closeAllConnections(); // no kept-alive connection left to reuse
    await new Promise((r) => setTimeout(r, 50));
    seen.length = 0;
    await assert.rejects(
      client.request("POST", "/die-now", { idempotent: true }),
      (err: Error) => err instanceof Unavailable && /ECONNRESET/.test(err.message),
    );
    assert.deepEqual(seen, ["POST /die-now #1"]);
  });

  it("reports a POST that is not", async () => {
    await warm();
    await assert.rejects(
      client.request("POST", "/handover"),
      (err: Error) => err instanceof Unavailable && /ECONNRESET/.test(err.message),
    );
    assert.deepEqual(seen, ["POST /handover #2"]);
  });
});
