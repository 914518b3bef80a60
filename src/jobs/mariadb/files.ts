/**
 * What the mariadb job writes (pure): my.cnf, and the init file the server runs at
 * every start. TCP connections must use TLS (`require_secure_transport`); the unix
 * socket in the job's directory is for root on the VM.
 */
import { tlsFiles, type TlsFiles } from "../service-tls.js";
import {
  ADMIN_USER,
  GALERA_PORTS,
  GALERA_PROVIDER,
  type MariadbConfig,
  type MariadbPaths,
} from "./config.js";
import type { Position } from "./galera.js";

/** How a Galera member starts (its cluster manager decided: galera.ts). */
export interface GaleraStart {
  /** The cluster's name: its lease key (`<deployment>/<group>`). */
  clusterName: string;
  /** This member's name (m0, m1, …). */
  nodeName: string;
  /** Every member's address known (this one's too): where to find the Primary component. */
  peers: string[];
  /** Start a new Primary component from this node's data (`gcomm://`), or join one. */
  bootstrap: boolean;
  /** Where this node's data ends, when known (--wsrep-recover after an unclean stop): IST from there. */
  position: Position | null;
}

/**
 * Galera's failure detection, tighter than its defaults (a peer suspected after 5 s):
 * a silent node stalls every commit until the others evict it, so this is the floor
 * of a failover's write gap (measured on this machine: about 2.5 s from a frozen node
 * to commits flowing again; the writer's lease moves in parallel, in about 1.6 s).
 * Not tighter: a node busy for a moment must not be evicted (the full-CPU case of
 * test/cluster/mariadb.test.ts). The install timeout must stay below the inactive one.
 * Evicting a fenced writer at once (`evs.evict`) was tried and dropped: the two others
 * went non-Primary for about a second when Galera's own timeout fired afterwards.
 *
 * A node joining (a rolling restart, a rebuilt VM) pauses every commit while the new
 * view is installed. With a 1.2 s install timeout and join messages resent every
 * second (the default), that pause was 1.2–1.5 s each time a node came back (bench
 * `upgrade --trace`): an install that missed one round waited the whole timeout. Join
 * messages every 200 ms and a 0.6 s install timeout bring it to about 0.3–0.4 s; the
 * failure detection above is unchanged (the full-CPU and fault cases still pass).
 */
const EVS = [
  "evs.keepalive_period=PT0.4S",
  "evs.inactive_check_period=PT0.4S",
  "evs.suspect_timeout=PT1.2S",
  "evs.inactive_timeout=PT2.4S",
  "evs.install_timeout=PT0.6S",
  "evs.join_retrans_period=PT0.2S",
];

/** my.cnf lines of a Galera member: replication over TLS, SST by mariabackup over TLS. */
function galeraLines(address: string, g: GaleraStart, tls: TlsFiles): string[] {
  const provider = [
    `gmcast.listen_addr=tcp://${address}:${GALERA_PORTS.gcomm}`,
    `ist.recv_addr=${address}:${GALERA_PORTS.ist}`,
    `socket.ssl_cert=${tls.cert}`,
    `socket.ssl_key=${tls.key}`,
    `socket.ssl_ca=${tls.ca}`,
    "gcache.recover=yes",
    ...EVS,
  ];
  return [
    // Galera's requirements.
    "binlog-format = ROW",
    "default-storage-engine = InnoDB",
    "innodb-autoinc-lock-mode = 2",
    "wsrep-on = ON",
    `wsrep-provider = ${GALERA_PROVIDER}`,
    `wsrep-cluster-name = ${g.clusterName}`,
    `wsrep-cluster-address = gcomm://${g.bootstrap ? "" : g.peers.map((p) => `${p}:${GALERA_PORTS.gcomm}`).join(",")}`,
    `wsrep-node-address = ${address}`,
    `wsrep-node-name = ${g.nodeName}`,
    ...(g.position ? [`wsrep-start-position = ${g.position.uuid}:${g.position.seqno}`] : []),
    `wsrep-provider-options = "${provider.join(";")}"`,
    // Full state transfer: a mariabackup stream from a donor; its SST script logs in
    // as the OS user mysql through the socket (unix_socket authentication).
    "wsrep-sst-method = mariabackup",
    "wsrep-sst-auth = mysql:",
    `wsrep-sst-receive-address = ${address}:${GALERA_PORTS.sst}`,
    // A read waits until the node applied every write the cluster committed before it.
    "wsrep-sync-wait = 1",
    // Writes go to one node at a time: the writer (leader lease holder) turns this off.
    "read-only = ON",
    "",
    "[sst]",
    // socat with TLS; the peer's certificate must chain to the control plane's CA.
    "encrypt = 3",
    "ssl-mode = VERIFY_CA",
    `tkey = ${tls.key}`,
    `tcert = ${tls.cert}`,
    `tca = ${tls.ca}`,
  ];
}

export function myCnf(o: {
  address: string;
  config: MariadbConfig;
  paths: MariadbPaths;
  /** A Galera member's start; absent for a single server. */
  galera?: GaleraStart;
  /** Run the init file at this start (a single server always; a cluster member when it bootstraps). */
  initFile?: boolean;
}): string {
  const tls = tlsFiles(o.paths.tlsDir);
  const lines = [
    "# written by zonal's mariadb job at every start; edits are lost",
    "[mariadbd]",
    `datadir = ${o.paths.data}`,
    `socket = ${o.paths.socket}`,
    `pid-file = ${o.paths.runDir}/mariadbd.pid`,
    `bind-address = ${o.address}`,
    `port = ${o.config.port}`,
    ...(o.initFile === false ? [] : [`init-file = ${o.paths.initFile}`]),
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
    ...(o.galera ? galeraLines(o.address, o.galera, tls) : []),
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
