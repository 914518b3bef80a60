/**
 * `zonal broker | marketplace | create-service | update-service | services | bind | unbind | delete-service`:
 * the broker for people without a platform at hand. Each command calls the broker's
 * own OSB API (basic auth from the director's /v1/broker), as a platform would; the
 * service's NAME is its OSB instance id.
 */
import { randomBytes } from "node:crypto";
import { Command } from "commander";
import { OsbClient, type OsbEndpoint, type OsbResponse } from "../../broker/client.js";
import { Conflict, InvalidInput, NotFound, Unavailable } from "../../lib/errors.js";
import { sleep } from "../../lib/sleep.js";
import { directorClient } from "../context.js";
import { print, printJson, table } from "../output.js";
import type { BrokerInstanceView } from "../../wire/broker.js";

interface Plan {
  id: string;
  name: string;
  description: string;
  plan_updateable?: boolean;
  metadata?: { updatable_to?: string[] };
}
interface Service {
  id: string;
  name: string;
  description: string;
  plans: Plan[];
}
type InstanceView = BrokerInstanceView;

async function broker(cmd: Command) {
  const director = directorClient(cmd);
  const ep = await director.http.request<OsbEndpoint>("GET", "/v1/broker");
  const ca = director.endpoint.ca;
  const osb = new OsbClient({ ...ep, ...(ca ? { ca } : {}) });
  const catalog = await expect(osb.call<{ services: Service[] }>("GET", "/catalog"), [200], "catalog");
  return { director, osb, catalog: catalog.body.services };
}

/** The response if its status is one of `ok`; else the broker's description as the error it means. */
async function expect<T>(p: Promise<OsbResponse<T>>, ok: number[], what: string): Promise<OsbResponse<T>> {
  const r = await p;
  if (ok.includes(r.status)) return r;
  const d = (r.body as { description?: string; error?: string }) ?? {};
  const text = `${what}: ${d.description ?? `HTTP ${r.status}`}${d.error ? ` (${d.error})` : ""}`;
  if (r.status === 400) throw new InvalidInput(text);
  if (r.status === 404 || r.status === 410) throw new NotFound(text);
  if (r.status === 409 || r.status === 422) throw new Conflict(text);
  throw new Unavailable(text);
}

/** The catalog service an instance belongs to. */
function serviceOfInstance(services: Service[], inst: InstanceView): Service {
  const s = services.find((x) => x.id === inst.serviceId);
  if (!s) throw new NotFound(`service instance ${inst.id}: its service ${inst.serviceId} left the catalog`);
  return s;
}

/** The ids a removal sends: the instance's own, even when its service or plan left the catalog. */
function idsOf(services: Service[], inst: InstanceView): { service_id: string; plan_id: string } {
  const plan = services.find((x) => x.id === inst.serviceId)?.plans.find((p) => p.name === inst.plan);
  return { service_id: inst.serviceId, plan_id: plan?.id ?? inst.plan };
}

function findService(services: Service[], name: string): Service {
  const s = services.find((x) => x.name === name);
  if (!s)
    throw new NotFound(
      `no service "${name}" in the marketplace (has: ${services.map((x) => x.name).join(", ")})`,
    );
  return s;
}

async function instanceOf(cmd: Command, name: string): Promise<InstanceView> {
  const list = await directorClient(cmd).http.request<InstanceView[]>("GET", "/v1/broker/instances");
  const i = list.find((x) => x.id === name);
  if (!i) throw new NotFound(`no service instance "${name}"; see zonal services`);
  return i;
}

/** Polls last_operation until it ends, printing its state as it changes (stderr keeps --json clean). */
async function waitOperation(osb: OsbClient, name: string, operation: string, json: boolean) {
  const t0 = Date.now();
  let said = 0;
  for (;;) {
    const r = await osb.call<{ state?: string; description?: string }>(
      "GET",
      `/service_instances/${encodeURIComponent(name)}/last_operation`,
      { query: { operation } },
    );
    if (r.status === 410) return { state: "succeeded", description: "deleted" };
    if (r.status !== 200) throw new Unavailable(`last_operation: HTTP ${r.status} ${JSON.stringify(r.body)}`);
    const secs = Math.round((Date.now() - t0) / 1000);
    if (r.body.state !== "in progress") return { ...r.body, seconds: secs };
    if (!json && secs - said >= 5) {
      process.stderr.write(`  ${operation}: in progress (${secs} s)\n`);
      said = secs;
    }
    await sleep(1000);
  }
}

/** After a provision or update: print what started, or with --wait follow it to its end (exit 1 unless it succeeded). */
async function finish(
  osb: OsbClient,
  name: string,
  r: OsbResponse,
  o: { wait?: boolean; json?: boolean },
  say: { plan: string; already: string; started: string; ended: string },
): Promise<void> {
  const operation = typeof r.body.operation === "string" ? r.body.operation : undefined;
  if (!o.wait || !operation) {
    if (o.json) return printJson({ name, plan: say.plan, status: r.status, operation: operation ?? null });
    return print(r.status === 200 ? say.already : say.started);
  }
  const end = await waitOperation(osb, name, operation, o.json === true);
  if (o.json) printJson({ name, plan: say.plan, operation, ...end });
  else print(`${say.ended}: ${end.state}${end.description ? ` - ${end.description}` : ""}`);
  if (end.state !== "succeeded") process.exitCode = 1;
}

export function serviceCommands(): Command[] {
  const info = new Command("broker")
    .description("the broker's OSB URL and basic-auth credentials (to register it with a platform)")
    .option("--json", "print JSON (includes the password)")
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const ep = await directorClient(cmd).http.request<OsbEndpoint>("GET", "/v1/broker");
      if (o.json) return printJson(ep);
      print(`OSB API ${ep.url}, user ${ep.username} (password with --json)`);
    });

  const marketplace = new Command("marketplace")
    .description("the services and plans the broker sells (its OSB catalog)")
    .option("--json", "print the catalog as JSON")
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const { catalog } = await broker(cmd);
      if (o.json) return printJson({ services: catalog });
      for (const s of catalog) {
        print(`${s.name}: ${s.description}`);
        print(
          table(
            ["PLAN", "CAN CHANGE TO", "DESCRIPTION"],
            s.plans.map((p) => [p.name, (p.metadata?.updatable_to ?? []).join(", ") || "-", p.description]),
          ),
        );
      }
    });

  const create = new Command("create-service")
    .argument("<service>", "the service, e.g. postgresql")
    .argument("<plan>", "the plan: see zonal marketplace")
    .argument("<name>", "the instance's name (its OSB instance id)")
    .description("provision a service instance: its own deployment, made from the plan")
    .option("--database <name>", "the database to create (default: app)")
    .option("--wait", "wait until it is usable (or failed), showing progress")
    .option("--json", "print JSON")
    .action(
      async (
        serviceName: string,
        planName: string,
        name: string,
        o: { database?: string; wait?: boolean; json?: boolean },
        cmd: Command,
      ) => {
        const { osb, catalog } = await broker(cmd);
        const s = findService(catalog, serviceName);
        const plan = s.plans.find((p) => p.name === planName);
        if (!plan)
          throw new InvalidInput(
            `plan: no plan "${planName}" for ${s.name} (has: ${s.plans.map((p) => p.name).join(", ")})`,
          );
        const r = await expect(
          osb.call("PUT", `/service_instances/${encodeURIComponent(name)}`, {
            query: { accepts_incomplete: "true" },
            body: {
              service_id: s.id,
              plan_id: plan.id,
              organization_guid: "zonal-cli",
              space_guid: "zonal-cli",
              context: { platform: "zonal-cli", instance_name: name },
              parameters: o.database ? { database: o.database } : {},
            },
          }),
          [200, 201, 202],
          `create-service ${name}`,
        );
        await finish(osb, name, r, o, {
          plan: plan.name,
          already: `${name} (${plan.name}) already exists`,
          started: `creating ${name} (${plan.name}); zonal services shows its state, or use --wait`,
          ended: `${name} (${plan.name})`,
        });
      },
    );

  const update = new Command("update-service")
    .argument("<name>", "the service instance")
    .requiredOption(
      "--plan <plan>",
      "the plan to change to (zonal marketplace shows which changes work in place)",
    )
    .description("change an instance's plan in place, keeping its data (e.g. single -> cluster)")
    .option("--wait", "wait until the change ends, showing progress")
    .option("--json", "print JSON")
    .action(async (name: string, o: { plan: string; wait?: boolean; json?: boolean }, cmd: Command) => {
      const { osb, catalog } = await broker(cmd);
      const s = serviceOfInstance(catalog, await instanceOf(cmd, name));
      const plan = s.plans.find((p) => p.name === o.plan);
      if (!plan)
        throw new InvalidInput(`--plan: no plan "${o.plan}" (has: ${s.plans.map((p) => p.name).join(", ")})`);
      const r = await expect(
        osb.call("PATCH", `/service_instances/${encodeURIComponent(name)}`, {
          query: { accepts_incomplete: "true" },
          body: { service_id: s.id, plan_id: plan.id },
        }),
        [200, 202],
        `update-service ${name}`,
      );
      await finish(osb, name, r, o, {
        plan: plan.name,
        already: `${name} is already on ${plan.name}`,
        started: `changing ${name} to ${plan.name}; zonal services shows its state, or use --wait`,
        ended: `${name} -> ${plan.name}`,
      });
    });

  const list = new Command("services")
    .description("service instances with their plan, deployment, last operation and bindings")
    .option("--json", "print JSON")
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const list = await directorClient(cmd).http.request<InstanceView[]>("GET", "/v1/broker/instances");
      if (o.json) return printJson(list);
      if (list.length === 0) return print("no service instances; zonal create-service makes one");
      print(
        table(
          ["NAME", "PLAN", "VERSION", "DEPLOYMENT", "LAST OPERATION", "BINDINGS"],
          list.map((i) => [
            i.id,
            i.plan,
            `${i.version ?? "unknown"}${i.behind ? ` (${i.latest} available)` : ""}`,
            i.deployment,
            `${i.lastOperation.kind} ${i.lastOperation.state}`,
            i.bindings.length,
          ]),
        ),
      );
    });

  const bind = new Command("bind")
    .argument("<name>", "the service instance")
    .argument("[binding]", "the binding's id (default: a new one)")
    .description("make credentials for an application: a user of the service with its own password")
    .option(
      "--json",
      "print the credentials object (uri, jdbcUrl, host, port, database, username, password, ...)",
    )
    .action(async (name: string, bindingArg: string | undefined, o: { json?: boolean }, cmd: Command) => {
      const { osb, catalog } = await broker(cmd);
      const inst = await instanceOf(cmd, name);
      const s = serviceOfInstance(catalog, inst);
      const plan = s.plans.find((p) => p.name === inst.plan)!;
      const binding = bindingArg ?? `${name}-${randomBytes(4).toString("hex")}`;
      const r = await expect(
        osb.call<{ credentials: Record<string, unknown> }>(
          "PUT",
          `/service_instances/${encodeURIComponent(name)}/service_bindings/${encodeURIComponent(binding)}`,
          { body: { service_id: s.id, plan_id: plan.id } },
        ),
        [200, 201],
        `bind ${name}`,
      );
      if (o.json) return printJson(r.body.credentials);
      const c = r.body.credentials;
      print(
        `binding ${binding} of ${name}: ${String(c.username)} on ${String(c.host)}:${String(c.port)}/${String(c.database)} over TLS checked against the control plane's CA (password, uri and ca_cert with --json)`,
      );
    });

  const unbind = new Command("unbind")
    .argument("<name>", "the service instance")
    .argument("<binding>", "the binding's id")
    .description("remove a binding: its user is dropped and its connections ended")
    .action(async (name: string, binding: string, _o: unknown, cmd: Command) => {
      const { osb, catalog } = await broker(cmd);
      const inst = await instanceOf(cmd, name);
      await expect(
        osb.call(
          "DELETE",
          `/service_instances/${encodeURIComponent(name)}/service_bindings/${encodeURIComponent(binding)}`,
          { query: idsOf(catalog, inst) },
        ),
        [200],
        `unbind ${binding}`,
      );
      print(`binding ${binding} of ${name} removed`);
    });

  const del = new Command("delete-service")
    .argument("<name>", "the service instance")
    .description("deprovision: its VMs, disks, leases and addresses are removed")
    .option("--wait", "wait until it is gone, showing progress")
    .option("--json", "print JSON")
    .action(async (name: string, o: { wait?: boolean; json?: boolean }, cmd: Command) => {
      const { osb, catalog } = await broker(cmd);
      const inst = await instanceOf(cmd, name);
      const r = await expect(
        osb.call("DELETE", `/service_instances/${encodeURIComponent(name)}`, {
          query: { ...idsOf(catalog, inst), accepts_incomplete: "true" },
        }),
        [200, 202],
        `delete-service ${name}`,
      );
      const operation = String(r.body.operation ?? "");
      if (!o.wait || !operation) {
        if (o.json) return printJson({ name, status: r.status, operation: operation || null });
        return print(`deleting ${name}; zonal services shows its state, or use --wait`);
      }
      const end = await waitOperation(osb, name, operation, o.json === true);
      if (o.json) printJson({ name, operation, ...end });
      else
        print(
          `${name}: ${end.state === "succeeded" ? "deleted" : `${end.state} - ${end.description ?? ""}`}`,
        );
      if (end.state !== "succeeded") process.exitCode = 1;
    });

  return [info, marketplace, create, update, list, bind, unbind, del];
}
