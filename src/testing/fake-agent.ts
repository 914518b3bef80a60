/**
 * A hand-written fake of the agent, for the in-process tests of the orchestration
 * core: the agent's HTTP API (the routes the director calls, behind the VM's bearer
 * token, with the real spec validation) on the VM's address, and heartbeats to the
 * control plane. Jobs are not run: "started" means every job of the spec reports
 * running and healthy. A VM the cloud stops, crashes or loses answers nothing: its
 * agent holds every request without an answer and sends no heartbeat (as a dead VM
 * would look from outside, not a refusal); deleted, its listener closes.
 *
 * Plugs into MemoryCloud as its `agents` hook.
 */
import type { FastifyInstance } from "fastify";
import type { AddressStatus } from "../agent/addresses.js";
import { heartbeatSchema, type Heartbeat } from "../agent/heartbeat.js";
import { parseSpec, type Spec } from "../agent/spec.js";
import type { AgentSettings, Vm } from "../cloud/cloud.js";
import type { MemoryAgents } from "../cloud/memory/memory-cloud.js";
import { Conflict, NotFound } from "../lib/errors.js";
import { parseWith } from "../lib/validate.js";
import { z } from "zod";

const addressesSchema = z
  .object({
    addresses: z.array(
      z.object({ address: z.string().min(7), ports: z.array(z.number().int().min(1).max(65535)) }).strict(),
    ),
  })
  .strict();
import { createApi } from "../lib/http-server.js";
import "../jobs/registry.js"; // every job type loaded: specs are checked against them

class FakeAgent {
  spec: Spec | undefined;
  started = false;
  silent = false;
  addresses: AddressStatus[] = [];
  startedAt = new Date().toISOString();
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  readonly app: FastifyInstance;

  constructor(
    readonly vm: Vm,
    token: string,
    /** The disks the cloud has attached to a VM now. */
    private readonly disks: (vmId: string) => Promise<string[]>,
    /** What a start waits for first, when a test holds starts (`FakeAgents.holdStarts`). */
    private readonly startGate: () => Promise<void> | undefined = () => undefined,
  ) {
    this.app = createApi({ token, open: ["/v1/health"] });
    // A dead VM answers nothing: the request waits until its client gives up.
    this.app.addHook("onRequest", () =>
      this.silent ? new Promise<void>(() => undefined) : Promise.resolve(),
    );
    this.routes();
  }

  private routes(): void {
    const app = this.app;
    app.get("/v1/health", async () => ({ ok: true }));
    app.get("/v1/info", async () => ({
      vmId: this.vm.id,
      address: this.vm.address,
      agentVersion: "fake",
      pid: process.pid,
      startedAt: this.startedAt,
    }));
    app.get("/v1/state", async () => this.state());
    app.get("/v1/spec", async () => ({ spec: this.spec ?? null }));
    app.put("/v1/spec", async (req) => {
      const spec = parseSpec(req.body);
      // As the real agent: a spec's persistent disk must be attached to this VM.
      const disk = spec.persistent_disk?.id;
      if (disk && !(await this.disks(this.vm.id)).includes(disk))
        throw new Conflict(`persistent disk ${disk} is not attached to ${this.vm.id}`);
      const restarted =
        this.started && this.spec?.version !== spec.version ? spec.jobs.map((j) => j.name) : [];
      this.spec = spec;
      return { restarted, state: this.state() };
    });
    app.post("/v1/start", async () => {
      await this.startGate();
      this.started = true;
      return this.state();
    });
    app.post("/v1/stop", async () => {
      this.started = false;
      return this.state();
    });
    app.put("/v1/addresses", async (req) => {
      const body = parseWith(addressesSchema, req.body, "addresses");
      this.addresses = body.addresses.flatMap((a) =>
        a.ports.map((port) => ({ address: a.address, port, state: "bound" as const })),
      );
      return { addresses: this.addresses };
    });
    app.get<{ Params: { name: string } }>("/v1/jobs/:name/status", async (req) => {
      const job = this.jobs().find((j) => j.name === req.params.name);
      if (!job) throw new NotFound(`no job ${req.params.name} on this VM`);
      return { ...job, controller: null };
    });
    app.get<{ Params: { name: string } }>("/v1/jobs/:name/logs", async (req) => {
      if (!this.jobs().some((j) => j.name === req.params.name))
        throw new NotFound(`no job ${req.params.name} on this VM`);
      return { job: req.params.name, lines: [] };
    });
  }

  private jobs() {
    const since = this.startedAt;
    return (this.spec?.jobs ?? []).map((j) => ({
      name: j.name,
      type: j.type,
      state: this.started ? ("running" as const) : ("stopped" as const),
      restarts: 0,
      healthy: this.started,
      since,
    }));
  }

  state() {
    const jobs = this.jobs();
    const empty = { usedBytes: 0, freeBytes: 1 << 30, totalBytes: 1 << 30 };
    return {
      vmId: this.vm.id,
      address: this.vm.address,
      addresses: this.addresses,
      specVersion: this.spec?.version ?? null,
      instance: this.spec?.instance ?? null,
      jobsState:
        jobs.length === 0 ? ("none" as const) : this.started ? ("running" as const) : ("stopped" as const),
      jobs,
      disk: { persistent: null, ephemeral: empty },
      load: [0, 0, 0],
    };
  }

  heartbeat(): Heartbeat {
    const s = this.state();
    return heartbeatSchema.parse({
      vmId: s.vmId,
      seq: this.seq++,
      sentAt: new Date().toISOString(),
      agentStartedAt: this.startedAt,
      specVersion: s.specVersion,
      instance: s.instance,
      jobsState: s.jobsState,
      addresses: s.addresses.map((a) => ({ address: a.address, port: a.port, state: a.state })),
      jobs: s.jobs.map((j) => ({ name: j.name, state: j.state, restarts: j.restarts, healthy: j.healthy })),
      disk: s.disk,
      load: s.load,
    });
  }

  /** Boots: answers again, with nothing started (whoever boots it starts its jobs), and beats. */
  boot(token: string, settings: AgentSettings | undefined): void {
    this.silent = false;
    this.started = false;
    this.addresses = [];
    this.startedAt = new Date().toISOString();
    clearInterval(this.timer);
    const hb = settings?.heartbeat;
    if (!hb) return;
    this.timer = setInterval(() => {
      void fetch(hb.url, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify(this.heartbeat()),
        signal: AbortSignal.timeout(1000),
      })
        .then((r) => r.body?.cancel())
        .catch(() => undefined);
    }, hb.intervalMs ?? 500);
  }

  /** Dies: no heartbeat, no answer (requests wait for their client's timeout). */
  die(): void {
    this.silent = true;
    clearInterval(this.timer);
  }

  async close(): Promise<void> {
    this.die();
    this.app.server.closeAllConnections();
    await this.app.close();
  }
}

export class FakeAgents implements MemoryAgents {
  private readonly agents = new Map<string, FakeAgent>();

  /** `disks`: what the cloud has attached to a VM (the fake refuses a spec whose disk is not). */
  private held: Promise<void> | undefined;

  constructor(private readonly disks: (vmId: string) => Promise<string[]>) {}

  /**
   * Every agent's job start waits until the returned release is called: an operation
   * that starts jobs stays in progress meanwhile, however fast the rest of it is.
   */
  holdStarts(): () => void {
    let release = () => undefined as void;
    this.held = new Promise<void>((r) => (release = r));
    return () => {
      this.held = undefined;
      release();
    };
  }

  /** The fake agent of `vmId` (for a test's assertions), if its VM exists. */
  of(vmId: string): FakeAgent | undefined {
    return this.agents.get(vmId);
  }

  async start(vm: Vm, token: string, settings: AgentSettings | undefined): Promise<void> {
    let agent = this.agents.get(vm.id);
    if (!agent) {
      agent = new FakeAgent(vm, token, this.disks, () => this.held);
      await agent.app.listen({ host: vm.address, port: vm.agentPort });
      this.agents.set(vm.id, agent);
    }
    agent.boot(token, settings);
  }

  async stop(vmId: string): Promise<void> {
    this.agents.get(vmId)?.die();
  }

  /** The VM is deleted: its listener goes away. */
  async remove(vmId: string): Promise<void> {
    const agent = this.agents.get(vmId);
    this.agents.delete(vmId);
    await agent?.close();
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.agents.keys()].map((id) => this.remove(id)));
  }
}
