import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { Conflict, InvalidInput } from "./errors.js";
import { httpFetch } from "./fetch.js";
import { JsonApi } from "./json-api.js";

describe("JsonApi", () => {
  const failures: string[] = [];
  const api = new JsonApi({
    token: "t0ken",
    open: ["/health"],
    onServerError: (err, method, path) => failures.push(`${method} ${path}: ${(err as Error).message}`),
  })
    .get("/health", async () => ({ ok: true }))
    .get("/things/:name", async (req) => ({ name: req.params.name, q: req.query }))
    .put("/things/:name", async (req) => ({ put: req.params.name, body: req.body }))
    .post("/conflict", async () => {
      throw new Conflict("it is busy");
    })
    .post("/invalid", async () => {
      throw new InvalidInput("bad", [{ field: "a.b", problem: "expected a number" }]);
    })
    .post("/bug", async () => {
      throw new Error("a bug");
    });
  let base: string;
  before(async () => {
    await api.listen({ host: "127.0.0.1", port: 0 });
    base = `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`;
  });
  after(() => api.close());

  const call = async (
    method: string,
    path: string,
    o: { body?: string; type?: string; auth?: boolean } = {},
  ) => {
    const res = await httpFetch(`${base}${path}`, {
      method,
      headers: {
        ...(o.auth === false ? {} : { authorization: "Bearer t0ken" }),
        ...(o.body !== undefined ? { "content-type": o.type ?? "application/json" } : {}),
      },
      body: o.body,
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
  };

  it("needs the token except on open paths, and says so in an error body", async () => {
    assert.deepEqual(await call("GET", "/health", { auth: false }), { status: 200, body: { ok: true } });
    const refused = await call("GET", "/things/a", { auth: false });
    assert.equal(refused.status, 401);
    assert.equal(refused.body!.error, "unauthorized");
    const wrong = await httpFetch(`${base}/things/a`, { headers: { authorization: "Bearer t0kem" } });
    assert.equal(wrong.status, 401);
    // An unknown route is not told apart from a known one without the token.
    assert.equal((await call("GET", "/nowhere", { auth: false })).status, 401);
  });

  it("routes by method and pattern, decoding path parameters and reading the query", async () => {
    assert.deepEqual(await call("GET", "/things/a%20b?x=1&y="), {
      status: 200,
      body: { name: "a b", q: { x: "1", y: "" } },
    });
    assert.deepEqual(await call("PUT", "/things/k", { body: '{"n":[1,2]}' }), {
      status: 200,
      body: { put: "k", body: { n: [1, 2] } },
    });
    const missing = await call("GET", "/things");
    assert.equal(missing.status, 404);
    assert.match(String(missing.body!.message), /no route GET \/things/);
    assert.equal((await call("DELETE", "/things/a")).status, 404);
    assert.equal((await call("GET", "/things/%E0%A4%A")).status, 400);
  });

  it("refuses a body that is not JSON: malformed 400, another type 415, too big 413", async () => {
    const bad = await call("PUT", "/things/k", { body: "{nope" });
    assert.equal(bad.status, 400);
    assert.equal(bad.body!.error, "invalid_input");
    assert.equal((await call("PUT", "/things/k", { body: "a=1", type: "text/plain" })).status, 415);
    const big = await call("PUT", "/things/k", { body: JSON.stringify("x".repeat(5 * 1024 * 1024)) });
    assert.equal(big.status, 413);
    // Without the token the body is not read at all: refused on the headers.
    const anonymous = await call("PUT", "/things/k", {
      body: JSON.stringify("x".repeat(5 * 1024 * 1024)),
      auth: false,
    });
    assert.equal(anonymous.status, 401);
  });

  it("answers errors with their status and body; a bug is a 500 that is told", async () => {
    assert.deepEqual(await call("POST", "/conflict"), {
      status: 409,
      body: { error: "conflict", message: "it is busy" },
    });
    const invalid = await call("POST", "/invalid");
    assert.equal(invalid.status, 400);
    assert.deepEqual(invalid.body!.problems, [{ field: "a.b", problem: "expected a number" }]);
    const bug = await call("POST", "/bug");
    assert.deepEqual(bug, { status: 500, body: { error: "internal", message: "a bug" } });
    assert.deepEqual(failures, ["POST /bug: a bug"]);
  });

  it("answers in-process the same way (inject)", async () => {
    const r = await api.inject({
      method: "GET",
      url: "/things/z",
      headers: { authorization: "Bearer t0ken" },
    });
    assert.equal(r.statusCode, 200);
    assert.deepEqual(r.json(), { name: "z", q: {} });
    assert.equal((await api.inject({ method: "GET", url: "/things/z" })).statusCode, 401);
    const put = await api.inject({
      method: "PUT",
      url: "/things/z",
      headers: { authorization: "Bearer t0ken" },
      payload: { a: 1 },
    });
    assert.deepEqual(put.json(), { put: "z", body: { a: 1 } });
  });
});
