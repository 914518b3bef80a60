/** `zonal up | down | status | control-plane`: run zonal on this machine. */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, openSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Command } from "commander";
import { parse as parseYaml } from "yaml";
import type { Cloud } from "../../cloud/cloud.js";
import { LocalCloudClient } from "../../cloud/local/client.js";
import { loadOpenStackConfig } from "../../cloud/openstack/config.js";
import { OpenStackCloud } from "../../cloud/openstack/driver.js";
import type { AgentTlsOptions } from "../../director/agent-listener.js";
import { DirectorClient } from "../../director/client.js";
import { startControlPlane } from "../../control-plane/server.js";
import { ENDPOINT_FILE, parseListen, type Endpoint } from "../../lib/data-dir.js";
import type { ApiTlsOptions } from "../../director/api-tls.js";
import { errorMessage, InvalidInput, NotFound, Unavailable } from "../../lib/errors.js";
import { isAlive, signalPid } from "../../lib/proc.js";
import { GiveUp, sleep, waitFor } from "../../lib/sleep.js";
import { homeOf } from "../context.js";
import { followTask } from "../follow.js";
import { cloudDataDir, directorDataDir, repoPath } from "../home.js";
import { DEFAULT_HEALTH, type HealthConfig } from "../../health/config.js";
import { parseDuration } from "../../lib/duration.js";
import { positiveInt, print, printJson } from "../output.js";
import { DEFAULT_CLOUD_LISTEN, startCloudInBackground, stopCloud } from "./cloud.js";

/**
 * An address of its own on loopback (not 127.0.0.1, which every other program here
 * uses too): the local cloud tells the control plane's packets apart by it, so
 * `control-plane` can be cut off by a network fault.
 */
export const DEFAULT_DIRECTOR_LISTEN = "127.0.0.2:25555";

interface HealthFlags {
  unresponsiveAfter: string;
  maxJobRestarts: number;
  meltdownShare: string;
}

/** The health monitor's flags, shared by `up` and `control-plane`. */
function withHealthFlags(c: Command): Command {
  return c
    .option("--unresponsive-after <duration>", "no heartbeat for this long: unresponsive", "3s")
    .option(
      "--max-job-restarts <n>",
      "job restarts that make an instance failing",
      positiveInt("--max-job-restarts"),
      5,
    )
    .option("--meltdown-share <fraction>", "share of a deployment down at once that is a meltdown", "0.5");
}

function healthConfig(f: HealthFlags): HealthConfig {
  const share = Number(f.meltdownShare);
  if (!(share > 0 && share <= 1))
    throw new InvalidInput(`--meltdown-share: expected a fraction in (0, 1], got "${f.meltdownShare}"`);
  return {
    ...DEFAULT_HEALTH,
    unresponsiveAfterMs: parseDuration(f.unresponsiveAfter, "--unresponsive-after"),
    maxJobRestarts: f.maxJobRestarts,
    meltdownShare: share,
  };
}

const healthArgs = (f: HealthFlags) => [
  "--unresponsive-after",
  f.unresponsiveAfter,
  "--max-job-restarts",
  String(f.maxJobRestarts),
  "--meltdown-share",
  f.meltdownShare,
];

function readEndpoint(dataDir: string): Endpoint | undefined {
  const path = join(dataDir, ENDPOINT_FILE);
  if (!existsSync(path)) return undefined;
  const ep = JSON.parse(readFileSync(path, "utf8")) as Endpoint;
  return isAlive(ep.pid) ? ep : undefined;
}

export function readYamlFile(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new InvalidInput(`cannot read ${what} ${path}: ${errorMessage(err)}`);
  }
  try {
    return parseYaml(text);
  } catch (err) {
    throw new InvalidInput(`${what} ${path} is not valid YAML: ${errorMessage(err)}`);
  }
}

/** The broker's catalog and plan templates: a file, ZONAL_BROKER_CONFIG, or the example. */
const BROKER_CONFIG_OPTION = [
  "--broker-config <file>",
  "the service broker's catalog and plan templates (or ZONAL_BROKER_CONFIG)",
  process.env.ZONAL_BROKER_CONFIG ?? repoPath("examples", "broker.yml"),
] as const;

export async function startControlPlaneInBackground(
  home: string,
  listen: string,
  extraArgs: string[] = [],
): Promise<Endpoint> {
  const dataDir = directorDataDir(home);
  const running = readEndpoint(dataDir);
  if (running) return running;
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const logPath = join(dataDir, "control-plane.log");
  const out = openSync(logPath, "a");
  const main = fileURLToPath(new URL("../main.js", import.meta.url));
  const child = spawn(
    process.execPath,
    [main, "--home", home, "control-plane", "--listen", listen, ...extraArgs],
    {
      detached: true,
      stdio: ["ignore", out, out],
      env: process.env,
    },
  );
  child.unref();
  try {
    return await waitFor(
      async () => {
        if (child.exitCode !== null) throw new GiveUp(`the control plane exited; see ${logPath}`);
        const ep = readEndpoint(dataDir);
        if (!ep || ep.pid !== child.pid) return undefined;
        await new DirectorClient(ep).info();
        return ep;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: "the control plane to answer" },
    );
  } catch (err) {
    const tail = existsSync(logPath)
      ? readFileSync(logPath, "utf8").trim().split("\n").slice(-5).join("\n")
      : "";
    throw new Unavailable(`${errorMessage(err)}\n${tail}`);
  }
}

/** Uploads the cloud config when the director has none yet. */
export async function ensureCloudConfig(client: DirectorClient, path: string | undefined): Promise<string> {
  if (!path) {
    try {
      await client.cloudConfig();
      return "cloud config: kept the director's";
    } catch (err) {
      if (!(err instanceof NotFound)) throw err;
    }
  }
  const file = path ?? repoPath("examples", "cloud-config.yml");
  await client.setCloudConfig(readYamlFile(file, "cloud config"));
  return `cloud config: ${file}`;
}

async function stopDaemon(dataDir: string, what: string): Promise<string> {
  const ep = readEndpoint(dataDir);
  if (!ep) return `${what}: not running`;
  signalPid(ep.pid, "SIGTERM");
  for (let i = 0; i < 150 && isAlive(ep.pid); i++) await sleep(100);
  if (isAlive(ep.pid)) signalPid(ep.pid, "SIGKILL");
  return `${what} (pid ${ep.pid}) stopped`;
}

export function upCommand(): Command {
  return withHealthFlags(new Command("up"))
    .description("start the local cloud and the control plane (director API) on this machine")
    .option("--detach", "run the control plane in the background and return")
    .option(
      "--cloud-config <file>",
      "cloud config to upload (default: examples/cloud-config.yml when none is set)",
    )
    .option("--cloud-file <file>", "zones and hosts of the local cloud", repoPath("examples", "cloud.yml"))
    .option("--cloud-listen <host:port>", "local cloud API address", DEFAULT_CLOUD_LISTEN)
    .option("--listen <host:port>", "director API address", DEFAULT_DIRECTOR_LISTEN)
    .option(...BROKER_CONFIG_OPTION)
    .action(
      async (
        o: {
          detach?: boolean;
          cloudConfig?: string;
          cloudFile: string;
          cloudListen: string;
          listen: string;
          brokerConfig: string;
        } & HealthFlags,
        cmd: Command,
      ) => {
        const home = homeOf(cmd);
        const health = healthConfig(o);
        const cloudEp = await startCloudInBackground({
          configPath: o.cloudFile,
          dataDir: cloudDataDir(home),
          listen: o.cloudListen,
        });
        print(`local cloud:   ${cloudEp.url} (pid ${cloudEp.pid})`);
        if (o.detach) {
          const ep = await startControlPlaneInBackground(home, o.listen, [
            ...healthArgs(o),
            "--broker-config",
            o.brokerConfig,
          ]);
          print(
            `control plane: ${ep.url} (pid ${ep.pid}; log ${join(directorDataDir(home), "control-plane.log")})`,
          );
          print(await ensureCloudConfig(new DirectorClient(ep), o.cloudConfig));
          print(`API token in ${join(directorDataDir(home), "api-token")}; "zonal down" stops both`);
          return;
        }
        const cloud = new LocalCloudClient(cloudEp);
        await registerWithLocalCloud(cloud, o.listen);
        const cp = await startControlPlane({
          dataDir: directorDataDir(home),
          listen: o.listen,
          cloud,
          cloudName: `local ${cloudEp.url}`,
          health,
          brokerConfig: o.brokerConfig,
          ...(process.env.DATABASE_URL ? { databaseUrl: process.env.DATABASE_URL } : {}),
        });
        print(`control plane: ${cp.endpoint.url} (pid ${cp.endpoint.pid})`);
        print(await ensureCloudConfig(new DirectorClient(cp.endpoint), o.cloudConfig));
        print(
          "running in the foreground; Ctrl-C stops the control plane and the local cloud (VMs keep running)",
        );
        const stop = () =>
          void cp
            .close()
            .then(() => stopCloud(cloudDataDir(home), false))
            .then(() => process.exit(0));
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      },
    );
}

export function controlPlaneCommand(): Command {
  return withHealthFlags(new Command("control-plane"))
    .description(
      "run the control plane in the foreground: on the local cloud (zonal up starts it for you), " +
        "or on OpenStack with --openstack",
    )
    .option("--listen <host:port>", "director API address", DEFAULT_DIRECTOR_LISTEN)
    .option(...BROKER_CONFIG_OPTION)
    .option("--openstack <file>", "run on OpenStack: the driver settings (see src/cloud/openstack/README.md)")
    .option(
      "--agent-listen <host:port>",
      "HTTPS listener for agents' heartbeats (TLS with the control plane's CA); default with --openstack: 0.0.0.0:25556",
    )
    .option(
      "--agent-advertise <host>",
      "the address VMs reach --agent-listen at (needed when it listens on 0.0.0.0)",
    )
    .option(
      "--tls-cert <file>",
      "serve the director API and the broker over HTTPS with this certificate (PEM)",
    )
    .option("--tls-key <file>", "the key of --tls-cert (PEM)")
    .option("--tls-ca <file>", "the CA that signed --tls-cert, for the CLI to trust (when no public CA did)")
    .option(
      "--tls-from-ca",
      "serve HTTPS with a certificate from the control plane's own CA, for --listen's host",
    )
    .option(
      "--secret-key-file <file>",
      "the key that seals secrets in the store (0600; made if missing); also ZONAL_SECRET_KEY_FILE; default: <home>/director/secrets.key",
    )
    .action(
      async (
        o: {
          listen: string;
          brokerConfig: string;
          openstack?: string;
          agentListen?: string;
          agentAdvertise?: string;
          secretKeyFile?: string;
          tlsCert?: string;
          tlsKey?: string;
          tlsCa?: string;
          tlsFromCa?: boolean;
        } & HealthFlags,
        cmd: Command,
      ) => {
        const home = homeOf(cmd);
        const health = healthConfig(o);
        const agentTls = agentTlsOptions(o); // flags first: a bad one changes nothing
        const apiTls = apiTlsOptions(o);
        const { cloud, cloudName } = o.openstack ? openStackCloud(o.openstack) : localCloud(home);
        if (cloud instanceof LocalCloudClient) await registerWithLocalCloud(cloud, o.listen);
        const cp = await startControlPlane({
          dataDir: directorDataDir(home),
          listen: o.listen,
          cloud,
          cloudName,
          health,
          brokerConfig: o.brokerConfig,
          ...(agentTls ? { agentTls } : {}),
          ...(apiTls ? { apiTls } : {}),
          ...(o.secretKeyFile ? { secretKeyFile: o.secretKeyFile } : {}),
          ...(process.env.DATABASE_URL ? { databaseUrl: process.env.DATABASE_URL } : {}),
        });
        print(
          `control plane: ${cp.endpoint.url} on ${cloudName}; agents beat to ${cp.director.ctx.heartbeatUrl}`,
        );
        const stop = () => void cp.close().then(() => process.exit(0));
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      },
    );
}

/**
 * Tells the local cloud this process is the control plane, before it opens a
 * connection: from then on its connections leave from its own address (a network
 * fault can cut it off). Without the cloud's network (not root) nothing changes.
 */
async function registerWithLocalCloud(cloud: LocalCloudClient, listen: string): Promise<void> {
  const { host } = parseListen(listen, "--listen");
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(host)) {
    print(`control plane: not a network fault target (--listen ${host} is not an IPv4 address)`);
    return;
  }
  const r = await cloud.registerControlPlane({ pid: process.pid, address: host });
  if (!r.network) print(`control plane: not a network fault target (${r.reason ?? "no network"})`);
}

function localCloud(home: string): { cloud: Cloud; cloudName: string } {
  const cloudEp = readEndpoint(cloudDataDir(home));
  if (!cloudEp) throw new Unavailable(`no local cloud running for ${home}; start it with "zonal up"`);
  return { cloud: new LocalCloudClient(cloudEp), cloudName: `local ${cloudEp.url}` };
}

function openStackCloud(file: string): { cloud: Cloud; cloudName: string } {
  const config = loadOpenStackConfig(file);
  return {
    cloud: new OpenStackCloud(config),
    cloudName: `openstack ${config.credentials.authUrl} (${config.source})`,
  };
}

/** TLS for agents: always on OpenStack (VMs are off loopback); never on the local cloud. */
function agentTlsOptions(o: {
  openstack?: string;
  agentListen?: string;
  agentAdvertise?: string;
}): AgentTlsOptions | undefined {
  if (!o.openstack) {
    // Local VMs live on loopback, and the local cloud hands its agents no certificates.
    if (o.agentListen || o.agentAdvertise)
      throw new InvalidInput("--agent-listen and --agent-advertise: only with --openstack");
    return undefined;
  }
  const listen = o.agentListen ?? "0.0.0.0:25556";
  const { host } = parseListen(listen, "--agent-listen");
  if ((host === "0.0.0.0" || host === "::") && !o.agentAdvertise)
    throw new InvalidInput(
      `--agent-advertise: expected the address VMs reach the control plane at (--agent-listen is ${listen})`,
    );
  return { listen, ...(o.agentAdvertise ? { advertiseHost: o.agentAdvertise } : {}) };
}

/** HTTPS for the API from the --tls-* flags; InvalidInput names the flag that is wrong. */
export function apiTlsOptions(o: {
  openstack?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  tlsFromCa?: boolean;
}): ApiTlsOptions | undefined {
  const any = o.tlsCert ?? o.tlsKey ?? o.tlsCa ?? o.tlsFromCa;
  if (any === undefined) return undefined;
  if (!o.openstack)
    throw new InvalidInput(
      "--tls-*: only with --openstack (on the local cloud every address is loopback, and its agents get no CA)",
    );
  if (o.tlsFromCa) {
    if (o.tlsCert || o.tlsKey || o.tlsCa)
      throw new InvalidInput("--tls-from-ca: give it alone, or --tls-cert and --tls-key instead");
    return { fromCa: true };
  }
  if (!o.tlsCert) throw new InvalidInput("--tls-cert: expected with --tls-key or --tls-ca");
  if (!o.tlsKey) throw new InvalidInput("--tls-key: expected with --tls-cert");
  return { certFile: o.tlsCert, keyFile: o.tlsKey, ...(o.tlsCa ? { caFile: o.tlsCa } : {}) };
}

export function downCommand(): Command {
  return new Command("down")
    .description("stop the control plane and the local cloud; VMs keep running unless --purge")
    .option("--purge", "delete every deployment, VM and disk first, then all of zonal's data on this machine")
    .action(async (o: { purge?: boolean }, cmd: Command) => {
      const home = homeOf(cmd);
      const dirDir = directorDataDir(home);
      const ep = readEndpoint(dirDir);
      // What the cloud holds before anything is deleted: the deployments' deletion
      // removes most of it, the cloud's purge the rest; the total is reported.
      const cloudEp = o.purge ? readEndpoint(cloudDataDir(home)) : undefined;
      const before = cloudEp
        ? await (async () => {
            const cloud = new LocalCloudClient(cloudEp);
            return { vms: (await cloud.listVms()).length, disks: (await cloud.listDisks()).length };
          })().catch(() => undefined)
        : undefined;
      if (o.purge && ep) {
        const client = new DirectorClient(ep);
        for (const d of await client.deployments()) {
          const task = await client.deleteDeployment(d.name).catch((err: unknown) => {
            print(`deployment ${d.name}: ${errorMessage(err)}`);
            return undefined;
          });
          if (task) {
            const done = await followTask(client, task.id);
            print(`deployment ${d.name}: ${done.state}`);
          }
        }
      }
      print(await stopDaemon(dirDir, "control plane"));
      print(await stopCloud(cloudDataDir(home), Boolean(o.purge)));
      if (before) print(`removed ${before.vms} VMs and ${before.disks} disks in all`);
      if (o.purge) {
        rmSync(dirDir, { recursive: true, force: true });
        print(`removed ${dirDir}`);
      }
    });
}

export function statusCommand(): Command {
  return new Command("status")
    .description("what runs: local cloud, control plane, deployments, instances, tasks")
    .option("--json", "print JSON")
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const home = homeOf(cmd);
      const cloudEp = readEndpoint(cloudDataDir(home));
      const dirEp = readEndpoint(directorDataDir(home));
      const status: Record<string, unknown> = {
        home,
        cloud: cloudEp ? { url: cloudEp.url, pid: cloudEp.pid } : null,
        controlPlane: null,
      };
      if (dirEp) {
        const client = new DirectorClient(dirEp);
        const [info, deployments, instances, tasks] = await Promise.all([
          client.info(),
          client.deployments(),
          client.instances(),
          client.tasks({ limit: 20 }),
        ]);
        const byState: Record<string, number> = {};
        for (const i of instances) byState[i.state] = (byState[i.state] ?? 0) + 1;
        status.controlPlane = { url: dirEp.url, pid: dirEp.pid, ...info };
        status.deployments = deployments.length;
        status.instances = byState;
        status.runningTasks = tasks
          .filter((t) => t.state === "running" || t.state === "queued")
          .map((t) => t.id);
      }
      if (o.json) return printJson(status);
      print(`home:          ${home}`);
      print(`local cloud:   ${cloudEp ? `${cloudEp.url} (pid ${cloudEp.pid})` : "not running"}`);
      if (!dirEp) return print("control plane: not running (zonal up)");
      const cp = status.controlPlane as Record<string, unknown>;
      print(
        `control plane: ${dirEp.url} (pid ${dirEp.pid}, director ${String(cp.directorId)}, store ${String(cp.store)})`,
      );
      print(`deployments:   ${String(status.deployments)}`);
      const states = Object.entries(status.instances as Record<string, number>).map(([s, n]) => `${n} ${s}`);
      print(`instances:     ${states.join(", ") || "none"}`);
      const running = status.runningTasks as number[];
      print(`tasks:         ${running.length > 0 ? `running ${running.join(", ")}` : "none running"}`);
    });
}
