/**
 * Node's flags for an agent, on every cloud: a small young generation (V8's
 * semi-spaces at 1 MiB instead of 16): an agent allocates little, and every VM pays
 * for its heap (bench/agent-memory.ts).
 */
export const AGENT_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=1"];
