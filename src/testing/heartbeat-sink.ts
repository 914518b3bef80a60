/** An HTTP server that records the heartbeats agents send to it. */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Heartbeat } from "../agent/heartbeat.js";

export interface ReceivedHeartbeat {
  at: number;
  token: string | undefined;
  beat: Heartbeat;
}

export class HeartbeatSink {
  readonly received: ReceivedHeartbeat[] = [];
  private server: Server | undefined;
  url = "";

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
        try {
          this.received.push({ at: Date.now(), token, beat: JSON.parse(body) as Heartbeat });
        } catch {
          /* ignore malformed */
        }
        res.end("{}");
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/heartbeats`;
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
