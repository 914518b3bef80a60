/**
 * The broker's behaviour behind the OSB routes: a service instance is a deployment
 * made from its plan's template; provision, update and deprovision are director
 * tasks, and an operation's state is read from its task (both are in the store, so a
 * control-plane restart mid-operation loses nothing: the task resumes, the operation
 * follows it). Bindings are users of the instance's data service, made by its
 * plug-in through the writer; their credentials are the plug-in's, opaque here.
 *
 * Mutations of one service instance run one at a time (a lock per instance): two
 * requests for the same resource never interleave, and a slow or broken instance
 * (a primary that does not answer) does not hold up the others.
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { errorMessage, NotFound } from "../lib/errors.js";
import { Mutex } from "../lib/mutex.js";
import type { Director } from "../director/director.js";
import { serviceOf } from "../jobs/services.js";
import type { OperationRecord, ServiceInstanceRecord } from "../store/broker.js";
import { planById, type Catalog, type Plan } from "./catalog.js";
import type { BrokerInstanceView } from "../wire/broker.js";
import {
  decideBind,
  decideDeprovision,
  decideProvision,
  decideUpdate,
  type BindRequest,
  type ProvisionRequest,
  type Refusal,
  type Repeat,
  type UpdateRequest,
} from "./decide.js";
import type { SecretBox } from "../lib/secret-box.js";

/** What a route answers: a status and a JSON body. */
export interface Answer {
  status: number;
  body: Record<string, unknown>;
}

const refusal = (r: Refusal): Answer => ({
  status: r.status,
  body: { ...(r.error ? { error: r.error } : {}), description: r.description },
});

/** The answers that start nothing: a refusal, a finished repeat (200), one still running (202). */
function answerOf(d: Refusal | Repeat): Answer {
  if (d.do === "refuse") return refusal(d);
  return d.do === "done" ? { status: 200, body: {} } : { status: 202, body: { operation: d.operation } };
}

const hash12 = (s: string) => createHash("sha256").update(s).digest("hex").slice(0, 12);
/** The deployment of a service instance: stable, so a repeat finds it. */
export const deploymentOf = (instanceId: string) => `svc-${hash12(instanceId)}`;
/** The user of a binding: stable, so a repeat after a crash converges on it. */
export const roleOf = (bindingId: string) => `u_${hash12(`binding:${bindingId}`)}`;

export class Broker {
  /** One lock per service instance: requests for one instance never interleave; others do not wait. */
  private readonly locks = new Map<string, Mutex>();
  private timer: NodeJS.Timeout | undefined;
  /** The settle in progress (stop waits for it). */
  private settling: Promise<void> = Promise.resolve();

  constructor(
    readonly catalog: Catalog,
    private readonly director: Director,
    private readonly box: SecretBox,
    private readonly log: Logger,
  ) {}

  private lock(instanceId: string): Mutex {
    let m = this.locks.get(instanceId);
    if (!m) this.locks.set(instanceId, (m = new Mutex()));
    return m;
  }

  private get records() {
    return this.director.ctx.store.broker;
  }

  /**
   * Launches operations whose task was never submitted (the control plane died in
   * between), then settles finished operations every second (a poll is not needed for
   * an operation to end).
   */
  async start(): Promise<void> {
    for (const op of await this.records.unfinishedOperations()) {
      await this.lock(op.instanceId).run(async () => {
        const instance = await this.records.instance(op.instanceId);
        if (op.taskId !== null || !instance) return;
        this.log.warn(
          { instance: op.instanceId, operation: op.id },
          "launching an operation interrupted by a restart",
        );
        await this.launch(op.id, instance, op.kind === "deprovision" ? null : String(op.request.plan_id));
      });
    }
    const tick = () => {
      this.settling = this.settleAll()
        .catch((err: unknown) =>
          this.log.warn({ err: errorMessage(err) }, "broker: settling operations failed"),
        )
        .finally(() => {
          if (this.timer) this.timer = setTimeout(tick, 1000);
        });
    };
    this.timer = setTimeout(tick, 0);
  }

  /** Stops settling; resolves once a settle in progress has ended (nothing of it uses the store after). */
  async stop(): Promise<void> {
    const t = this.timer;
    this.timer = undefined;
    if (t) clearTimeout(t);
    await this.settling;
  }

  plan(id: string): Plan | undefined {
    return planById(this.catalog, id);
  }

  private async existing(id: string) {
    const instance = await this.records.instance(id);
    if (!instance) return undefined;
    const last = await this.settle((await this.records.lastOperation(id))!);
    return { instance, last };
  }

  async provision(id: string, req: ProvisionRequest, context: Record<string, unknown>, async: boolean) {
    return this.lock(id).run(async (): Promise<Answer> => {
      const existing = await this.existing(id);
      const d = decideProvision(existing, req, async);
      if (d.do === "refuse" || d.do === "done" || d.do === "running") return answerOf(d);
      switch (d.do) {
        case "provision": {
          const op = this.provisionOp(req);
          const instance = {
            id,
            serviceId: req.service_id,
            planId: req.plan_id,
            deployment: deploymentOf(id),
            parameters: req.parameters,
            context,
          };
          await this.records.createInstance(instance, op);
          this.log.info(
            { instance: id, plan: this.plan(req.plan_id)?.name, operation: op.id },
            "provisioning",
          );
          await this.launch(op.id, instance, req.plan_id);
          return { status: 202, body: { operation: op.id } };
        }
        case "retry": {
          const op = this.provisionOp(req);
          await this.records.addOperation(id, op);
          this.log.info({ instance: id, operation: op.id }, "provisioning again after a failed provision");
          await this.launch(op.id, existing!.instance, req.plan_id);
          return { status: 202, body: { operation: op.id } };
        }
      }
    });
  }

  /** A provision operation: the request, and the version of its plan it deploys. */
  private provisionOp(req: ProvisionRequest) {
    return {
      id: `provision-${randomUUID()}`,
      kind: "provision" as const,
      request: { ...req, maintenance_version: this.plan(req.plan_id)?.maintenanceInfo?.version ?? null },
    };
  }

  async update(id: string, req: UpdateRequest, async: boolean) {
    return this.lock(id).run(async (): Promise<Answer> => {
      const existing = await this.existing(id);
      if (!existing) return { status: 404, body: { description: "no such service instance" } };
      const running = await this.runningVersion(id);
      const d = decideUpdate(this.catalog, existing.instance, existing.last, req, async, running);
      if (d.do === "refuse" || d.do === "done" || d.do === "running") return answerOf(d);
      switch (d.do) {
        case "update": {
          const op = {
            id: `update-${randomUUID()}`,
            kind: "update" as const,
            request: { plan_id: d.planId, maintenance_version: d.version },
          };
          await this.records.addOperation(id, op);
          this.log.info(
            {
              instance: id,
              plan: this.plan(d.planId)?.name,
              from: running,
              to: d.version,
              operation: op.id,
            },
            d.planId === existing.instance.planId ? "upgrading" : "changing plan",
          );
          await this.launch(op.id, existing.instance, d.planId);
          return { status: 202, body: { operation: op.id } };
        }
      }
    });
  }

  /**
   * Upgrades an instance to the version its plan offers now (what an OSB PATCH with
   * the plan's `maintenance_info` does): `zonal upgrade-services` calls it.
   */
  async upgrade(id: string): Promise<Answer> {
    const instance = await this.records.instance(id);
    if (!instance) return { status: 404, body: { description: "no such service instance" } };
    const version = this.plan(instance.planId)?.maintenanceInfo?.version;
    if (!version)
      return {
        status: 422,
        body: { description: "its plan has no version (maintenance_info) to upgrade to" },
      };
    return this.update(id, { maintenance_info: { version } }, true);
  }

  /** The version an instance runs: what its newest successful provision or update recorded (null: unknown). */
  private async runningVersion(id: string): Promise<string | null> {
    const op = await this.records.lastSucceededChange(id);
    const v = op?.request.maintenance_version;
    return typeof v === "string" ? v : null;
  }

  async deprovision(id: string, async: boolean) {
    return this.lock(id).run(async (): Promise<Answer> => {
      const existing = await this.existing(id);
      const d = decideDeprovision(existing, async);
      if (d.do === "refuse" || d.do === "done" || d.do === "running") return answerOf(d);
      switch (d.do) {
        case "deprovision": {
          const op = { id: `deprovision-${randomUUID()}`, kind: "deprovision" as const, request: {} };
          await this.records.addOperation(id, op);
          this.log.info({ instance: id, operation: op.id }, "deprovisioning");
          await this.launch(op.id, existing!.instance, null);
          return { status: 202, body: { operation: op.id } };
        }
      }
    });
  }

  /** last_operation: the named operation, or the instance's newest. */
  async lastOperation(id: string, operation: string | undefined): Promise<Answer> {
    const op = operation ? await this.records.operation(operation) : await this.records.lastOperation(id);
    if (!op || op.instanceId !== id)
      return {
        status: 404,
        body: { description: operation ? `no operation ${operation}` : "no such service instance" },
      };
    const now = await this.settle(op);
    if (now.kind === "deprovision" && now.state === "succeeded")
      return { status: 410, body: { description: now.description ?? "deprovisioned" } };
    return {
      status: 200,
      body: {
        state: now.state,
        ...(now.description ? { description: now.description } : {}),
        ...(now.state === "failed" && now.kind === "update"
          ? { instance_usable: true, update_repeatable: true }
          : {}),
      },
    };
  }

  async fetchInstance(id: string): Promise<Answer> {
    const existing = await this.existing(id);
    if (!existing || (existing.last.kind === "provision" && existing.last.state !== "succeeded"))
      return {
        status: 404,
        body: { description: "no such service instance, or it is still being provisioned" },
      };
    if (existing.last.state === "in progress" && existing.last.kind === "update")
      return {
        status: 422,
        body: { error: "ConcurrencyError", description: "The Service Instance is being updated." },
      };
    const i = existing.instance;
    // What it runs now (a platform compares it with the plan's to offer an upgrade).
    const running = await this.runningVersion(id);
    const description = this.plan(i.planId)?.maintenanceInfo?.description;
    const maintenanceInfo = running
      ? { version: running, ...(description ? { description } : {}) }
      : undefined;
    return {
      status: 200,
      body: {
        service_id: i.serviceId,
        plan_id: i.planId,
        parameters: i.parameters,
        ...(maintenanceInfo ? { maintenance_info: maintenanceInfo } : {}),
        metadata: { labels: { deployment: i.deployment } },
      },
    };
  }

  async bind(instanceId: string, bindingId: string, req: BindRequest) {
    return this.lock(instanceId).run(async (): Promise<Answer> => {
      const existing = await this.existing(instanceId);
      const binding = await this.records.binding(bindingId);
      const d = decideBind(existing, binding, req);
      if (d.do === "refuse") return refusal(d);
      const instance = existing!.instance;
      if (d.do === "done") {
        const credentials = await this.director.clusters.credentials(
          instance.deployment,
          binding!.username,
          this.box.open(binding!.passwordSealed),
        );
        return { status: 200, body: { credentials } };
      }
      const username = roleOf(bindingId);
      const password = randomBytes(18).toString("base64url");
      const made = await this.director.clusters.createBinding(instance.deployment, undefined, {
        username,
        password,
      });
      await this.records.addBinding({
        id: bindingId,
        instanceId,
        request: { ...req },
        username,
        passwordSealed: this.box.seal(password),
      });
      this.log.info({ instance: instanceId, binding: bindingId, username }, "bound");
      return { status: 201, body: { credentials: made.credentials } };
    });
  }

  async fetchBinding(instanceId: string, bindingId: string): Promise<Answer> {
    const binding = await this.records.binding(bindingId);
    const instance = await this.records.instance(instanceId);
    if (!binding || !instance || binding.instanceId !== instanceId)
      return { status: 404, body: { description: "no such service binding" } };
    const credentials = await this.director.clusters.credentials(
      instance.deployment,
      binding.username,
      this.box.open(binding.passwordSealed),
    );
    return {
      status: 200,
      body: { credentials, parameters: binding.request.parameters ?? {} },
    };
  }

  async unbind(instanceId: string, bindingId: string) {
    return this.lock(instanceId).run(async (): Promise<Answer> => {
      const binding = await this.records.binding(bindingId);
      const instance = await this.records.instance(instanceId);
      if (!binding || !instance || binding.instanceId !== instanceId)
        return { status: 410, body: { description: "no such service binding" } };
      // The binding is forgotten only once its role is gone: a failure here is retried by the platform.
      try {
        await this.director.clusters.dropBinding(instance.deployment, binding.username);
      } catch (err) {
        // The deployment is gone (deleted by hand): so is the user. Anything else is retried by the platform.
        if (!(err instanceof NotFound)) throw err;
      }
      await this.records.deleteBinding(bindingId);
      this.log.info({ instance: instanceId, binding: bindingId, username: binding.username }, "unbound");
      return { status: 200, body: {} };
    });
  }

  /** Instances with their plan's name and their newest operation (for `zonal services`). */
  async list(): Promise<BrokerInstanceView[]> {
    const out: BrokerInstanceView[] = [];
    for (const i of await this.records.instances()) {
      const last = await this.settle((await this.records.lastOperation(i.id))!);
      const version = await this.runningVersion(i.id);
      const latest = this.plan(i.planId)?.maintenanceInfo?.version ?? null;
      out.push({
        id: i.id,
        serviceId: i.serviceId,
        plan: this.plan(i.planId)?.name ?? i.planId,
        version,
        latest,
        behind: latest !== null && version !== latest,
        deployment: i.deployment,
        parameters: i.parameters,
        context: i.context,
        lastOperation: { id: last.id, kind: last.kind, state: last.state, description: last.description },
        bindings: (await this.records.bindings(i.id)).map((b) => b.id),
      });
    }
    return out;
  }

  /** Submits the operation's task: a deploy of the plan's manifest, or a delete when `planId` is null. */
  private async launch(
    opId: string,
    instance: Pick<ServiceInstanceRecord, "id" | "deployment" | "parameters">,
    planId: string | null,
  ) {
    try {
      let task;
      if (planId === null) {
        try {
          task = await this.director.deleteDeployment(instance.deployment);
        } catch (err) {
          if (!(err instanceof NotFound)) throw err;
          await this.records.finishDeprovision(opId, instance.id, "nothing was deployed");
          return;
        }
      } else {
        task = await this.director.deploy(
          manifestFor(this.plan(planId)!, instance.deployment, instance.parameters),
        );
      }
      await this.records.setTask(opId, task.id);
    } catch (err) {
      await this.records.endOperation(opId, "failed", errorMessage(err));
    }
  }

  private async settleAll(): Promise<void> {
    for (const op of await this.records.unfinishedOperations()) await this.settle(op);
  }

  /**
   * Brings an operation up to date with its task.
   */
  private async settle(op: OperationRecord): Promise<OperationRecord> {
    if (op.state !== "in progress") return op;
    const instance = await this.records.instance(op.instanceId);
    if (!instance) {
      // A deprovision that removed it already ended (its end and the removal are one transaction).
      await this.records.endOperation(op.id, "failed", "the service instance is gone");
      return (await this.records.operation(op.id))!;
    }
    if (op.taskId === null) return op; // being launched now (or at start, after a crash)
    const task = await this.director.task(op.taskId);
    if (task.state === "queued" || task.state === "running") return op;
    if (task.state === "failed") {
      await this.records.endOperation(op.id, "failed", task.result ?? `task ${task.id} failed`);
    } else {
      if (op.kind === "update")
        await this.records.setPlan(instance.id, String(op.request.plan_id), instance.parameters);
      const done = task.result ?? `task ${task.id} done`;
      if (op.kind === "deprovision") await this.records.finishDeprovision(op.id, instance.id, done);
      else await this.records.endOperation(op.id, "succeeded", done);
    }
    this.log.info(
      { instance: op.instanceId, operation: op.id, task: task.id, state: task.state },
      "operation ended",
    );
    return (await this.records.operation(op.id))!;
  }
}

/** The plan's template as this instance's manifest: its name, and the parameters its service takes. */
export function manifestFor(plan: Plan, deployment: string, parameters: Record<string, unknown>) {
  const m = structuredClone(plan.manifest) as { name?: string; instance_groups?: unknown[] };
  m.name = deployment;
  for (const g of (m.instance_groups ?? []) as Array<{
    jobs?: Array<{ name: string; type: string; properties?: Record<string, unknown> }>;
  }>) {
    const service = serviceOf({ jobs: g.jobs ?? [] })?.service;
    if (!service?.parameters) continue;
    for (const j of g.jobs ?? [])
      if (j.type === service.type) j.properties = service.parameters.apply(j.properties ?? {}, parameters);
  }
  return m;
}
