import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { InvalidInput } from "./errors.js";
import { failureCode, fetcherFor, httpFetch } from "./fetch.js";

describe("httpFetch", () => {
  let server: Server;
  let base: string;
  before(async () => {
    server = createServer((req, res) => {
      if (req.url === "/echo") {
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => {
          res.setHeader("content-type", "application/json");
          res.setHeader("x-method", req.method ?? "");
          res.end(JSON.stringify({ got: Buffer.concat(chunks).toString(), auth: req.headers.authorization }));
        });
        return;
      }
      if (req.url === "/missing") {
        res.statusCode = 404;
        return void res.end("no such thing");
      }
      if (req.url === "/stall-body") {
        res.writeHead(200, { "content-length": "10" });
        return void res.write("12345"); // the other half never comes
      }
      // /silent: never answers
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it("sends the method, headers and body, and reads status, headers and JSON", async () => {
    const res = await httpFetch(`${base}/echo`, {
      method: "POST",
      headers: { authorization: "Bearer t", "content-type": "application/json" },
      body: JSON.stringify({ a: "é" }),
    });
    assert.equal(res.status, 200);
    assert.equal(res.ok, true);
    assert.equal(res.headers.get("X-Method"), "POST");
    assert.equal(res.headers.get("x-none"), null);
    assert.deepEqual(await res.json(), { got: '{"a":"é"}', auth: "Bearer t" });
    // Kept alive: the next request goes over the same connection, and works.
    const again = await httpFetch(`${base}/echo`);
    assert.deepEqual(await again.json(), { got: "" });
  });

  it("answers an error status with its body, not a rejection", async () => {
    const res = await httpFetch(`${base}/missing`);
    assert.equal(res.ok, false);
    assert.equal(res.status, 404);
    assert.equal(res.statusText, "Not Found");
    assert.equal(await res.text(), "no such thing");
  });

  it("rejects like fetch: a TypeError whose cause names the code when nothing listens", async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const err = await httpFetch(`http://127.0.0.1:${port}/`).then(
      () => assert.fail("a closed port answered"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof TypeError);
    assert.equal(failureCode(err), "ECONNREFUSED");
  });

  it("gives up at the signal, whether the head or the rest of the body is missing", async () => {
    for (const path of ["/silent", "/stall-body"]) {
      const t0 = Date.now();
      const err = await httpFetch(`${base}${path}`, { signal: AbortSignal.timeout(200) }).then(
        () => assert.fail(`${path} answered`),
        (e: unknown) => e,
      );
      assert.equal(failureCode(err), "TimeoutError", path);
      const ms = Date.now() - t0;
      assert.ok(ms >= 150 && ms < 5000, `${path}: gave up after ${ms} ms`);
    }
  });

  it("waits for a slow answer past the idle timeout of kept-alive connections", async () => {
    const slow = createServer((req, res) => setTimeout(() => res.end("late"), 4500));
    await new Promise<void>((r) => slow.listen(0, "127.0.0.1", r));
    try {
      const res = await httpFetch(`http://127.0.0.1:${(slow.address() as AddressInfo).port}/`);
      assert.equal(await res.text(), "late");
    } finally {
      slow.closeAllConnections();
      slow.close();
    }
  });

  it("refuses a CA for a URL that is not https, naming it", () => {
    assert.throws(() => fetcherFor("http://127.0.0.1:1/", "PEM"), InvalidInput);
    assert.throws(() => fetcherFor("http://127.0.0.1:1/", "PEM"), /expected an https URL/);
    assert.equal(fetcherFor("http://127.0.0.1:1/"), httpFetch);
  });
});
