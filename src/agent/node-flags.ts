/**
 * Node's flags for an agent, on every cloud (every VM pays for its agent's memory;
 * bench/agent-memory.ts measures it):
 * - `--max-semi-space-size=1`: V8's semi-spaces at 1 MiB instead of 16; an agent
 *   allocates little.
 * - `--no-opt`: no optimizing compiler (TurboFan). The agent's JavaScript is glue around
 *   sockets, timers and child processes; its interpreter and baseline code do that
 *   with no more CPU (measured: 100–115 ticks per 30 s on a PostgreSQL member either
 *   way), and it spares the compiler's code pages and its optimized code: about 4 MiB.
 * - `--max-old-space-size=64`: a heap bound that keeps V8 collecting instead of
 *   growing; an agent's live heap is about 8–10 MiB, and its largest body (4 MiB) fits.
 */
export const AGENT_NODE_FLAGS: readonly string[] = [
  "--max-semi-space-size=1",
  "--no-opt",
  "--max-old-space-size=64",
];
