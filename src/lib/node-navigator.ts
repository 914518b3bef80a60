/**
 * `globalThis.navigator` as node 21 and later define it, for node 20. The pg driver
 * asks, when it loads, whether it runs on Cloudflare: without a `navigator` it builds a
 * `new Response(...)` to find out, which loads node's whole fetch stack (undici, http2,
 * zlib, web streams, worker_threads): about 5 MiB more in every PostgreSQL member's
 * agent (bench/agent-memory.ts). Imported just before pg by every module that imports
 * it, so it runs first in the agent's bundle too.
 */
const g = globalThis as { navigator?: unknown };
if (g.navigator === undefined) {
  Object.defineProperty(g, "navigator", {
    value: Object.freeze({ userAgent: `Node.js/${process.versions.node.split(".")[0]}` }),
    configurable: true,
    enumerable: false,
    writable: true,
  });
}
