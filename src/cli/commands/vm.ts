/** `zonal vm …`: talk to one VM's agent by hand (apply a spec, start, stop, state, logs). */
import { readFileSync } from "node:fs";
import { Command } from "commander";
import { parse as parseYaml } from "yaml";
import type { AgentState } from "../../agent/agent.js";
import { InvalidInput } from "../../lib/errors.js";
import { parseDuration } from "../../lib/duration.js";
import { agentFor } from "../context.js";
import { positiveInt, print, printJson, table } from "../output.js";

function printState(state: AgentState): void {
  print(`${state.vmId} ${state.address}: jobs ${state.jobsState}, spec ${state.specVersion ?? "-"}`);
  if (state.jobs.length > 0) {
    print(
      table(
        ["JOB", "TYPE", "STATE", "PID", "RESTARTS", "HEALTHY", "MESSAGE"],
        state.jobs.map((j) => [
          j.name,
          j.type,
          j.state,
          j.pid,
          j.restarts,
          j.healthy ? "yes" : "no",
          j.message,
        ]),
      ),
    );
  }
}

function readSpecFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new InvalidInput(`cannot read spec ${path}: ${(err as Error).message}`);
  }
  try {
    return parseYaml(text);
  } catch (err) {
    throw new InvalidInput(`spec ${path} is not valid YAML: ${(err as Error).message}`);
  }
}

export function vmCommand(): Command {
  const vm = new Command("vm").description(
    "talk to a VM's agent: apply a spec, start/stop jobs, state, logs",
  );
  vm.command("apply <vm> <spec-file>")
    .description("apply an agent spec (YAML or JSON); jobs stay stopped until `zonal vm start`")
    .option("--json", "print JSON")
    .action(async (id: string, file: string, o: { json?: boolean }, cmd: Command) => {
      const spec = readSpecFile(file);
      const result = await (await agentFor(cmd, id)).apply(spec);
      if (o.json) return printJson(result);
      if (result.restarted.length > 0) print(`restarted changed jobs: ${result.restarted.join(", ")}`);
      printState(result.state);
    });
  vm.command("start <vm>")
    .description("start the VM's jobs and wait until they run or fail")
    .option("--wait <duration>", "how long to wait", "60s")
    .option("--json", "print JSON")
    .action(async (id: string, o: { wait: string; json?: boolean }, cmd: Command) => {
      const waitMs = parseDuration(o.wait, "--wait");
      const state = await (await agentFor(cmd, id)).start(waitMs);
      if (o.json) return printJson(state);
      printState(state);
      if (state.jobsState !== "running") process.exitCode = 1;
    });
  vm.command("stop <vm>")
    .description("stop the VM's jobs (drain hooks run first)")
    .option("--no-drain", "skip drain hooks")
    .option("--json", "print JSON")
    .action(async (id: string, o: { drain: boolean; json?: boolean }, cmd: Command) => {
      const state = await (await agentFor(cmd, id)).stop({ drain: o.drain });
      if (o.json) return printJson(state);
      printState(state);
    });
  vm.command("state <vm>")
    .description("jobs, disks and load as the agent reports them")
    .option("--json", "print JSON")
    .action(async (id: string, o: { json?: boolean }, cmd: Command) => {
      const state = await (await agentFor(cmd, id)).state();
      if (o.json) return printJson(state);
      printState(state);
    });
  vm.command("restart <vm> <job>")
    .description("restart one job")
    .action(async (id: string, job: string, _o: unknown, cmd: Command) => {
      const status = await (await agentFor(cmd, id)).restartJob(job);
      print(`${job}: ${status.state}`);
    });
  vm.command("logs <vm> <job>")
    .description("a job's recent log lines")
    .option("-n, --lines <n>", "how many lines", positiveInt("--lines"), 100)
    .option("--json", "print JSON")
    .action(async (id: string, job: string, o: { lines: number; json?: boolean }, cmd: Command) => {
      const lines = await (await agentFor(cmd, id)).logs(job, o.lines);
      if (o.json) return printJson(lines);
      print(lines.join("\n"));
    });
  return vm;
}
