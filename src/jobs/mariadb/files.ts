/**
 * What the mariadb job writes (pure): my.cnf, and the init file the server runs at
 * every start. TCP connections must use TLS (`require_secure_transport`); the unix
 * socket in the job's directory is for root on the VM.
 */
import { tlsFiles } from "../service-tls.js";
import { ADMIN_USER, type MariadbConfig, type MariadbPaths } from "./config.js";

export function myCnf(o: { address: string; config: MariadbConfig; paths: MariadbPaths }): string {
  const tls = tlsFiles(o.paths.tlsDir);
  const lines = [
    "# written by zonal's mariadb job at every start; edits are lost",
    "[mariadbd]",
    `datadir = ${o.paths.data}`,
    `socket = ${o.paths.socket}`,
    `pid-file = ${o.paths.runDir}/mariadbd.pid`,
    `bind-address = ${o.address}`,
    `port = ${o.config.port}`,
    `init-file = ${o.paths.initFile}`,
    "skip-name-resolve = ON",
    "require-secure-transport = ON",
    `ssl-cert = ${tls.cert}`,
    `ssl-key = ${tls.key}`,
    `ssl-ca = ${tls.ca}`,
    "tls-version = TLSv1.2,TLSv1.3",
    // Durable commits: an acknowledged transaction is on disk.
    "innodb-flush-log-at-trx-commit = 1",
    "sync-binlog = 1",
    ...Object.entries(o.config.parameters).map(([k, v]) => `${k.replace(/_/g, "-")} = ${String(v)}`),
    "",
  ];
  return lines.join("\n");
}

/** SQL quoting for a string literal (passwords are base64url; this is belt and braces). */
const literal = (s: string) => `'${s.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;

export function initSql(o: { database: string; adminPassword: string }): string {
  const admin = `'${ADMIN_USER}'@'%'`;
  return [
    `CREATE USER IF NOT EXISTS ${admin} IDENTIFIED BY ${literal(o.adminPassword)} REQUIRE SSL;`,
    `ALTER USER ${admin} IDENTIFIED BY ${literal(o.adminPassword)} REQUIRE SSL;`,
    `GRANT ALL PRIVILEGES ON *.* TO ${admin} WITH GRANT OPTION;`,
    // No anonymous account, ever (an install with other defaults could have made one).
    "DELETE FROM mysql.global_priv WHERE User = '';",
    "FLUSH PRIVILEGES;",
    `CREATE DATABASE IF NOT EXISTS \`${o.database}\`;`,
    "",
  ].join("\n");
}
