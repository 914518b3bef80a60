/** An HTTP (or, given a certificate, HTTPS) server that records the heartbeats agents send to it. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { Heartbeat } from "../agent/heartbeat.js";

/** A well-formed heartbeat of an idle VM (no instance, no job), for tests that post one. */
export function idleHeartbeat(vmId: string): Heartbeat {
  const now = new Date().toISOString();
  return {
    vmId,
    seq: 1,
    sentAt: now,
    agentStartedAt: now,
    specVersion: null,
    instance: null,
    jobsState: "none",
    addresses: [],
    jobs: [],
    disk: { persistent: null, ephemeral: { usedBytes: 0, freeBytes: 0, totalBytes: 0 } },
    load: [0, 0, 0],
  };
}

export interface ReceivedHeartbeat {
  at: number;
  token: string | undefined;
  beat: Heartbeat;
  /** The address the heartbeat came from. */
  from: string | undefined;
}

export class HeartbeatSink {
  readonly received: ReceivedHeartbeat[] = [];
  private server: Server | undefined;
  url = "";

  /** Listens on `host` (127.0.0.1); with `tls` over HTTPS (the certificate must name the host). */
  async start(tls?: { cert: string; key: string }, host = "127.0.0.1"): Promise<this> {
    const handle = (req: IncomingMessage, res: ServerResponse) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
        try {
          this.received.push({
            at: Date.now(),
            token,
            beat: JSON.parse(body) as Heartbeat,
            from: req.socket.remoteAddress,
          });
        } catch {
          /* ignore malformed */
        }
        res.end("{}");
      });
    };
    this.server = tls ? createHttpsServer(tls, handle) : createServer(handle);
    await new Promise<void>((resolve) => this.server!.listen(0, host, resolve));
    const port = (this.server.address() as AddressInfo).port;
    this.url = `${tls ? "https" : "http"}://${host}:${port}/heartbeats`;
    return this;
  }

  from(vmId: string, since = 0): ReceivedHeartbeat[] {
    return this.received.filter((r) => r.beat.vmId === vmId && r.at >= since);
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
