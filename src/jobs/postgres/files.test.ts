/** What postgres runs with: TLS on, plain text only from the machine itself, replication verifying its leader. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { postgresConfigSchema, tlsFiles, type PgPaths } from "./config.js";
import { pgHbaConf, postgresqlConf, roleConf } from "./files.js";

const paths: PgPaths = {
  data: "/d/data",
  conf: "/j/postgresql.conf",
  hba: "/j/pg_hba.conf",
  roleConf: "/j/role.conf",
  roleFile: "/j/role.json",
  socketDir: "/j/run",
  pwFile: "/j/pwfile",
  tlsDir: "/j/tls",
};

describe("postgres files", () => {
  it("serves TLS with the member's certificate", () => {
    const conf = postgresqlConf({
      address: "127.1.2.3",
      config: postgresConfigSchema.parse({}),
      paths,
      member: "m0",
    });
    assert.match(conf, /^ssl = true$/m);
    assert.match(conf, /^ssl_cert_file = '\/j\/tls\/server\.crt'$/m);
    assert.match(conf, /^ssl_key_file = '\/j\/tls\/server\.key'$/m);
  });

  it("lets plain text in from 127.0.0.1 only; every other address needs TLS", () => {
    const lines = pgHbaConf()
      .split("\n")
      .filter((l) => l && !l.startsWith("#"))
      .map((l) => l.split(/\s+/));
    const plain = lines.filter(([type]) => type === "host");
    assert.ok(plain.length > 0 && plain.every((l) => l[3] === "127.0.0.1/32"), JSON.stringify(plain));
    assert.ok(lines.some(([type, db, , addr]) => type === "hostssl" && db === "all" && addr === "0.0.0.0/0"));
    assert.ok(lines.every(([type]) => type !== "hostnossl"));
  });

  it("replicates over TLS, checking the leader's certificate and address", () => {
    const conf = roleConf(
      { role: "replica", leader: { member: "m0", address: "127.1.2.4", port: 5432 }, rewind: false },
      { member: "m1", replicationPassword: "pw", caFile: tlsFiles(paths).ca },
    );
    assert.match(conf, /host=127\.1\.2\.4 .*sslmode=verify-full sslrootcert=\/j\/tls\/ca\.crt/);
  });
});
