/** `DirectorClient`: the director's API for the CLI (and tests). */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ENDPOINT_FILE, type Endpoint } from "../lib/data-dir.js";
import { Unavailable } from "../lib/errors.js";
import { JsonClient } from "../lib/http-client.js";
import type { EventRecord, TaskRecord } from "../wire/tasks.js";
import type { CloudConfig } from "../manifest/cloud-config.js";
import type { InstanceView, VersionsView } from "./director.js";
import type { DrainView } from "./maintenance.js";
import type { MaintenanceRecord } from "../wire/maintenance.js";

export interface DeploymentSummary {
  name: string;
  groups: Array<{ name: string; instances: number; zones: string[]; strategy: string }>;
  instances: number;
  running: number;
  updatedAt: string;
}

export class DirectorClient {
  readonly http: JsonClient;

  constructor(readonly endpoint: Pick<Endpoint, "url" | "token" | "ca">) {
    this.http = new JsonClient({
      baseUrl: endpoint.url,
      token: endpoint.token,
      timeoutMs: 60_000,
      ...(endpoint.ca ? { ca: endpoint.ca } : {}),
    });
  }

  static fromDataDir(dataDir: string): DirectorClient {
    const path = join(dataDir, ENDPOINT_FILE);
    try {
      return new DirectorClient(JSON.parse(readFileSync(path, "utf8")) as Endpoint);
    } catch {
      throw new Unavailable(
        `no control plane running for ${dataDir} (${path} not found); start it with "zonal up"`,
      );
    }
  }

  info(): Promise<Record<string, unknown>> {
    return this.http.request("GET", "/v1/info");
  }
  cloudConfig(): Promise<CloudConfig> {
    return this.http.request("GET", "/v1/cloud-config");
  }
  setCloudConfig(cloudConfig: unknown): Promise<CloudConfig> {
    return this.http.request("PUT", "/v1/cloud-config", { body: { cloudConfig } });
  }
  deploy(manifest: unknown): Promise<TaskRecord> {
    return this.http.request("POST", "/v1/deployments", { body: { manifest } });
  }
  deployments(): Promise<DeploymentSummary[]> {
    return this.http.request("GET", "/v1/deployments");
  }
  manifest(name: string): Promise<unknown> {
    return this.http.request("GET", `/v1/deployments/${encodeURIComponent(name)}`);
  }
  deleteDeployment(name: string): Promise<TaskRecord> {
    return this.http.request("DELETE", `/v1/deployments/${encodeURIComponent(name)}`);
  }
  action(
    action: "recreate" | "stop" | "start" | "upgrade-agents",
    deployment: string,
    target?: string,
  ): Promise<TaskRecord> {
    return this.http.request("POST", `/v1/deployments/${encodeURIComponent(deployment)}/${action}`, {
      body: target ? { target } : {},
    });
  }
  versions(): Promise<VersionsView> {
    return this.http.request("GET", "/v1/versions");
  }
  drain(kind: "host" | "zone", target: string, reason?: string): Promise<DrainView> {
    return this.http.request("POST", "/v1/maintenance", {
      body: { kind, target, ...(reason ? { reason } : {}) },
    });
  }
  undrain(
    kind: "host" | "zone",
    target: string,
  ): Promise<{ maintenance: MaintenanceRecord; cloud: string | null }> {
    return this.http.request("DELETE", `/v1/maintenance/${kind}/${encodeURIComponent(target)}`);
  }
  maintenance(): Promise<Array<MaintenanceRecord & { instances: string[] }>> {
    return this.http.request("GET", "/v1/maintenance");
  }
  instances(deployment?: string): Promise<InstanceView[]> {
    return this.http.request("GET", "/v1/instances", { query: { deployment } });
  }
  logs(
    deployment: string,
    instance: string,
    job?: string,
    lines = 100,
  ): Promise<Array<{ job: string; lines: string[] }>> {
    return this.http.request("GET", `/v1/deployments/${encodeURIComponent(deployment)}/logs`, {
      query: { instance, job, lines },
    });
  }
  tasks(o: { deployment?: string; limit?: number } = {}): Promise<TaskRecord[]> {
    return this.http.request("GET", "/v1/tasks", { query: o });
  }
  task(id: number): Promise<TaskRecord> {
    return this.http.request("GET", `/v1/tasks/${id}`);
  }
  taskEvents(id: number, after = 0): Promise<EventRecord[]> {
    return this.http.request("GET", `/v1/tasks/${id}/events`, { query: { after } });
  }
  events(o: { deployment?: string; task?: number; limit?: number } = {}): Promise<EventRecord[]> {
    return this.http.request("GET", "/v1/events", { query: o });
  }
}
