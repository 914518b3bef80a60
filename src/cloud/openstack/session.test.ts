import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Unauthorized } from "../../lib/errors.js";
import { FakeOpenStack } from "../../testing/fake-openstack.js";
import { OpenStackError, OpenStackSession, messageOf } from "./session.js";

describe("OpenStackSession", () => {
  const os = new FakeOpenStack();
  let session: OpenStackSession;
  before(async () => {
    const url = await os.start();
    session = new OpenStackSession(
      {
        authUrl: `${url}/identity/v3`,
        username: "zonal",
        password: "secret",
        projectName: "platform",
        userDomainName: "Default",
        projectDomainName: "Default",
        region: "RegionOne",
      },
      { backoffMs: 5, attempts: 4 },
    );
  });
  after(() => os.stop());

  it("logs in with Keystone v3 password auth scoped to the project, and reuses the token", async () => {
    os.on("GET /network/v2.0/networks", { body: { networks: [] } });
    await session.request({ service: "network", path: "/v2.0/networks" });
    await session.request({ service: "network", path: "/v2.0/networks" });
    const auth = os.find("POST /identity/v3/auth/tokens");
    assert.equal(auth.length, 1);
    assert.deepEqual(auth[0]!.body, {
      auth: {
        identity: {
          methods: ["password"],
          password: { user: { name: "zonal", domain: { name: "Default" }, password: "secret" } },
        },
        scope: { project: { name: "platform", domain: { name: "Default" } } },
      },
    });
    const calls = os.find("GET /network/v2.0/networks");
    assert.deepEqual(
      calls.map((c) => c.headers["x-auth-token"]),
      ["tok-1", "tok-1"],
    );
    assert.equal(await session.endpoint("volumev3"), `${os.url}/volume/v3/p-123`);
    assert.equal(await session.projectId(), "p-123");
  });

  it("logs in again when a service answers 401, and retries the request once", async () => {
    let refused = false;
    os.on("GET /compute/v2.1/flavors", (req) => {
      if (!refused && req.headers["x-auth-token"] === "tok-1") {
        refused = true;
        return { status: 401, body: { error: { message: "token revoked" } } };
      }
      return { body: { flavors: [] } };
    });
    const before = os.tokensIssued;
    const res = await session.request({ service: "compute", path: "/flavors" });
    assert.deepEqual(res.body, { flavors: [] });
    assert.equal(os.tokensIssued, before + 1);
  });

  it("renews a token that is about to expire before using it", async () => {
    const fresh = new FakeOpenStack();
    const url = await fresh.start();
    try {
      fresh.tokenLifetimeS = 60; // inside the 5-minute renewal window
      fresh.on("GET /image/v2/images", { body: { images: [] } });
      const s = new OpenStackSession({
        authUrl: `${url}/identity/v3`,
        username: "u",
        password: "p",
        projectName: "x",
        userDomainName: "Default",
        projectDomainName: "Default",
      });
      await s.request({ service: "image", path: "/v2/images" });
      await s.request({ service: "image", path: "/v2/images" });
      assert.equal(fresh.tokensIssued, 2);
    } finally {
      await fresh.stop();
    }
  });

  it("retries transient failures of idempotent calls with backoff, but never a POST that may have worked", async () => {
    let n = 0;
    os.on("GET /network/v2.0/ports", () =>
      ++n < 3 ? { status: 503, body: "busy" } : { body: { ports: [] } },
    );
    await session.request({ service: "network", path: "/v2.0/ports" });
    assert.equal(n, 3);

    let posts = 0;
    os.on("POST /compute/v2.1/servers", () => {
      posts++;
      return { status: 500, body: { computeFault: { code: 500, message: "boom" } } };
    });
    await assert.rejects(
      session.request({ service: "compute", method: "POST", path: "/servers", body: {} }),
      (err: unknown) =>
        err instanceof OpenStackError && err.serviceStatus === 500 && /boom/.test(err.message),
    );
    assert.equal(posts, 1);

    let conflicts = 0;
    os.on("POST /compute/v2.1/servers/s1/action", () =>
      ++conflicts < 2
        ? { status: 409, body: { conflictingRequest: { code: 409, message: "task_state powering-off" } } }
        : { status: 202 },
    );
    await session.request({
      service: "compute",
      method: "POST",
      path: "/servers/s1/action",
      body: { "os-stop": null },
      retryConflict: true,
    });
    assert.equal(conflicts, 2);
  });

  it("gives up after the last attempt with the service's own message", async () => {
    os.on("GET /network/v2.0/subnets", {
      status: 503,
      body: { NeutronError: { type: "ServiceUnavailable", message: "neutron is restarting", detail: "" } },
    });
    await assert.rejects(
      session.request({ service: "network", path: "/v2.0/subnets" }),
      (err: unknown) =>
        err instanceof OpenStackError && err.retryable && /503 neutron is restarting/.test(err.message),
    );
    assert.equal(os.find("GET /network/v2.0/subnets").length, 4);
  });

  it("says which user and project Keystone refused", async () => {
    const fresh = new FakeOpenStack();
    const url = await fresh.start();
    fresh.on("POST /identity/v3/auth/tokens", {
      status: 401,
      body: { error: { code: 401, message: "The request you have made requires authentication." } },
    });
    const s = new OpenStackSession({
      authUrl: `${url}/identity/v3`,
      username: "alice",
      password: "wrong",
      projectName: "ops",
      userDomainName: "Default",
      projectDomainName: "Default",
    });
    try {
      await assert.rejects(
        s.request({ service: "compute", path: "/servers" }),
        (err: unknown) => err instanceof Unauthorized && /alice/.test(err.message) && /ops/.test(err.message),
      );
    } finally {
      await fresh.stop();
    }
  });

  it("reads the message of every OpenStack error body shape", () => {
    assert.equal(
      messageOf({ itemNotFound: { code: 404, message: "Instance x could not be found." } }),
      "Instance x could not be found.",
    );
    assert.equal(
      messageOf({ NeutronError: { type: "PortNotFound", message: "Port p not found", detail: "" } }),
      "Port p not found",
    );
    assert.equal(messageOf({ message: "plain" }), "plain");
    assert.equal(messageOf("  text  "), "text");
    assert.equal(messageOf({}), undefined);
  });
});
