/** How a TCP connection attempt ends, for tests of the local cloud's network. */
import { connect } from "node:net";

/**
 * How a TCP connect from `from` (or 127.0.0.1) to host:port ends within `ms`:
 * "connected", "refused" (a reset), "silent" (no answer in time), or the error's code.
 */
export function tryConnect(host: string, port: number, from?: string, ms = 1500): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host, port, ...(from ? { localAddress: from } : {}) });
    const timer = setTimeout(() => {
      s.destroy();
      resolve("silent");
    }, ms);
    s.once("connect", () => {
      clearTimeout(timer);
      s.destroy();
      resolve("connected");
    });
    s.once("error", (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(err.code === "ECONNREFUSED" ? "refused" : (err.code ?? err.message));
    });
  });
}
