/**
 * The control plane process (`zonal control-plane`): the director API over a
 * store and a cloud. Its data dir is `<home>/director`:
 *   director.db      the SQLite store (unless DATABASE_URL points at PostgreSQL)
 *   api-token        the API's bearer token (0600); the CLI reads it
 *   endpoint.json    where it listens, with the token (0600)
 *   daemon.pid       one control plane per data dir
 *   secrets.key      the key that seals secrets in the store (agent tokens, database
 *                    and binding passwords; 0600), unless --secret-key-file or
 *                    ZONAL_SECRET_KEY_FILE puts it elsewhere
 *   agent-ca/        with agent TLS: the CA that signs the director's and agents'
 *                    certificates (ca.key, ca.pem; see agent-ca.ts)
 */
import { ZONAL_VERSION } from "../lib/version.js";
import { mkdirSync, rmSync } from "node:fs";
import { isIP } from "node:net";
import { join, resolve } from "node:path";
import type { Cloud } from "../cloud/cloud.js";
import {
  claimDataDir,
  ENDPOINT_FILE,
  parseListen,
  readOrCreateToken,
  type Endpoint,
} from "../lib/data-dir.js";
import { errorMessage, InvalidInput, Unavailable } from "../lib/errors.js";
import { writeFileAtomic } from "../lib/files.js";
import { SecretBox } from "../lib/secret-box.js";
import { createLogger, type Logger } from "../lib/log.js";
import { DEFAULT_HEALTH, type HealthConfig } from "../health/config.js";
import { Store } from "../store/store.js";
import { loadCatalog } from "../broker/catalog.js";
import { startBroker, type ControlPlaneBroker } from "../broker/control-plane.js";
import { buildControlPlaneApi } from "./api.js";
import { controlPlaneAudit } from "./audit.js";
import { AgentCa } from "../director/agent-ca.js";
import { AGENT_CA_DIR, startAgentListener, type AgentTlsOptions } from "../director/agent-listener.js";
import { memoUntilFailure } from "../lib/memo.js";
import { apiTlsMaterial, type ApiTlsOptions } from "../director/api-tls.js";
import { Director } from "../director/director.js";

export interface ControlPlaneOptions {
  dataDir: string;
  listen: string;
  cloud: Cloud;
  cloudName: string;
  databaseUrl?: string;
  /** The key that seals secrets at rest (default: ZONAL_SECRET_KEY_FILE, else `<dataDir>/secrets.key`). */
  secretKeyFile?: string;
  /** The health monitor's settings (default DEFAULT_HEALTH); `false` turns it off. */
  health?: HealthConfig | false;
  /** The service broker's config file (catalog, plans and their templates). */
  brokerConfig: string;
  /** Where its log lines go (default: JSON lines on stdout, level ZONAL_LOG_LEVEL or info). */
  log?: Logger;
  /**
   * TLS between the director and agents (VMs off loopback): heartbeats arrive over
   * HTTPS on this second listener, agents serve HTTPS, and both sides trust only the
   * control plane's agent CA. Unset: plain HTTP, heartbeats to the API's listener.
   */
  agentTls?: AgentTlsOptions;
  /**
   * HTTPS for the director API and the broker. Needs `agentTls`: VMs reach the
   * control plane only over TLS then, trusting its CA.
   */
  apiTls?: ApiTlsOptions;
}

export interface RunningControlPlane {
  endpoint: Endpoint;
  director: Director;
  close(): Promise<void>;
}

export async function startControlPlane(o: ControlPlaneOptions): Promise<RunningControlPlane> {
  if (o.apiTls && !o.agentTls)
    throw new InvalidInput(
      "--tls-*: HTTPS for the API needs agent TLS too (--openstack): VMs would call the API without its CA",
    );
  const { host, port } = parseListen(o.listen);
  const dataDir = resolve(o.dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  claimDataDir(dataDir, "control plane");
  const catalog = loadCatalog(o.brokerConfig); // a bad broker config stops the start, before anything runs
  const tls = o.apiTls ? await apiTlsMaterial(o.apiTls, dataDir, host) : undefined;
  const log = o.log ?? createLogger("director");
  const box = SecretBox.load({ dataDir, ...(o.secretKeyFile ? { keyFile: o.secretKeyFile } : {}) });
  const store = await Store.open({ dataDir, box, ...(o.databaseUrl ? { databaseUrl: o.databaseUrl } : {}) });
  const token = readOrCreateToken(dataDir, "api-token");
  // The port must be known before the director starts (agents' heartbeat URL), so bind first.
  const ready: { director?: Director; broker?: ControlPlaneBroker; brokerError?: string } = {};
  const startedAt = Date.now();
  const directorNow = () => {
    if (!ready.director) throw new Unavailable("the director is still starting");
    return ready.director;
  };
  const app = buildControlPlaneApi(
    directorNow,
    token,
    () => ({
      version: ZONAL_VERSION,
      cloud: o.cloudName,
      store: `${store.dialect} ${store.location}`,
      uptimeMs: Date.now() - startedAt,
    }),
    () => {
      if (ready.brokerError) throw new Unavailable(`the service broker is not running: ${ready.brokerError}`);
      if (!ready.broker) throw new Unavailable("the service broker is still starting");
      return ready.broker;
    },
    { log, ...(tls ? { https: { cert: tls.cert, key: tls.key } } : {}) },
  );
  await app.listen({ host, port });
  const addr = app.server.address();
  const actualPort = typeof addr === "object" && addr ? addr.port : port;
  const url = `${tls ? "https" : "http"}://${isIP(host) === 6 ? `[${host}]` : host}:${actualPort}`;
  const agentListener = o.agentTls
    ? await startAgentListener({
        dataDir,
        tls: o.agentTls,
        director: directorNow,
        audit: { log, options: controlPlaneAudit(token, directorNow) },
      }).catch(async (err: unknown) => {
        await app.close();
        await store.close();
        throw err;
      })
    : undefined;
  const health = o.health === false ? undefined : (o.health ?? DEFAULT_HEALTH);
  const director = await Director.start({
    store,
    cloud: o.cloud,
    heartbeatUrl: agentListener?.heartbeatUrl ?? `${url}/v1/heartbeats`,
    controlPlaneUrl: agentListener?.url ?? url,
    ...(agentListener ? { agentTls: agentListener.issuer } : {}),
    log,
    apiToken: token,
    serviceCa: memoUntilFailure(() => AgentCa.openOrCreate(join(dataDir, AGENT_CA_DIR))),
    ...(health ? { health } : {}),
  });
  ready.director = director;
  // A broker that cannot start (its sealed secrets do not open with this data dir's key)
  // answers 503 with the reason; the director and the platform's running services go on.
  ready.broker = await startBroker({ catalog, director, log }).catch((err: unknown) => {
    ready.brokerError = errorMessage(err);
    log.error({ err: ready.brokerError }, "the service broker could not start");
    return undefined;
  });
  const endpoint: Endpoint = { url, token, pid: process.pid, ...(tls?.ca ? { ca: tls.ca } : {}) };
  writeFileAtomic(join(dataDir, ENDPOINT_FILE), JSON.stringify(endpoint) + "\n", 0o600);
  log.info(
    { url, heartbeatUrl: director.ctx.heartbeatUrl, store: store.location, directorId: director.id },
    "control plane listening",
  );
  return {
    endpoint,
    director,
    async close() {
      await ready.broker?.broker.stop();
      await director.stop();
      await agentListener?.close();
      await app.close();
      await store.close();
      rmSync(join(dataDir, ENDPOINT_FILE), { force: true });
      rmSync(join(dataDir, "daemon.pid"), { force: true });
    },
  };
}
