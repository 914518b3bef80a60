/**
 * Virtual addresses on a VM (local cloud): for each address the VM holds, the agent
 * listens on (address, port) for each of the jobs' ports and forwards connections
 * to the same port on the VM's own address. Binding succeeds only once no other VM
 * listens there (the old holder fenced or gone); until then it is retried, and the
 * address is reported `waiting` with the reason.
 */
import { createServer, connect, type Server, type Socket } from "node:net";
import { errorMessage } from "../lib/errors.js";
import { listenOptions, socketKey, track } from "../lib/handed-sockets.js";
import { sleep } from "../lib/sleep.js";

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

/** A forwarded connection on its way to a successor agent: its binding (`address:port`) and both ends, quiet. */
export interface QuiescedConnection {
  binding: string;
  client: Socket;
  upstream: Socket;
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
  pairs: Set<{ client: Socket; upstream: Socket }>;
}

const key = socketKey;

export class AddressForwarder {
  private readonly bindings = new Map<string, Binding>();
  /** What `set` was last asked to serve (a successor serves the same). */
  private wanted: AddressSpec[] = [];

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
    this.wanted = specs;
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
        const b: Binding = {
          address: s.address,
          port,
          state: "waiting",
          closed: false,
          sockets: new Set(),
          pairs: new Set(),
        };
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

  /**
   * Cuts every connection forwarded so far; the addresses stay served (a database
   * writer stepping down in a planned handover: nobody goes on writing through it,
   * and a new connection meets its read-only server until the new writer binds).
   */
  cutConnections(): void {
    for (const b of this.bindings.values()) for (const s of b.sockets) s.destroy();
  }

  /** The addresses asked for, as `set` took them. */
  specs(): AddressSpec[] {
    return this.wanted;
  }

  /**
   * For a handover to a successor agent, once it accepts on the listeners (and this
   * agent no longer does): every forwarded connection stops moving data — reading
   * stops; what was read is written on and flushed to the kernel — and is taken out
   * of this forwarder, to be sent to the successor. Data that arrives afterwards
   * waits in the kernel for the successor. A connection to the VM still being made is
   * waited for (up to a second).
   */
  async quiesce(): Promise<QuiescedConnection[]> {
    const pending = () =>
      [...this.bindings.values()].some((b) => [...b.pairs].some((p) => p.upstream.connecting));
    for (let i = 0; i < 100 && pending(); i++) await sleep(10);
    const out: QuiescedConnection[] = [];
    for (const [k, b] of this.bindings) {
      for (const pair of b.pairs) {
        const { client, upstream } = pair;
        b.pairs.delete(pair);
        b.sockets.delete(client);
        b.sockets.delete(upstream);
        client.unpipe(upstream);
        upstream.unpipe(client);
        for (const s of [client, upstream]) {
          s.removeAllListeners("close");
          s.removeAllListeners("error");
          s.on("error", () => undefined);
          // Reading stops in libuv; the handle still says it reads, so nothing restarts it.
          (s as unknown as { _handle?: { readStop?: () => number } })._handle?.readStop?.();
        }
        moveBuffered(client, upstream);
        moveBuffered(upstream, client);
        out.push({ binding: k, client, upstream });
      }
    }
    const unflushed = (c: QuiescedConnection) => c.client.writableLength > 0 || c.upstream.writableLength > 0;
    for (let i = 0; i < 200 && out.some(unflushed); i++) await sleep(10);
    // One whose peer reads nothing for 2 s is cut here: sent on, it would lose what is not flushed.
    for (const c of out.filter(unflushed)) {
      c.client.destroy();
      c.upstream.destroy();
    }
    return out.filter((c) => !unflushed(c) && !c.client.destroyed && !c.upstream.destroyed);
  }

  /** A successor takes over: serves `specs` (on the listening descriptors it inherited). */
  adopt(specs: AddressSpec[]): void {
    this.set(specs);
  }

  /** A successor forwards a connection its predecessor quiesced and sent, as before. */
  adoptConnection(binding: string, client: Socket, upstream: Socket): void {
    const b = this.bindings.get(binding);
    if (!b) {
      client.destroy();
      upstream.destroy();
      return;
    }
    this.pipe(b, client, upstream);
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
    server.listen(listenOptions(b.address, b.port, { exclusive: true }), () => {
      if (b.closed) return void server.close();
      track(b.address, b.port, server);
      b.server = server;
      b.state = "bound";
      delete b.error;
    });
  }

  private forward(b: Binding, client: Socket): void {
    this.pipe(b, client, connect({ host: this.vmAddress, port: b.port }));
  }

  private pipe(b: Binding, client: Socket, upstream: Socket): void {
    const pair = { client, upstream };
    b.sockets.add(client);
    b.sockets.add(upstream);
    b.pairs.add(pair);
    const done = () => {
      client.destroy();
      upstream.destroy();
      b.sockets.delete(client);
      b.sockets.delete(upstream);
      b.pairs.delete(pair);
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

/** Writes on what `from` read but nobody consumed yet (its readable buffer). */
function moveBuffered(from: Socket, to: Socket): void {
  for (let chunk = from.read() as Buffer | null; chunk !== null; chunk = from.read() as Buffer | null)
    to.write(chunk);
}
