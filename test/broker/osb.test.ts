/**
 * OSB v2.17 conformance (src/testing/osb-conformance.ts) against a control plane on
 * the local cloud: a `single` plan instance is a real PostgreSQL 15 VM, a binding a
 * real role with TLS credentials.
 */
import assert from "node:assert/strict";
import { osbConformance } from "../../src/testing/osb-conformance.js";
import { ZonalHarness } from "../../src/testing/zonal-harness.js";

const z = new ZonalHarness();

osbConformance("postgresql on the local cloud", {
  up: async () => {
    await z.up();
    return z.director;
  },
  teardown: () => z.teardown(),
  pollMs: 500,
  service: {
    name: "postgresql",
    plans: ["single", "single-standby", "cluster", "cluster-ssd"],
    first: "single",
    canChangeTo: "cluster",
    cannotChangeTo: "cluster-ssd",
    parameters: { database: "orders" },
    badParameters: [{ database: "Bad Name" }, /parameters.*database/],
    credentialKeys: ["uri", "jdbcUrl", "host", "port", "database", "username", "password", "multihost_uri"],
    checkCredentials(c) {
      assert.equal(c.database, "orders");
      assert.match(String(c.multihost_uri), /target_session_attrs=read-write/);
    },
  },
});

const m = new ZonalHarness();

osbConformance("mariadb on the local cloud", {
  up: async () => {
    await m.up();
    return m.director;
  },
  teardown: () => m.teardown(),
  pollMs: 500,
  service: {
    name: "mariadb",
    plans: ["single", "cluster"],
    first: "single",
    canChangeTo: null,
    cannotChangeTo: "cluster",
    parameters: { database: "orders" },
    badParameters: [{ database: "Bad Name" }, /parameters.*database/],
    credentialKeys: ["uri", "jdbcUrl", "host", "port", "database", "username", "password"],
    checkCredentials(c) {
      assert.equal(c.database, "orders");
      assert.match(String(c.uri), /^mysql:\/\/.*ssl-mode=VERIFY_IDENTITY$/);
    },
  },
});
