/**
 * `AgentClient`: talks to one VM's agent (used by the CLI and the director). With
 * `ca` it speaks HTTPS and trusts only that CA (the agent's certificate must name its
 * address); a certificate that does not verify fails like a network error (Unavailable).
 */
import { JsonClient } from "../lib/http-client.js";
import type { AddressStatus } from "./addresses.js";
import type { AgentState } from "./agent.js";
import type { JobStatus } from "./job-runner.js";
import type { Spec } from "./spec.js";

export interface AgentInfo {
  vmId: string;
  address: string;
  agentVersion: string;
  pid: number;
  startedAt: string;
}

export class AgentClient {
  private readonly http: JsonClient;

  constructor(o: { address: string; port: number; token: string; timeoutMs?: number; ca?: string }) {
    this.http = new JsonClient({
      baseUrl: `${o.ca === undefined ? "http" : "https"}://${o.address}:${o.port}`,
      token: o.token,
      timeoutMs: o.timeoutMs ?? 10_000,
      ...(o.ca === undefined ? {} : { ca: o.ca }),
    });
  }

  info(): Promise<AgentInfo> {
    return this.http.request("GET", "/v1/info");
  }

  state(): Promise<AgentState> {
    return this.http.request("GET", "/v1/state");
  }

  async spec(): Promise<Spec | null> {
    return (await this.http.request<{ spec: Spec | null }>("GET", "/v1/spec")).spec;
  }

  apply(spec: unknown): Promise<{ restarted: string[]; state: AgentState }> {
    return this.http.request("PUT", "/v1/spec", { body: spec, timeoutMs: 120_000 });
  }

  start(waitMs = 0): Promise<AgentState> {
    return this.http.request("POST", "/v1/start", {
      query: { wait_ms: waitMs },
      timeoutMs: waitMs + 120_000,
      idempotent: true, // starting what runs changes nothing
    });
  }

  stop(opts: { drain?: boolean } = {}): Promise<AgentState> {
    return this.http.request("POST", "/v1/stop", {
      query: { drain: opts.drain === false ? "false" : undefined },
      timeoutMs: 900_000,
      idempotent: true, // stopping what is stopped changes nothing
    });
  }

  async setAddresses(addresses: Array<{ address: string; ports: number[] }>): Promise<AddressStatus[]> {
    return (
      await this.http.request<{ addresses: AddressStatus[] }>("PUT", "/v1/addresses", { body: { addresses } })
    ).addresses;
  }

  /** Hands over to a new agent from the zonal files on the VM now; resolves with the new agent's pid. */
  handOver(): Promise<{ handedOver: true; pid: number; from: number }> {
    return this.http.request("POST", "/v1/handover", { timeoutMs: 120_000 });
  }

  restartJob(name: string): Promise<JobStatus> {
    return this.http.request("POST", `/v1/jobs/${encodeURIComponent(name)}/restart`, { timeoutMs: 900_000 });
  }

  jobStatus(job: string): Promise<Record<string, unknown> & { controller: unknown }> {
    return this.http.request("GET", `/v1/jobs/${encodeURIComponent(job)}/status`);
  }

  async logs(job: string, lines = 200): Promise<string[]> {
    return (
      await this.http.request<{ lines: string[] }>("GET", `/v1/jobs/${encodeURIComponent(job)}/logs`, {
        query: { lines },
      })
    ).lines;
  }
}
