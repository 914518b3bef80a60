/** Boots VMs with ready agents and simple jobs, for tests. */
import { AgentClient } from "../agent/client.js";
import type { CreateVmRequest, Vm } from "../cloud/cloud.js";
import type { LocalCloudClient } from "../cloud/local/client.js";
import { readFileSync } from "node:fs";
import { isZombie, listProcesses } from "../lib/proc.js";
import { waitFor } from "../lib/sleep.js";

export interface BootedVm {
  vm: Vm;
  agent: AgentClient;
  token: string;
}

export async function bootVm(
  cloud: LocalCloudClient,
  req: Partial<CreateVmRequest> & { zone: string },
): Promise<BootedVm> {
  const { vm, agentToken } = await cloud.createVm({ vmType: { cpu: 1, ramMb: 256 }, ...req });
  const agent = new AgentClient({
    address: vm.address,
    port: vm.agentPort,
    token: agentToken,
    timeoutMs: 3000,
  });
  await waitFor(() => agent.info(), { timeoutMs: 20_000, intervalMs: 50, what: `agent of ${vm.id}` });
  return { vm, agent, token: agentToken };
}

/** A `process` job running a node script (the agent's own node binary). */
export function nodeJob(
  name: string,
  script: string,
  healthPort?: number,
  extra: Record<string, unknown> = {},
) {
  return {
    name,
    type: "process",
    config: {
      command: [process.execPath, "-e", script],
      ...(healthPort ? { health_check: { tcp: { port: healthPort } } } : {}),
    },
    ...extra,
  };
}

/** A TCP echo server on the VM's address. */
export const ECHO_SERVER = (port: number) =>
  `require("net").createServer((s) => { s.on("error", () => {}); s.pipe(s); }).listen(${port}, process.env.ZONAL_ADDRESS)`;

/** An HTTP server on the VM's address answering with its VM id. */
export const HTTP_SERVER = (port: number) =>
  `require("http").createServer((q, s) => s.end("hello from " + process.env.ZONAL_VM_ID)).listen(${port}, process.env.ZONAL_ADDRESS)`;

/**
 * Each job's process on a VM of the local cloud, seen in /proc as `pid@start time`
 * (a PID alone gets reused): the process carrying the VM's and the job's names in
 * its environment whose parent does not (its own children do).
 */
export function jobProcesses(vmId: string): Record<string, string> {
  const envOf = (pid: number): string[] => {
    try {
      return readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
    } catch {
      return [];
    }
  };
  const out: Record<string, string> = {};
  for (const st of listProcesses()) {
    if (isZombie(st)) continue;
    const env = envOf(st.pid);
    if (!env.includes(`ZONAL_VM_ID=${vmId}`)) continue;
    const job = env.find((e) => e.startsWith("ZONAL_JOB_NAME="));
    if (!job || env.some((e) => e.startsWith("ZONAL_HOOK=")) || envOf(st.ppid).includes(job)) continue;
    const name = job.slice("ZONAL_JOB_NAME=".length);
    if (out[name]) throw new Error(`VM ${vmId}: two processes of job ${name} (${out[name]}, ${st.pid})`);
    out[name] = `${st.pid}@${st.startTime}`;
  }
  return out;
}
