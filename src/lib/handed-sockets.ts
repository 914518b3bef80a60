/**
 * Sockets that outlive the process holding them. When the agent hands over to its
 * successor (a new zonal version, src/agent/handoff.ts), each socket it listens on
 * and each connection it forwards goes along as a file descriptor, so nothing is
 * refused or cut in between: the kernel keeps a socket open while either process
 * holds it, and queues new connections until the successor accepts them.
 *
 * A listener made with `listenOptions` takes the descriptor inherited for its address
 * and port, if there is one; `track` records it for the next handover.
 *
 * Node has no public way to read a socket's descriptor; `fdOf` reads the handle's
 * `fd` (libuv's, on Linux), and answers undefined rather than guess.
 */
import type { Server } from "node:net";

const live = new Map<string, Server>();
const inherited = new Map<string, number>();

export const socketKey = (host: string, port: number): string => `${host}:${port}`;

/** The descriptor under a server or socket, when Node exposes one. */
export function fdOf(x: object): number | undefined {
  const fd = (x as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === "number" && fd >= 0 ? fd : undefined;
}

/** The listening descriptors this process inherited, by `host:port` (the successor, once, at start). */
export function inheritListeners(fds: Record<string, number>): void {
  for (const [k, fd] of Object.entries(fds)) inherited.set(k, fd);
}

/** How to listen on host:port: on the inherited descriptor for it (taken once), or afresh. */
export function listenOptions(
  host: string,
  port: number,
  extra: { exclusive?: boolean } = {},
): { fd: number } | { host: string; port: number; exclusive?: boolean } {
  const k = socketKey(host, port);
  const fd = inherited.get(k);
  if (fd === undefined) return { host, port, ...extra };
  inherited.delete(k);
  return { fd };
}

/** Records a listening server for the next handover, until it closes. */
export function track(host: string, port: number, server: Server): void {
  const k = socketKey(host, port);
  live.set(k, server);
  server.once("close", () => {
    if (live.get(k) === server) live.delete(k);
  });
}

/** Every listening descriptor this process holds now, by `host:port`. */
export function liveListeners(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, server] of live) {
    const fd = fdOf(server);
    if (fd !== undefined) out[k] = fd;
  }
  return out;
}

/**
 * Stops accepting on every tracked listener (once a successor accepts on the same
 * sockets: this process's copies close, the sockets stay open in the successor).
 * Connections accepted already are not touched.
 */
export function closeListeners(): void {
  for (const server of [...live.values()]) server.close();
  live.clear();
}

/** Inherited descriptors nobody listened on (an address dropped meanwhile): forgotten here, to be closed. */
export function takeUnclaimed(): number[] {
  const fds = [...inherited.values()];
  inherited.clear();
  return fds;
}
