/**
 * `zonal cluster | switchover | binding`: clustered data services and their bindings,
 * whatever the service; `zonal lb | lb-switchover`: load-balancer pairs.
 */
import { Command } from "commander";
import type { BindingView, ClusterView } from "../../director/cluster-service.js";
import type { LbView } from "../../director/lb-service.js";
import { directorClient } from "../context.js";
import { print, printJson, table } from "../output.js";

export function clusterCommands(): Command[] {
  const cluster = new Command("cluster")
    .description(
      "a deployment's clusters: leader, lease token, VIP, and each member's role, timeline, log position (LSN, seqno), lag and (Galera) component size",
    )
    .requiredOption("-d, --deployment <name>", "the deployment")
    .option("--json", "print JSON")
    .action(async (o: { deployment: string; json?: boolean }, cmd: Command) => {
      const views = await directorClient(cmd).http.request<ClusterView[]>(
        "GET",
        `/v1/deployments/${encodeURIComponent(o.deployment)}/cluster`,
      );
      if (o.json) return printJson(views);
      if (views.length === 0) return print(`deployment ${o.deployment} has no clustered group`);
      for (const v of views) {
        const sized = v.members.some((m) => m.size !== null);
        print(
          `${o.deployment}/${v.group}: leader ${v.leader ? `${v.leader.member} (${v.leader.vmId}, lease token ${v.leader.token})` : "none"}, VIP ${v.vip ?? "-"}${v.health ? `; ${v.health.state}: ${v.health.sentence}` : ""}`,
        );
        print(
          table(
            [
              "MEMBER",
              "INSTANCE",
              "ZONE",
              "ADDRESS",
              "ROLE",
              "STREAMS_FROM",
              "TIMELINE",
              "POSITION",
              "LAG",
              ...(sized ? ["SIZE"] : []),
              "DECISION",
            ],
            v.members.map((m) => [
              m.member,
              m.key,
              m.zone,
              m.address ?? undefined,
              m.role,
              m.streamsFrom ?? undefined,
              m.timeline ?? undefined,
              m.position ?? undefined,
              m.lag ?? undefined,
              ...(sized ? [m.size ?? undefined] : []),
              m.decision ?? undefined,
            ]),
          ),
        );
      }
    });

  const switchover = new Command("switchover")
    .description(
      "planned switchover: the leader stops writes and hands over to a replica (default: the least lagging)",
    )
    .requiredOption("-d, --deployment <name>", "the deployment")
    .option("-g, --group <name>", "the clustered group (needed when the deployment has several)")
    .option("--to <member>", "the member to lead next, e.g. m1")
    .option("--json", "print JSON")
    .action(async (o: { deployment: string; group?: string; to?: string; json?: boolean }, cmd: Command) => {
      const r = await directorClient(cmd).http.request<{
        group: string;
        from: string;
        to: string;
        tookMs: number;
      }>("POST", `/v1/deployments/${encodeURIComponent(o.deployment)}/switchover`, {
        body: { ...(o.to ? { to: o.to } : {}), ...(o.group ? { group: o.group } : {}) },
        timeoutMs: 120_000,
      });
      if (o.json) return printJson(r);
      print(`${r.group}: switched over from ${r.from} to ${r.to} in ${r.tookMs} ms`);
    });

  const bootstrap = new Command("cluster-bootstrap")
    .description(
      "force a cluster that cannot choose by itself (a member's position unknown, histories that differ) to bootstrap from one member; writes only the others had are lost",
    )
    .requiredOption("-d, --deployment <name>", "the deployment")
    .requiredOption("-g, --group <name>", "the clustered group")
    .requiredOption("--member <member>", "the member to bootstrap from, e.g. m1")
    .option("--yes", "I read the warning: go ahead")
    .option("--json", "print JSON")
    .action(
      async (
        o: { deployment: string; group: string; member: string; yes?: boolean; json?: boolean },
        cmd: Command,
      ) => {
        if (!o.yes) {
          cmd.error(
            `a forced bootstrap starts ${o.group} again from ${o.member}'s data alone: writes only the other members committed are lost. Look at \`zonal cluster -d ${o.deployment}\` (POSITION) first; run again with --yes to go ahead.`,
            { exitCode: 2 },
          );
        }
        const r = await directorClient(cmd).http.request<{
          group: string;
          member: string;
          warning: string;
          tookMs: number;
        }>(
          "POST",
          `/v1/deployments/${encodeURIComponent(o.deployment)}/clusters/${encodeURIComponent(o.group)}/bootstrap`,
          { body: { member: o.member, confirm: true }, timeoutMs: 330_000 },
        );
        if (o.json) return printJson(r);
        print(`${r.group}: ${r.member} bootstrapped the cluster in ${r.tookMs} ms (${r.warning})`);
      },
    );

  const role = new Command("binding")
    .alias("db-role")
    .description(
      "users of a deployment's data service for applications (what the broker makes for each binding)",
    );
  role
    .command("create")
    .requiredOption("-d, --deployment <name>", "the deployment")
    .option("-g, --group <name>", "the group (needed when several run a service with bindings)")
    .option("--json", "print JSON (includes the password and the credentials)")
    .description("create a user with its own password and rights on the service's database")
    .action(async (o: { deployment: string; group?: string; json?: boolean }, cmd: Command) => {
      const r = await directorClient(cmd).http.request<BindingView>(
        "POST",
        `/v1/deployments/${encodeURIComponent(o.deployment)}/bindings`,
        { body: o.group ? { group: o.group } : {} },
      );
      if (o.json) return printJson(r);
      const c = r.credentials;
      print(
        `user ${r.username} of ${r.group} on ${String(c.host)}:${String(c.port)}${c.database ? `/${String(c.database)}` : ""} (password and credentials with --json only)`,
      );
    });
  role
    .command("drop <username>")
    .requiredOption("-d, --deployment <name>", "the deployment")
    .option("-g, --group <name>", "the group (needed when several run a service with bindings)")
    .description("drop a user: what it owns is handed over, its connections end")
    .action(async (username: string, o: { deployment: string; group?: string }, cmd: Command) => {
      const q = o.group ? `?group=${encodeURIComponent(o.group)}` : "";
      await directorClient(cmd).http.request(
        "DELETE",
        `/v1/deployments/${encodeURIComponent(o.deployment)}/bindings/${encodeURIComponent(username)}${q}`,
      );
      print(`user ${username} dropped`);
    });
  return [cluster, switchover, bootstrap, role];
}

/** `zonal lb` and `zonal lb-switchover`: load-balancer pairs. */
export function lbCommands(): Command[] {
  const lb = new Command("lb")
    .description(
      "a deployment's load-balancer pairs: VIP, active and standby, config version and backends per node",
    )
    .requiredOption("-d, --deployment <name>", "the deployment")
    .option("--json", "print JSON")
    .action(async (o: { deployment: string; json?: boolean }, cmd: Command) => {
      const views = await directorClient(cmd).http.request<LbView[]>(
        "GET",
        `/v1/deployments/${encodeURIComponent(o.deployment)}/lb`,
      );
      if (o.json) return printJson(views);
      if (views.length === 0) return print(`deployment ${o.deployment} has no load-balancer group`);
      for (const v of views) {
        print(
          `${o.deployment}/${v.group}: VIP ${v.vip ?? "-"}, active ${v.holder ? `${v.holder.member} (lease token ${v.holder.token})` : "none"}${v.health ? `; ${v.health.state}: ${v.health.sentence}` : ""}`,
        );
        print(
          table(
            ["NODE", "INSTANCE", "ZONE", "ADDRESS", "ROLE", "CONFIG", "BACKENDS UP", "DECISION"],
            v.nodes.map((n) => [
              n.member,
              n.key,
              n.zone,
              n.address ?? undefined,
              n.role,
              n.configVersion ?? undefined,
              n.backends
                ? `${n.backends.filter((b) => b.status.startsWith("UP")).length}/${n.backends.length}`
                : undefined,
              n.decision,
            ]),
          ),
        );
        const first = v.nodes.find((n) => n.backends && n.backends.length > 0);
        if (first?.backends)
          print(
            table(
              ["BACKEND", "SERVER", "STATUS"],
              first.backends.map((b) => [b.backend, b.server, b.status]),
            ),
          );
      }
    });

  const switchover = new Command("lb-switchover")
    .description("move a pair's VIP to the standby (the only way it goes back to a node that failed before)")
    .requiredOption("-d, --deployment <name>", "the deployment")
    .option("--to <member>", "the node to serve next, e.g. m0")
    .option("--json", "print JSON")
    .action(async (o: { deployment: string; to?: string; json?: boolean }, cmd: Command) => {
      const r = await directorClient(cmd).http.request<{ from: string; to: string; tookMs: number }>(
        "POST",
        `/v1/deployments/${encodeURIComponent(o.deployment)}/lb/switchover`,
        { body: o.to ? { to: o.to } : {}, timeoutMs: 60_000 },
      );
      if (o.json) return printJson(r);
      print(`the VIP moved from ${r.from} to ${r.to} in ${r.tookMs} ms`);
    });
  return [lb, switchover];
}
