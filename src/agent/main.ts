/**
 * The agent's entry point: reads its settings (the one-time bootstrap on OpenStack),
 * restores its jobs, serves its API on the VM's address and sends heartbeats until
 * SIGTERM. It wires the pieces; agent.ts is the agent itself, api.ts its routes.
 */
import { errorMessage } from "../lib/errors.js";
import { createLogger } from "../lib/log.js";
import { sleep } from "../lib/sleep.js";
import { Agent } from "./agent.js";
import { buildAgentApi } from "./api.js";
import { HeartbeatSender } from "./heartbeat.js";
import { settingsFor } from "./settings.js";

/** `zonal agent --vm-dir DIR`: runs until SIGTERM. */
export async function runAgent(vmDir: string): Promise<void> {
  const bootLog = createLogger("agent");
  const settings = await settingsFor(vmDir, (line) => bootLog.info(line));
  const log = bootLog.child({ vm: settings.vmId });
  const agent = new Agent(settings, log);
  await agent.restore();
  const app = buildAgentApi(agent);
  for (let attempt = 1; ; attempt++) {
    try {
      await app.listen({ host: settings.address, port: settings.agentPort });
      break;
    } catch (err) {
      if (attempt >= 50) throw err;
      log.warn({ err: errorMessage(err) }, "agent API cannot listen yet; retrying");
      await sleep(200);
    }
  }
  log.info(
    { address: settings.address, port: settings.agentPort, tls: settings.tls !== undefined },
    "agent listening",
  );
  let heartbeat: HeartbeatSender | undefined;
  if (settings.heartbeat) {
    let lastError = "";
    heartbeat = new HeartbeatSender({
      url: settings.heartbeat.url,
      token: settings.token,
      intervalMs: settings.heartbeat.intervalMs,
      ...(settings.tls ? { ca: settings.tls.ca } : {}),
      build: (seq) => agent.heartbeat(seq),
      onError: (err) => {
        const msg = errorMessage(err);
        if (msg !== lastError) log.warn({ err: msg }, "heartbeat not delivered");
        lastError = msg;
      },
    });
    heartbeat.start();
  }
  const shutdown = async (signal: string) => {
    log.info({ signal }, "agent stopping its jobs");
    heartbeat?.stop();
    await agent.shutdown();
    await app.close();
    process.exit(0);
  };
  process.once("SIGTERM", () => void shutdown("SIGTERM"));
  process.once("SIGINT", () => void shutdown("SIGINT"));
}
