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
});
