/**
 * The local cloud's HTTP API (JSON, bearer token), a thin layer over
 * `LocalCloudService`. Resources: zones, hosts, vms, disks, faults.
 *
 *   GET    /v1/zones | /v1/hosts
 *   POST   /v1/vms                       GET /v1/vms[?metadata.KEY=VALUE]
 *   GET    /v1/vms/:id                   DELETE /v1/vms/:id
 *   POST   /v1/vms/:id/reboot | /power-off
 *   PATCH  /v1/vms/:id/metadata          GET /v1/vms/:id/agent (address, port, token)
 *   GET    /v1/vms/:id/console?lines=N   the last N lines its agent printed
 *   POST   /v1/disks                     GET /v1/disks[?metadata.KEY=VALUE]
 *   GET    /v1/disks/:id                 DELETE /v1/disks/:id
 *   PUT    /v1/disks/:id/attachment      DELETE /v1/disks/:id/attachment[?force=true]
 *   POST   /v1/addresses {zone, metadata}   GET /v1/addresses[?metadata.KEY=VALUE]
 *   PUT    /v1/addresses/:address/holder {vmId}   DELETE /v1/addresses/:address
 *   GET    /v1/faults
 *   POST   /v1/faults/vms/:id/crash | /kill-processes | /freeze | /thaw
 *   POST   /v1/faults/network {kind: partition|isolate|slow, …}
 *   DELETE /v1/faults/network[/:id]          heal one, or every one
 *   POST   /v1/control-plane {pid, address}  the control plane's process and own address
 *   POST   /v1/faults/hosts/:zone/:host/fail | /restore
 *   POST   /v1/faults/zones/:zone/fail | /restore
 */
import type { FastifyInstance } from "fastify";
import { NotFound } from "../../lib/errors.js";
import { createApi } from "../../lib/http-server.js";
import type { Logger } from "../../lib/log.js";
import type { CreateDiskRequest, CreateVmRequest, Metadata, VmFilter } from "../cloud.js";
import type { LocalCloudService } from "./service.js";
import type { NetworkFaultSpec } from "./network/faults.js";

type IdParams = { id: string };
type HostParams = { zone: string; host: string };

function filterFrom(query: Record<string, string>): VmFilter {
  const metadata: Metadata = {};
  for (const [k, v] of Object.entries(query)) if (k.startsWith("metadata.")) metadata[k.slice(9)] = v;
  return { metadata };
}

export function buildCloudApi(service: LocalCloudService, token: string, logger?: Logger): FastifyInstance {
  const app = createApi({ token, open: ["/v1/health"], ...(logger ? { logger } : {}) });

  app.get("/v1/health", async () => ({ ok: true }));
  app.get("/v1/zones", () => service.zones());
  app.get("/v1/hosts", () => service.hosts());

  app.post("/v1/vms", async (req, reply) =>
    reply.status(201).send(await service.createVm(req.body as CreateVmRequest)),
  );
  app.get("/v1/vms", (req) => service.listVms(filterFrom(req.query as Record<string, string>)));
  app.get<{ Params: IdParams }>("/v1/vms/:id", async (req) => {
    const vm = await service.getVm(req.params.id);
    if (!vm) throw new NotFound(`VM ${req.params.id} does not exist`);
    return vm;
  });
  app.delete<{ Params: IdParams }>("/v1/vms/:id", async (req, reply) => {
    await service.deleteVm(req.params.id);
    return reply.status(204).send();
  });
  app.post<{ Params: IdParams }>("/v1/vms/:id/reboot", async (req, reply) => {
    await service.rebootVm(req.params.id);
    return reply.status(204).send();
  });
  app.post<{ Params: IdParams }>("/v1/vms/:id/power-off", async (req, reply) => {
    await service.powerOffVm(req.params.id);
    return reply.status(204).send();
  });
  app.patch<{ Params: IdParams }>("/v1/vms/:id/metadata", async (req, reply) => {
    await service.setVmMetadata(req.params.id, req.body as Metadata);
    return reply.status(204).send();
  });
  app.get<{ Params: IdParams; Querystring: { lines?: string } }>("/v1/vms/:id/console", async (req) => ({
    lines: await service.consoleOutput(req.params.id, Number(req.query.lines ?? 100)),
  }));
  app.get<{ Params: IdParams }>("/v1/vms/:id/agent", (req) => service.agentSettings(req.params.id));

  app.post("/v1/disks", async (req, reply) =>
    reply.status(201).send(await service.createDisk(req.body as CreateDiskRequest)),
  );
  app.get("/v1/disks", (req) => service.listDisks(filterFrom(req.query as Record<string, string>)));
  app.get<{ Params: IdParams }>("/v1/disks/:id", async (req) => {
    const disk = await service.getDisk(req.params.id);
    if (!disk) throw new NotFound(`disk ${req.params.id} does not exist`);
    return disk;
  });
  app.delete<{ Params: IdParams }>("/v1/disks/:id", async (req, reply) => {
    await service.deleteDisk(req.params.id);
    return reply.status(204).send();
  });
  app.put<{ Params: IdParams }>("/v1/disks/:id/attachment", (req) =>
    service.attachDisk(req.params.id, (req.body as { vmId?: unknown } | undefined)?.vmId as string),
  );
  app.delete<{ Params: IdParams; Querystring: { force?: string } }>(
    "/v1/disks/:id/attachment",
    async (req, reply) => {
      await service.detachDisk(req.params.id, { force: req.query.force === "true" });
      return reply.status(204).send();
    },
  );

  app.post("/v1/addresses", async (req, reply) =>
    reply.status(201).send(await service.allocateAddress(req.body as { zone: string })),
  );
  app.get("/v1/addresses", (req) => service.listAddresses(filterFrom(req.query as Record<string, string>)));
  app.put<{ Params: { address: string } }>("/v1/addresses/:address/holder", (req) =>
    service.assignAddress(req.params.address, (req.body as { vmId?: unknown } | undefined)?.vmId as string),
  );
  app.delete<{ Params: { address: string } }>("/v1/addresses/:address", async (req, reply) => {
    await service.releaseAddress(req.params.address);
    return reply.status(204).send();
  });

  app.get("/v1/faults", () => service.faults());
  const vmFaults = {
    crash: "crashVm",
    "kill-processes": "killVmProcesses",
    freeze: "freezeVm",
    thaw: "thawVm",
  } as const;
  for (const [action, method] of Object.entries(vmFaults)) {
    app.post<{ Params: IdParams }>(`/v1/faults/vms/:id/${action}`, async (req, reply) => {
      await service[method](req.params.id);
      return reply.status(204).send();
    });
  }
  app.post<{ Params: HostParams }>("/v1/faults/hosts/:zone/:host/fail", async (req, reply) => {
    await service.failHost(`${req.params.zone}/${req.params.host}`, (req.body ?? {}) as object);
    return reply.status(204).send();
  });
  app.post<{ Params: HostParams }>("/v1/faults/hosts/:zone/:host/restore", async (req, reply) => {
    await service.restoreHost(`${req.params.zone}/${req.params.host}`);
    return reply.status(204).send();
  });
  app.post<{ Params: { zone: string } }>("/v1/faults/zones/:zone/fail", async (req, reply) => {
    await service.failZone(req.params.zone, (req.body ?? {}) as object);
    return reply.status(204).send();
  });
  app.post<{ Params: { zone: string } }>("/v1/faults/zones/:zone/restore", async (req, reply) => {
    await service.restoreZone(req.params.zone);
    return reply.status(204).send();
  });
  app.post("/v1/faults/network", async (req, reply) =>
    reply.status(201).send(await service.addNetworkFault(req.body as NetworkFaultSpec)),
  );
  app.delete("/v1/faults/network", async () => ({ healed: await service.healNetwork() }));
  app.delete<{ Params: IdParams }>("/v1/faults/network/:id", async (req) => ({
    healed: await service.healNetwork(req.params.id),
  }));
  app.post("/v1/control-plane", (req) =>
    service.registerControlPlane(req.body as { pid: number; address: string }),
  );
  return app;
}
