/** The files postgres runs with, rendered from the config and the member's role. Pure. */
import type { PgPaths, PostgresConfig } from "./config.js";
import { REPLICATION_USER, tlsFiles } from "./config.js";

/** What the cluster manager decided this member is; the job's `prepare` acts on it. */
export type RoleFile =
  | { role: "primary"; bootstrap: boolean; syncNames: string[] }
  | { role: "replica"; leader: { member: string; address: string; port: number } | null; rewind: boolean };

const q = (v: string | number | boolean) =>
  typeof v === "string" ? `'${v.replace(/'/g, "''")}'` : String(v);

/**
 * The settings every member runs with, whatever its address or role: replication,
 * how soon a cut-off link counts as dead, memory. bench/failover gives Patroni's
 * members the same ones, so the two are compared on equal terms.
 */
export const SHARED_PARAMETERS: Readonly<Record<string, string | number | boolean>> = {
  wal_level: "replica",
  max_wal_senders: 10,
  max_replication_slots: 10,
  hot_standby: true,
  hot_standby_feedback: true,
  // A replica whose upstream died tries the new leader soon (the default waits 5 s).
  wal_retrieve_retry_interval: "250ms",
  // A replica reports to its primary every second even when no WAL flows: the
  // leader tells a replica that is cut off (its reports stop) from an idle one.
  wal_receiver_status_interval: "1s",
  // A replication connection silent this long is dead (a partition): the primary's
  // walsender and the replica's receiver give up on it instead of waiting a minute.
  wal_sender_timeout: "5s",
  wal_receiver_timeout: "5s",
  wal_log_hints: true,
  wal_keep_size: "64MB",
  shared_buffers: "32MB",
  max_connections: 50,
  synchronous_commit: "on",
};

export function postgresqlConf(o: {
  address: string;
  config: PostgresConfig;
  paths: PgPaths;
  member: string;
}): string {
  const tls = tlsFiles(o.paths);
  const settings: Record<string, string | number | boolean> = {
    listen_addresses: o.address,
    port: o.config.port,
    unix_socket_directories: o.paths.socketDir,
    hba_file: o.paths.hba,
    ssl: true,
    ssl_cert_file: tls.cert,
    ssl_key_file: tls.key,
    ssl_min_protocol_version: "TLSv1.2",
    ...SHARED_PARAMETERS,
    cluster_name: o.member,
    "zonal.member": o.member,
    log_line_prefix: "%m [%p] ",
    ...o.config.parameters,
  };
  const lines = Object.entries(settings).map(([k, v]) => `${k} = ${q(v)}`);
  return `# written by zonal; changes are overwritten\n${lines.join("\n")}\ninclude_if_exists = ${q(o.paths.roleConf)}\n`;
}

/**
 * Who may connect how: the postgres user over the socket; from the machine itself
 * (127.0.0.1) with a password; from any other address (another VM — on the local
 * cloud, another 127.x address) only over TLS with a password. A plain-text
 * connection from off the machine matches no line and is refused.
 */
export function pgHbaConf(): string {
  return [
    "# written by zonal",
    "local    all          postgres                  peer",
    `host     replication  ${REPLICATION_USER}  127.0.0.1/32  scram-sha-256`,
    "host     all          all          127.0.0.1/32  scram-sha-256",
    `hostssl  replication  ${REPLICATION_USER}  0.0.0.0/0     scram-sha-256`,
    "hostssl  all          all          0.0.0.0/0     scram-sha-256",
    "",
  ].join("\n");
}

/** `ANY 1 ("m1", "m2")`: a commit waits for any one of the other members. */
export function syncStandbyNames(names: string[]): string {
  return names.length === 0 ? "" : `ANY 1 (${names.map((n) => `"${n}"`).join(", ")})`;
}

export function roleConf(
  role: RoleFile,
  o: { member: string; replicationPassword: string; caFile: string },
): string {
  if (role.role === "primary") {
    return `synchronous_standby_names = ${q(role.bootstrap ? "" : syncStandbyNames(role.syncNames))}\n`;
  }
  if (!role.leader) return "# a replica without a leader yet: read-only, waiting\n";
  const conninfo =
    `host=${role.leader.address} port=${role.leader.port} user=${REPLICATION_USER} ` +
    `password=${o.replicationPassword} application_name=${o.member} ` +
    `sslmode=verify-full sslrootcert=${o.caFile}`;
  return [
    `primary_conninfo = ${q(conninfo)}`,
    `primary_slot_name = ${q(o.member)}`,
    "recovery_target_timeline = 'latest'",
    "",
  ].join("\n");
}

/** Parses "16/B374D848" into a comparable number of bytes. */
export function parseLsn(lsn: string | null | undefined): bigint | null {
  if (!lsn) return null;
  const [hi, lo] = lsn.split("/");
  if (hi === undefined || lo === undefined) return null;
  return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
}
