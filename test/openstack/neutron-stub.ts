// A STUB of the Neutron v2.0 API, for the test OpenStack that test/openstack/up.sh starts.
// It is not Neutron: no agents, no L2/L3, no policy. It keeps networks, subnets, ports,
// floating IPs and one security group in memory and answers with Neutron's wire formats
// (bodies wrapped as {"port": {...}}, 201 on create, 204 on delete, errors as
// {"NeutronError": {type, message, detail}}), enough for nova-api and nova-compute to boot,
// heal and delete servers with pre-made ports, and for zonal's OpenStack driver to manage
// ports, tags and floating IPs.
//
// Two networks exist from the start: `zonal-test-net` (127.77.0.0/16, addresses from
// 127.77.0.10 up) and the external `zonal-test-ext` (127.78.0.0/16, floating IPs from
// 127.78.0.10 up). No extension that changes Nova's code paths is reported, so Nova binds
// ports the legacy way (PUT binding:host_id); a port bound to a host gets vif_type "ovs".
//
// Tokens: with `keystone` set, X-Auth-Token is checked against Keystone (GET /v3/auth/tokens,
// cached) and its project owns what it creates; without it, any request is let through and
// `projectId` owns everything.
//
//   node dist/test/openstack/neutron-stub.js --port 25007 [--host 127.0.0.1]
//        [--keystone http://127.0.0.1:25003] [--project-id ID] [--log FILE]
import { randomUUID } from "node:crypto";
import { appendFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import {
  badRequest,
  EXTENSIONS,
  filterList,
  type Json,
  NeutronError,
  NeutronState,
  project,
} from "./neutron-state.js";

export { EXT_NETWORK_ID, EXT_SUBNET_ID, NETWORK_ID, NeutronState, SUBNET_ID } from "./neutron-state.js";
function extension(alias: string): Json {
  return {
    alias,
    name: alias,
    description: `${alias} (stub)`,
    updated: "2013-01-01T00:00:00-00:00",
    links: [],
  };
}

interface Reply {
  status: number;
  body?: unknown;
}

/** Routes one request against the state; throws NeutronError for Neutron's error answers. */
export function route(state: NeutronState, method: string, url: URL, body: Json, projectId: string): Reply {
  const path = url.pathname.replace(/\.json$/, "").replace(/\/+$/, "");
  const fields = url.searchParams.getAll("fields").flatMap((f) => f.split(","));
  const one = (key: string, item: Json, status = 200): Reply => ({
    status,
    body: { [key]: project(item, fields) },
  });
  const many = (key: string, items: Iterable<Json>): Reply => ({
    status: 200,
    body: { [key]: filterList(items, url.searchParams).map((i) => project(i, fields)) },
  });
  const inner = (key: string): Json => {
    const v = body[key];
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      throw badRequest(`Resource body required: expected an object under "${key}".`);
    }
    return v as Json;
  };
  const bulk = (plural: string, singular: string, create: (b: Json) => Json): Reply => {
    if (Array.isArray(body[plural])) {
      const made = (body[plural] as Json[]).map((b) => create(b));
      return { status: 201, body: { [plural]: made } };
    }
    return one(singular, create(inner(singular)), 201);
  };

  if (path === "") {
    return {
      status: 200,
      body: {
        versions: [{ id: "v2.0", status: "CURRENT", links: [{ rel: "self", href: `${url.origin}/v2.0/` }] }],
      },
    };
  }
  const parts = path.split("/").slice(1);
  if (parts[0] !== "v2.0") throw new NeutronError(404, "HTTPNotFound", "The resource could not be found.");
  const [, collection, id, sub, subId] = parts;
  const key = `${method} ${collection ?? ""}${id === undefined ? "" : "/:id"}${sub === undefined ? "" : `/${sub}`}${subId === undefined ? "" : "/:tag"}`;
  switch (key) {
    case "GET ":
      return {
        status: 200,
        body: {
          resources: ["networks", "subnets", "ports", "floatingips", "security-groups"].map((name) => ({
            name: name.replace(/s$/, ""),
            collection: name,
            links: [{ rel: "self", href: `${url.origin}/v2.0/${name}` }],
          })),
        },
      };
    case "GET extensions":
      return { status: 200, body: { extensions: EXTENSIONS.map(extension) } };
    case "GET extensions/:id":
      if (!EXTENSIONS.includes(id!)) {
        throw new NeutronError(404, "HTTPNotFound", `Extension with alias ${id} does not exist`);
      }
      return { status: 200, body: { extension: extension(id!) } };
    case "GET networks":
      return many("networks", state.networks.values());
    case "GET networks/:id":
      return one("network", state.network(id!));
    case "GET subnets":
      return many("subnets", state.subnets.values());
    case "GET subnets/:id":
      return one("subnet", state.subnet(id!));
    case "GET ports":
      return many("ports", state.ports.values());
    case "POST ports":
      return bulk("ports", "port", (b) => state.createPort(b, projectId));
    case "GET ports/:id":
      return one("port", state.port(id!));
    case "PUT ports/:id":
      return one("port", state.updatePort(id!, inner("port")));
    case "DELETE ports/:id":
      state.deletePort(id!);
      return { status: 204 };
    case "GET ports/:id/tags":
      return { status: 200, body: { tags: state.port(id!).tags } };
    case "PUT ports/:id/tags":
      return { status: 200, body: { tags: state.setPortTags(id!, body["tags"]) } };
    case "DELETE ports/:id/tags":
      state.setPortTags(id!, []);
      return { status: 204 };
    case "GET ports/:id/tags/:tag": {
      if (!state.port(id!).tags.includes(subId!)) {
        throw new NeutronError(404, "TagNotFound", `Tag ${subId} could not be found for port ${id}.`);
      }
      return { status: 204 };
    }
    case "PUT ports/:id/tags/:tag":
      state.setPortTags(id!, [...state.port(id!).tags, subId!]);
      return { status: 201 };
    case "DELETE ports/:id/tags/:tag": {
      const tags = state.port(id!).tags;
      if (!tags.includes(subId!)) {
        throw new NeutronError(404, "TagNotFound", `Tag ${subId} could not be found for port ${id}.`);
      }
      state.setPortTags(
        id!,
        tags.filter((t) => t !== subId),
      );
      return { status: 204 };
    }
    case "GET floatingips":
      return many("floatingips", state.floatingips.values());
    case "POST floatingips":
      return bulk("floatingips", "floatingip", (b) => state.createFloatingip(b, projectId));
    case "GET floatingips/:id":
      return one("floatingip", state.floatingip(id!));
    case "PUT floatingips/:id":
      return one("floatingip", state.updateFloatingip(id!, inner("floatingip")));
    case "DELETE floatingips/:id":
      state.deleteFloatingip(id!);
      return { status: 204 };
    case "GET security-groups":
      return many("security_groups", state.securityGroups.values());
    case "GET security-groups/:id":
      return one("security_group", state.securityGroup(id!));
    case "GET security-group-rules":
      return { status: 200, body: { security_group_rules: [] } };
    case "GET quotas/:id":
    case "GET quotas/:id/details": {
      const unlimited = Object.fromEntries(
        ["network", "subnet", "port", "floatingip", "router", "security_group", "security_group_rule"].map(
          (k) => [k, sub === undefined ? -1 : { limit: -1, used: 0, reserved: 0 }],
        ),
      );
      return { status: 200, body: { quota: unlimited } };
    }
  }
  const known = ["networks", "subnets", "ports", "floatingips", "security-groups", "extensions", "quotas"];
  if (collection !== undefined && known.includes(collection)) {
    throw new NeutronError(
      405,
      "HTTPMethodNotAllowed",
      `The method ${method} is not allowed for this resource.`,
    );
  }
  throw new NeutronError(404, "HTTPNotFound", "The resource could not be found.");
}

export interface StubOptions {
  host?: string;
  port?: number;
  /** Keystone's base URL (without /v3): tokens are checked there when set. */
  keystone?: string;
  /** Owner of the premade networks, and of everything when tokens are not checked. */
  projectId?: string;
  /** Appends "time method path?query status ms [request body] [error body]" per request. */
  logFile?: string;
}

export interface RunningStub {
  url: string;
  state: NeutronState;
  close(): Promise<void>;
}

/** Checks tokens against Keystone, remembering each one until it expires. */
class TokenChecker {
  private readonly cache = new Map<string, { projectId: string; expires: number }>();
  constructor(private readonly keystone: string) {}

  async project(token: string): Promise<string | undefined> {
    const hit = this.cache.get(token);
    if (hit !== undefined && hit.expires > Date.now()) return hit.projectId;
    const res = await fetch(`${this.keystone}/v3/auth/tokens`, {
      headers: { "X-Auth-Token": token, "X-Subject-Token": token },
    });
    if (res.status !== 200) return undefined;
    const body = (await res.json()) as { token?: { project?: { id?: string }; expires_at?: string } };
    const projectId = body.token?.project?.id ?? "";
    const expires = Math.min(Date.parse(body.token?.expires_at ?? "") || 0, Date.now() + 600_000);
    this.cache.set(token, { projectId, expires });
    return projectId;
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

export async function startNeutronStub(opts: StubOptions = {}): Promise<RunningStub> {
  const state = new NeutronState(opts.projectId ?? "00000000000000000000000000000000");
  const tokens =
    opts.keystone === undefined ? undefined : new TokenChecker(opts.keystone.replace(/\/+$/, ""));
  const log = (line: string) => {
    if (opts.logFile !== undefined) appendFileSync(opts.logFile, `${line}\n`);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const started = Date.now();
    const method = req.method ?? "GET";
    const url = new URL(req.url ?? "/", `http://${req.headers.host ?? "localhost"}`);
    let reply: Reply;
    let text = "";
    try {
      text = await readBody(req);
      let body: Json = {};
      if (text.trim() !== "") {
        try {
          body = JSON.parse(text) as Json;
        } catch {
          throw badRequest("Malformed JSON in request body.");
        }
      }
      let projectId = state.projectId;
      const isVersions = url.pathname === "/" || url.pathname === "";
      if (tokens !== undefined && !isVersions) {
        const token = req.headers["x-auth-token"];
        const checked = typeof token === "string" ? await tokens.project(token) : undefined;
        if (checked === undefined) {
          throw new NeutronError(401, "HTTPUnauthorized", "Authentication required");
        }
        if (checked !== "") projectId = checked;
      }
      reply = route(state, method, url, body, projectId);
    } catch (err) {
      if (err instanceof NeutronError) {
        reply = {
          status: err.status,
          body: { NeutronError: { type: err.type, message: err.message, detail: "" } },
        };
      } else {
        reply = {
          status: 500,
          body: { NeutronError: { type: "HTTPInternalServerError", message: String(err), detail: "" } },
        };
      }
    }
    const payload = reply.body === undefined ? "" : JSON.stringify(reply.body);
    res.writeHead(reply.status, {
      "Content-Type": "application/json",
      "Content-Length": Buffer.byteLength(payload),
      "X-Openstack-Request-Id": `req-${randomUUID()}`,
    });
    res.end(payload);
    const sent = text.trim() === "" ? "" : ` ${text.replace(/\s+/g, " ").slice(0, 400)}`;
    const error = reply.status >= 400 ? ` ${payload.slice(0, 200)}` : "";
    log(
      `${new Date().toISOString()} ${method} ${url.pathname}${url.search} ${reply.status} ${Date.now() - started}ms${sent}${error}`,
    );
  };

  const server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", () => resolve());
  });
  const addr = server.address() as AddressInfo;
  return {
    url: `http://${addr.address}:${addr.port}`,
    state,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? undefined : process.argv[i + 1];
}

// Serves only when given --port: node's test runner also loads every file under dist/test.
if (arg("port") !== undefined) {
  const stub = await startNeutronStub({
    host: arg("host") ?? "127.0.0.1",
    port: Number(arg("port")),
    keystone: arg("keystone"),
    projectId: arg("project-id"),
    logFile: arg("log"),
  });
  process.stdout.write(`neutron stub listening on ${stub.url}\n`);
  const stop = () => void stub.close().then(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
