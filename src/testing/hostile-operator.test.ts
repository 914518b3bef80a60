/**
 * Hostile requests against the operator's surfaces, in-process: the director API
 * (cloud config, manifests, actions, queries), the OSB broker, and the agent API on a
 * VM. A real director on a real store; its cloud answers what the director reads at
 * start (zones, no VMs) and refuses everything else, so an accepted deploy goes
 * nowhere. Every answer is a 2xx or a 4xx, a 400 names the field, and a refusal
 * changes nothing: deployments, tasks, the cloud config, the broker's records, the
 * agent's spec.
 */
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import type { FastifyInstance } from "fastify";
import type { JsonApi } from "../lib/json-api.js";
import { parse } from "yaml";
import { Agent } from "../agent/agent.js";
import { buildAgentApi } from "../agent/api.js";
import { loadCatalog } from "../broker/catalog.js";
import { startBroker, type ControlPlaneBroker } from "../broker/control-plane.js";
import { repoPath } from "../cli/home.js";
import type { Cloud, Zone } from "../cloud/cloud.js";
import { buildControlPlaneApi } from "../control-plane/api.js";
import { Director } from "../director/director.js";
import { Unavailable } from "../lib/errors.js";
import { silentLogger } from "../lib/log.js";
import { Store } from "../store/store.js";
import { claimAddressBlock } from "./addresses.js";
import { fuzzBodies, fuzzPaths, hostileSuite, mutations, send } from "./hostile.js";

const OPERATOR = "o".repeat(40);
const isObject = (v: unknown) => !!v && typeof v === "object" && !Array.isArray(v);
const yaml = (name: string) =>
  parse(readFileSync(repoPath("examples", name), "utf8")) as Record<string, unknown>;

/** Zones for the cloud config, no VMs, and a refusal for anything that would change the cloud. */
function refusingCloud(): Cloud {
  const cc = yaml("cloud-config.yml") as { zones: Array<{ name: string }> };
  const zones: Zone[] = cc.zones.map((z) => ({
    name: z.name,
    hosts: [
      {
        id: `${z.name}/h1`,
        name: "h1",
        zone: z.name,
        state: "up",
        attributes: { ssd: true },
        capacity: { cpu: 64, ramMb: 65536 },
        used: { cpu: 0, ramMb: 0, vms: 0 },
      },
    ],
  }));
  const answers: Record<string, () => Promise<unknown>> = {
    zones: async () => zones,
    listVms: async () => [],
    listDisks: async () => [],
    listAddresses: async () => [],
  };
  return new Proxy({} as Cloud, {
    get: (_t, name: string) =>
      answers[name] ??
      (async () => {
        throw new Unavailable(`this test's cloud does not ${name}`);
      }),
  });
}

describe("hostile requests from operators and platforms", () => {
  const { dir, tally } = hostileSuite("zonal-hostile-operator-");
  let store: Store;
  let director: Director;
  let broker: ControlPlaneBroker;
  let app: FastifyInstance;
  before(async () => {
    mkdirSync(join(dir, "director"));
    store = await Store.open({ dataDir: join(dir, "director") });
    director = await Director.start({
      store,
      cloud: refusingCloud(),
      heartbeatUrl: "http://127.0.0.1:9/v1/heartbeats",
      log: silentLogger,
      apiToken: OPERATOR,
    });
    broker = await startBroker({
      catalog: loadCatalog(repoPath("examples", "broker.yml")),
      director,
      log: silentLogger,
    });
    app = buildControlPlaneApi(
      () => director,
      OPERATOR,
      () => ({}),
      () => broker,
    );
    await setCloudConfig();
  });
  const setCloudConfig = async () => {
    const cc = await send(
      app,
      "PUT",
      "/v1/cloud-config",
      { cloudConfig: yaml("cloud-config.yml") },
      OPERATOR,
    );
    if (cc.status !== 200) throw new Error(`cloud config: ${cc.status} ${cc.body}`);
  };
  after(async () => {
    await app.close();
    await broker.broker.stop();
    await director.stop();
    await store.close();
  });
  const state = async () => ({
    deployments: await store.deployments.list(),
    tasks: (await store.tasks.list({ limit: 10_000 })).map((t) => t.id),
    cloudConfig: await store.settings.get("cloud_config"),
    instances: (await store.broker.instances()).map((i) => i.id),
  });

  it("director API bodies: manifests, cloud configs and actions", async () => {
    const t = tally("director API bodies");
    // The documents are what is broken (their fields are named as in a file); the envelope too.
    const doc = (key: string, v: unknown) =>
      fc.oneof(
        mutations(v).map((m) => ({ ...m, value: { [key]: m.value } })),
        mutations({ [key]: v })
          .filter((m) => m.field === key || m.how === "added" || m.how === "whole")
          // Another object in its place is another document: its own fields are named.
          .map((m) =>
            isObject(m.value) && isObject((m.value as Record<string, unknown>)[key])
              ? { ...m, how: "whole" as const }
              : m,
          ),
      );
    const bodies = [
      ["POST", "/v1/deployments", doc("manifest", yaml("postgres-cluster.yml"))],
      ["POST", "/v1/deployments", doc("manifest", yaml("lb.yml"))],
      ["PUT", "/v1/cloud-config", doc("cloudConfig", yaml("cloud-config.yml"))],
      ["PUT", "/v1/health/override", mutations({ deployment: "pg", on: true })],
      ["POST", "/v1/deployments/pg/recreate", mutations({ target: "postgres/0" })],
      ["POST", "/v1/deployments/pg/switchover", mutations({ to: "m1" })],
      ["POST", "/v1/deployments/pg/clusters/postgres/switchover", mutations({ to: "m1" })],
      ["POST", "/v1/deployments/pg/bindings", mutations({ group: "postgres" })],
    ] as const;
    // A cloud config that was good enough to take is put back, so the manifests still fit.
    await fuzzBodies({ app, tally: t, auth: OPERATOR, state }, bodies, async (url, a) => {
      if (url === "/v1/cloud-config" && a.status < 300) await setCloudConfig();
    });
  });

  it("director API paths and query strings", async () => {
    const t = tally("director API paths and queries");
    const routes = [
      ["GET", "/v1/deployments/:x"],
      ["DELETE", "/v1/deployments/:x"],
      ["POST", "/v1/deployments/:x/stop"],
      ["GET", "/v1/deployments/:x/cluster"],
      ["GET", "/v1/deployments/:x/lb"],
      ["DELETE", "/v1/deployments/pg/bindings/:x"],
      ["DELETE", "/v1/deployments/pg/bindings/u_000000000000?group=:x"],
      ["GET", "/v1/deployments/pg/logs?instance=:x&lines=3"],
      ["GET", "/v1/deployments/pg/logs?instance=postgres/0&lines=:x"],
      ["GET", "/v1/tasks/:x"],
      ["GET", "/v1/tasks/1/events?after=:x"],
      ["GET", "/v1/tasks?limit=:x"],
      ["GET", "/v1/events?deployment=:x&task=1"],
      ["GET", "/v1/events?limit=:x"],
      ["GET", "/v1/instances?deployment=:x"],
      ["GET", "/v1/health/status?deployment=:x"],
    ] as const;
    await fuzzPaths({ app, tally: t, auth: OPERATOR, state }, routes);
  });

  it("OSB: provision, update, bind bodies and hostile ids", async () => {
    const t = tally("OSB broker");
    const { username, password } = broker.credentials;
    const osb = {
      authorization: `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`,
      "x-broker-api-version": "2.17",
    };
    const catalog = JSON.parse((await send(app, "GET", "/v2/catalog", undefined, osb)).body) as {
      services: Array<{ id: string; plans: Array<{ id: string; name: string }> }>;
    };
    const service = catalog.services[0]!;
    const plan = service.plans.find((p) => p.name === "single")!.id;
    const provision = {
      service_id: service.id,
      plan_id: plan,
      organization_guid: "org-1",
      space_guid: "space-1",
      context: { platform: "cloudfoundry", instance_name: "db" },
      parameters: { database: "orders" },
    };
    const requests = [
      ["PUT", "/v2/service_instances/i-hostile?accepts_incomplete=true", provision],
      [
        "PATCH",
        "/v2/service_instances/i-hostile?accepts_incomplete=true",
        { service_id: service.id, plan_id: plan },
      ],
      [
        "PUT",
        "/v2/service_instances/i-hostile/service_bindings/b-1?accepts_incomplete=true",
        { service_id: service.id, plan_id: plan, bind_resource: { app_guid: "app-1" } },
      ],
    ] as const;
    const surface = { app, tally: t, auth: osb, state };
    await fuzzBodies(
      surface,
      requests.map(([m, u, v]) => [m, u, mutations(v)] as const),
    );
    const paths = [
      ["GET", "/v2/service_instances/:x"],
      ["DELETE", `/v2/service_instances/:x?service_id=${service.id}&plan_id=${plan}&accepts_incomplete=true`],
      ["GET", "/v2/service_instances/:x/last_operation?operation=op-1"],
      ["GET", "/v2/service_instances/i-1/last_operation?operation=:x"],
      ["DELETE", `/v2/service_instances/i-1/service_bindings/:x?service_id=${service.id}&plan_id=${plan}`],
      ["PUT", "/v2/service_instances/:x?accepts_incomplete=:x"],
    ] as const;
    await fuzzPaths(surface, paths, (m) => (m === "PUT" ? provision : undefined));
  });

  describe("the agent API on a VM", () => {
    const block = claimAddressBlock();
    const token = "a".repeat(32);
    let agent: Agent;
    let agentApp: JsonApi;
    before(() => {
      agent = new Agent(
        {
          vmId: "vm-hostile",
          address: `127.${block.base}.9.9`,
          agentPort: 6868,
          token,
          disksDir: join(dir, "agent-disks"),
          ephemeralDir: join(dir, "agent-ephemeral"),
          env: {},
        },
        silentLogger,
      );
      agentApp = buildAgentApi(agent);
    });
    after(async () => {
      await agent.shutdown();
      await agentApp.close();
      block.release();
    });
    const spec = {
      instance: { deployment: "d", group: "g", index: 0, id: "i-1" },
      persistent_disk: null,
      jobs: [
        {
          name: "web",
          type: "process",
          config: { command: ["true"], health_check: { http: { port: 7101, path: "/healthz" } } },
          hooks: { pre_start: "echo ready" },
        },
      ],
      links: {},
      cluster: null,
      secrets: {},
    };

    it("specs and addresses: 2xx or 4xx naming the field; a refused spec leaves the applied one", async () => {
      const t = tally("agent API bodies");
      const bodies = [
        ["PUT", "/v1/spec", spec],
        ["PUT", "/v1/addresses", { addresses: [{ address: `127.${block.base}.9.10`, ports: [8080] }] }],
      ] as const;
      await fuzzBodies(
        { app: agentApp, tally: t, auth: token, state: () => agent.spec() ?? null },
        bodies.map(([m, u, v]) => [m, u, mutations(v)] as const),
        (url, a) => {
          if (url === "/v1/addresses" && a.status < 300) agent.setAddresses({ addresses: [] });
        },
      );
    });

    it("job names and query strings", async () => {
      const t = tally("agent API paths and queries");
      const routes = [
        ["GET", "/v1/jobs/:x/status"],
        ["GET", "/v1/jobs/:x/logs?lines=5"],
        ["GET", "/v1/jobs/web/logs?lines=:x"],
        ["POST", "/v1/jobs/:x/restart"],
      ] as const;
      await fuzzPaths({ app: agentApp, tally: t, auth: token, state: () => agent.spec() ?? null }, routes);
    });
  });
});
