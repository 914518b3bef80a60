import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { mariadbConfigSchema, type MariadbPaths } from "./config.js";
import { initSql, myCnf } from "./files.js";

const paths: MariadbPaths = {
  data: "/disk/mariadb/data",
  cnf: "/job/my.cnf",
  initFile: "/job/init.sql",
  socket: "/job/run/mysqld.sock",
  runDir: "/job/run",
  tlsDir: "/job/tls",
  grastate: "/disk/mariadb/data/grastate.dat",
  recoverLog: "/job/run/wsrep-recover.log",
};

describe("the mariadb job's files", () => {
  it("my.cnf: bound to the VM's address, TLS required for TCP, durable commits, then the operator's variables", () => {
    const config = mariadbConfigSchema.parse({ parameters: { max_connections: 200 } });
    const cnf = myCnf({ address: "127.1.1.1", config, paths });
    for (const line of [
      "bind-address = 127.1.1.1",
      "port = 3306",
      "require-secure-transport = ON",
      "ssl-cert = /job/tls/server.crt",
      "ssl-ca = /job/tls/ca.crt",
      "init-file = /job/init.sql",
      "innodb-flush-log-at-trx-commit = 1",
      "max-connections = 200",
    ])
      assert.ok(cnf.split("\n").includes(line), line);
  });

  it("refuses parameters that would undo what the job sets (TLS, addresses, paths, durability)", () => {
    for (const key of [
      "require_secure_transport",
      "ssl_ca",
      "bind_address",
      "init_file",
      "sync_binlog",
      "wsrep_on",
    ]) {
      const r = mariadbConfigSchema.safeParse({ parameters: { [key]: "OFF" } });
      assert.equal(r.success, false, key);
      assert.match(JSON.stringify(r.error?.issues), /set by zonal/);
    }
    assert.equal(mariadbConfigSchema.safeParse({ parameters: { max_connections: 50 } }).success, true);
    assert.equal(
      mariadbConfigSchema.safeParse({ parameters: { x: "a;b" } }).success,
      false,
      "plain values only",
    );
  });

  it("init file: the admin over TLS only, no anonymous account, the database", () => {
    const sql = initSql({ database: "app", adminPassword: "pw-1_x" });
    assert.match(sql, /CREATE USER IF NOT EXISTS 'zonal_admin'@'%' IDENTIFIED BY 'pw-1_x' REQUIRE SSL;/);
    assert.match(sql, /DELETE FROM mysql\.global_priv WHERE User = '';/);
    assert.match(sql, /CREATE DATABASE IF NOT EXISTS `app`;/);
    assert.match(initSql({ database: "app", adminPassword: "it's" }), /IDENTIFIED BY 'it\\'s'/);
  });

  it("my.cnf of a Galera member: TLS between nodes and for SST, read-only until it writes, reads that wait", () => {
    const config = mariadbConfigSchema.parse({ cluster: true });
    const U = "b048715d-4369-11e4-b7ef-af1999a6c989";
    const galera = {
      clusterName: "shop/db",
      nodeName: "m1",
      peers: ["127.1.1.2", "127.1.1.1"],
      bootstrap: false,
      position: { uuid: U, seqno: 42 },
    };
    const lines = myCnf({ address: "127.1.1.2", config, paths, galera, initFile: false }).split("\n");
    for (const line of [
      "wsrep-on = ON",
      "wsrep-cluster-name = shop/db",
      "wsrep-cluster-address = gcomm://127.1.1.2:4567,127.1.1.1:4567",
      "wsrep-node-name = m1",
      `wsrep-start-position = ${U}:42`,
      "wsrep-sst-method = mariabackup",
      "wsrep-sync-wait = 1",
      "read-only = ON",
      "encrypt = 3",
      "ssl-mode = VERIFY_CA",
    ])
      assert.ok(lines.includes(line), line);
    assert.ok(!lines.some((l) => l.startsWith("init-file")), "a joining member runs no init file");
    const options = lines.find((l) => l.startsWith("wsrep-provider-options"))!;
    assert.match(
      options,
      /socket\.ssl_cert=\/job\/tls\/server\.crt;socket\.ssl_key=[^;]+;socket\.ssl_ca=\/job\/tls\/ca\.crt/,
    );
    assert.match(options, /gmcast\.listen_addr=tcp:\/\/127\.1\.1\.2:4567/);
    const boot = myCnf({
      address: "127.1.1.2",
      config,
      paths,
      galera: { ...galera, bootstrap: true },
      initFile: true,
    });
    assert.ok(boot.split("\n").includes("wsrep-cluster-address = gcomm://"), "bootstrap: a new component");
    assert.ok(boot.split("\n").includes("init-file = /job/init.sql"));
  });

  it("refuses server variables Galera or zonal own", () => {
    for (const k of ["wsrep_provider", "binlog_format", "read_only", "innodb_autoinc_lock_mode"])
      assert.equal(mariadbConfigSchema.safeParse({ parameters: { [k]: "x" } }).success, false, k);
  });
});
