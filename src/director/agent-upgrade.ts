/**
 * `zonal upgrade-agents`: every agent of a deployment hands over to a new agent
 * started from the zonal files on its VM now — the version the control plane runs —
 * while its jobs run on (src/agent/handoff.ts). One VM at a time: warm standby VMs
 * first, then each group's followers, its leader (primary, writer, active LB node)
 * last, so a handover that goes wrong meets a follower first. Each step checks that
 * the new agent answers with the new version and that every job kept its process
 * (same PID); anything else stops the task and says which VM and why.
 *
 * Idempotent: an agent that runs the control plane's version already is left alone,
 * so a task resumed after a control-plane restart goes on where it stopped.
 */
import { errorMessage, Unavailable } from "../lib/errors.js";
import { sleep } from "../lib/sleep.js";
import { ZONAL_VERSION } from "../lib/version.js";
import type { AgentClient } from "../agent/client.js";
import type { InstanceRecord } from "../store/instances.js";
import { agentClient, type DirectorContext } from "./context.js";
import type { TaskReporter } from "./events.js";
import { DeployFailed } from "./executor.js";
import type { RollingControl } from "./rolling.js";
import { selectTargets, type Target } from "./targets.js";

/** How long a new agent may take to answer after its predecessor handed over. */
const ANSWER_TIMEOUT_MS = 30_000;

export interface AgentVm {
  /** GROUP/INDEX, or `standby GROUP/ZONE`. */
  key: string;
  group: string;
  /** `m<index>` for an instance (the member name clusters use); null for a standby. */
  member: string | null;
  address: string | null;
  agentPort: number | null;
  agentToken: string | null;
}

/**
 * The order to hand agents over in (pure): standbys first, then group by group
 * (by name) each group's members by index, its leader last.
 */
export function agentUpgradeOrder(vms: AgentVm[], leaders: Map<string, string | null>): AgentVm[] {
  const rank = (v: AgentVm): [number, string, number, number] => [
    v.member === null ? 0 : 1,
    v.group,
    v.member !== null && leaders.get(v.group) === v.member ? 1 : 0,
    v.member === null ? 0 : Number(v.member.slice(1)),
  ];
  return [...vms].sort((a, b) => {
    const [x, y] = [rank(a), rank(b)];
    return (
      x[0] - y[0] || x[1].localeCompare(y[1]) || x[2] - y[2] || x[3] - y[3] || a.key.localeCompare(b.key)
    );
  });
}

/** Job name → PID, for the jobs that have a process. */
async function jobPids(agent: AgentClient): Promise<Map<string, number>> {
  const s = await agent.state();
  return new Map(s.jobs.flatMap((j) => (j.pid !== undefined ? [[j.name, j.pid] as const] : [])));
}

/** Hands one VM's agent over; returns the sentence for the task's events. Rejects saying what went wrong. */
async function upgradeOne(ctx: DirectorContext, vm: AgentVm): Promise<string> {
  if (!vm.address || !vm.agentPort || !vm.agentToken) throw new Unavailable("it has no VM to talk to");
  const agent = agentClient(
    ctx,
    { address: vm.address, agentPort: vm.agentPort, agentToken: vm.agentToken },
    10_000,
  );
  const before = await agent.info();
  if (before.agentVersion === ZONAL_VERSION) return `agent runs ${ZONAL_VERSION} already`;
  const pids = await jobPids(agent);
  const t0 = Date.now();
  const r = await agent.handOver();
  let now = await agent.info().catch(() => undefined);
  for (const deadline = Date.now() + ANSWER_TIMEOUT_MS; now?.pid !== r.pid;) {
    if (Date.now() > deadline)
      throw new Unavailable(`the new agent (pid ${r.pid}) did not answer within ${ANSWER_TIMEOUT_MS} ms`);
    await sleep(100);
    now = await agent.info().catch(() => undefined);
  }
  const tookMs = Date.now() - t0;
  if (now.agentVersion !== ZONAL_VERSION)
    throw new Unavailable(
      `the new agent runs ${now.agentVersion}, not ${ZONAL_VERSION}: the VM's zonal files are not the control plane's version`,
    );
  const after = await jobPids(agent);
  const changed = [...pids].filter(([job, pid]) => after.get(job) !== pid);
  if (changed.length > 0)
    throw new Unavailable(
      `jobs lost their process in the handover: ${changed.map(([j, p]) => `${j} (pid ${p} -> ${after.get(j) ?? "none"})`).join(", ")}`,
    );
  const kept = [...pids].map(([j, p]) => `${j} ${p}`).join(", ");
  return `agent ${before.agentVersion} -> ${now.agentVersion}, pid ${before.pid} -> ${now.pid} in ${tookMs} ms; jobs kept their processes${kept ? ` (${kept})` : ""}`;
}

/** The task: hands over the agents of `deployment` (the target's instances; with no target, its standbys too). */
export async function upgradeAgents(
  ctx: DirectorContext,
  rolling: RollingControl | undefined,
  report: TaskReporter,
  deployment: string,
  target: Target,
): Promise<string> {
  const instances = selectTargets(await ctx.store.instances.list(deployment), target, deployment);
  const standbys = target.group === undefined ? await ctx.store.standbys.list(deployment) : [];
  const vms: AgentVm[] = [
    ...standbys.map((s) => ({
      key: `standby ${s.group}/${s.zone}`,
      group: s.group,
      member: null,
      address: s.address,
      agentPort: s.agentPort,
      agentToken: s.agentToken,
    })),
    ...instances.map((i: InstanceRecord) => ({
      key: `${i.group}/${i.index}`,
      group: i.group,
      member: `m${i.index}`,
      address: i.address,
      agentPort: i.agentPort,
      agentToken: i.agentToken,
    })),
  ];
  const leaders = new Map<string, string | null>();
  for (const g of new Set(instances.map((i) => i.group)))
    leaders.set(g, (await rolling?.roles(deployment, g))?.leader ?? null);
  const order = agentUpgradeOrder(vms, leaders);
  await report.event(
    "info",
    "plan",
    `hand ${order.length} agent(s) over to ${ZONAL_VERSION}, one at a time: ${order.map((v) => v.key).join(", ")}`,
  );
  let done = 0;
  let upgraded = 0;
  for (const vm of order) {
    try {
      const sentence = await upgradeOne(ctx, vm);
      if (!sentence.endsWith("already")) upgraded += 1;
      await report.event("info", "agent", `${vm.key}: ${sentence}`, vm.member ? vm.key : undefined);
    } catch (err) {
      await report.event("error", "agent", `${vm.key}: ${errorMessage(err)}`, vm.member ? vm.key : undefined);
      throw new DeployFailed(
        `upgrade-agents stopped at ${vm.key}: ${errorMessage(err)} (${done} of ${order.length} done; the rest run their old agent)`,
      );
    }
    await report.progress(++done, order.length);
  }
  return `${upgraded} agent(s) of ${deployment} handed over to ${ZONAL_VERSION}; ${order.length - upgraded} ran it already`;
}
