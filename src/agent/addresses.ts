/**
 * Virtual addresses on a VM (local cloud): for each address the VM holds, the agent
 * listens on (address, port) for each of the jobs' ports and forwards connections
 * to the same port on the VM's own address. Binding succeeds only once no other VM
 * listens there (the old holder fenced or gone); until then it is retried, and the
 * address is reported `waiting` with the reason.
 */
import { createServer, connect, type Server, type Socket } from "node:net";
import { errorMessage } from "../lib/errors.js";

export interface AddressSpec {
  address: string;
  ports: number[];
}

export interface AddressStatus {
  address: string;
  port: number;
  state: "bound" | "waiting";
  error?: string;
}

interface Binding {
  address: string;
  port: number;
  server?: Server;
  state: "bound" | "waiting";
  error?: string;
  timer?: NodeJS.Timeout;
  closed: boolean;
  sockets: Set<Socket>;
}

const key = (address: string, port: number) => `${address}:${port}`;

export class AddressForwarder {
  private readonly bindings = new Map<string, Binding>();

  constructor(
    private readonly vmAddress: string,
    private readonly retryMs = 200,
  ) {}

  /**
   * Serves exactly these addresses and ports from now on. One no longer wanted stops
   * taking connections at once; the connections it has are cut too, unless
   * `lingerMs` lets them finish for up to that long (a planned handover of a load
   * balancer's VIP: requests in flight complete on the old holder).
   */
  set(specs: AddressSpec[], o: { lingerMs?: number } = {}): void {
    const wanted = new Set(specs.flatMap((s) => s.ports.map((p) => key(s.address, p))));
    for (const [k, b] of this.bindings) {
      if (!wanted.has(k)) {
        this.stop(b, o.lingerMs ?? 0);
        this.bindings.delete(k);
      }
    }
    for (const s of specs) {
      for (const port of s.ports) {
        if (this.bindings.has(key(s.address, port))) continue;
        const b: Binding = { address: s.address, port, state: "waiting", closed: false, sockets: new Set() };
        this.bindings.set(key(s.address, port), b);
        this.bind(b);
      }
    }
  }

  statuses(): AddressStatus[] {
    return [...this.bindings.values()].map((b) => ({
      address: b.address,
      port: b.port,
      state: b.state,
      ...(b.error ? { error: b.error } : {}),
    }));
  }

  close(): void {
    for (const b of this.bindings.values()) this.stop(b);
    this.bindings.clear();
  }

  private bind(b: Binding): void {
    if (b.closed) return;
    const server = createServer((client) => this.forward(b, client));
    server.once("error", (err) => {
      b.state = "waiting";
      b.error = errorMessage(err);
      server.close();
      b.timer = setTimeout(() => this.bind(b), this.retryMs);
    });
    server.listen({ host: b.address, port: b.port, exclusive: true }, () => {
      if (b.closed) return void server.close();
      b.server = server;
      b.state = "bound";
      delete b.error;
    });
  }

  private forward(b: Binding, client: Socket): void {
    const upstream = connect({ host: this.vmAddress, port: b.port });
    b.sockets.add(client);
    b.sockets.add(upstream);
    const done = () => {
      client.destroy();
      upstream.destroy();
      b.sockets.delete(client);
      b.sockets.delete(upstream);
    };
    client.on("error", done).on("close", done);
    upstream.on("error", done).on("close", done);
    client.pipe(upstream).pipe(client);
  }

  private stop(b: Binding, lingerMs = 0): void {
    b.closed = true;
    if (b.timer) clearTimeout(b.timer);
    b.server?.close();
    const cut = () => {
      for (const s of b.sockets) s.destroy();
    };
    if (lingerMs > 0 && b.sockets.size > 0) setTimeout(cut, lingerMs).unref();
    else cut();
  }
}
