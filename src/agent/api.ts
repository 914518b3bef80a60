/**
 * The agent's HTTP API, on the VM's own address, bearer token from the cloud;
 * HTTPS with the VM's certificate when its settings have `tls`. On node's http
 * server (lib/json-api.ts), not Fastify: every VM pays for what its agent loads.
 *
 *   GET  /v1/info                      who and where this agent is
 *   GET  /v1/state                     jobs, disks, load (what heartbeats carry)
 *   GET  /v1/spec                      the applied spec (null before the first apply)
 *   PUT  /v1/spec                      apply a spec (jobs stay stopped until start)
 *   POST /v1/start[?wait_ms=N]         start all jobs; wait until they run or fail
 *   POST /v1/stop[?drain=false]        stop all jobs (draining by default)
 *   PUT  /v1/addresses                 serve these virtual addresses: {addresses: [{address, ports}]}
 *   POST /v1/handover                  hand over to a new agent from the zonal files on disk now
 *                                      (a new version); jobs keep running: {pid (the new agent's), from}
 *   POST /v1/jobs/:name/restart
 *   GET  /v1/jobs/:name/logs[?lines=N] the job's recent log lines
 *   GET  /v1/jobs/:name/status         the job and what its controller reports
 */
import { Conflict, InvalidInput, NotFound } from "../lib/errors.js";
import { JsonApi } from "../lib/json-api.js";
import type { Agent } from "./agent.js";

function intParam(value: string | undefined, name: string, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > max) {
    throw new InvalidInput(`${name}: expected an integer from 0 to ${max}, got "${value}"`);
  }
  return n;
}

export function buildAgentApi(
  agent: Agent,
  o: {
    handOver?: () => Promise<{ pid: number; from: number }>;
    onServerError?: (err: unknown, method: string, path: string) => void;
  } = {},
): JsonApi {
  const tls = agent.settings.tls;
  const app = new JsonApi({
    token: agent.settings.token,
    open: ["/v1/health"],
    ...(tls ? { https: { cert: tls.cert, key: tls.key } } : {}),
    ...(o.onServerError ? { onServerError: o.onServerError } : {}),
  });
  const job = (name: string | undefined) => name!;
  return app
    .get("/v1/health", async () => ({ ok: true }))
    .get("/v1/info", async () => agent.info())
    .get("/v1/state", async () => agent.state())
    .get("/v1/spec", async () => ({ spec: agent.spec() ?? null }))
    .put("/v1/spec", async (req) => agent.apply(req.body))
    .post("/v1/start", async (req) => agent.start(intParam(req.query.wait_ms, "wait_ms", 600_000) ?? 0))
    .put("/v1/addresses", async (req) => ({ addresses: agent.setAddresses(req.body) }))
    .post("/v1/handover", async () => {
      if (!o.handOver) throw new Conflict("this agent cannot hand over (it is not a VM's agent process)");
      return { handedOver: true, ...(await o.handOver()) };
    })
    .post("/v1/stop", async (req) => agent.stop(req.query.drain !== "false"))
    .post("/v1/jobs/:name/restart", async (req) => agent.restartJob(job(req.params.name)))
    .get("/v1/jobs/:name/status", async (req) => agent.jobStatus(job(req.params.name)))
    .get("/v1/jobs/:name/logs", async (req) => {
      const name = job(req.params.name);
      const lines = intParam(req.query.lines, "lines", 10_000) ?? 200;
      if (!agent.hasJob(name)) throw new NotFound(`no job ${name} on this VM`);
      return { job: name, lines: agent.logs(name, lines) };
    });
}
