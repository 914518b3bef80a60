/**
 * The agent's entry point: reads its settings (the one-time bootstrap on OpenStack),
 * restores its jobs, serves its API on the VM's address and sends heartbeats until
 * SIGTERM. It wires the pieces; agent.ts is the agent itself, api.ts its routes.
 */
import { Conflict, errorMessage } from "../lib/errors.js";
import { isAlive } from "../lib/proc.js";
import { createLineLogger } from "../lib/line-log.js";
import { sleep } from "../lib/sleep.js";
import { Agent } from "./agent.js";
import { buildAgentApi } from "./api.js";
import { HeartbeatSender } from "./heartbeat.js";
import { settingsFor } from "./settings.js";
import { inheritListeners, listenOptions, takeUnclaimed, track } from "../lib/handed-sockets.js";
import { readHandoff, reportReady } from "./handoff.js";
import { handoverRefusal, notifyMainPid, notifyReady } from "./service-manager.js";

/**
 * `zonal agent --vm-dir DIR`: runs until SIGTERM. With `--adopt FILE` it is the
 * successor of the agent that wrote FILE (handoff.ts): it adopts that agent's jobs,
 * addresses and sockets instead of restoring a stopped spec.
 */
export async function runAgent(vmDir: string, adoptFrom?: string): Promise<void> {
  const bootLog = createLineLogger("agent");
  const settings = await settingsFor(vmDir, (line) => bootLog.info(line));
  const log = bootLog.child({ vm: settings.vmId });
  const handoff = adoptFrom !== undefined ? readHandoff(adoptFrom) : undefined;
  if (handoff) inheritListeners(handoff.listeners);
  const agent = new Agent(settings, log);
  if (handoff) await agent.adopt(handoff);
  else await agent.restore();
  let heartbeat: HeartbeatSender | undefined;
  const app = buildAgentApi(agent, {
    onServerError: (err, method, path) =>
      log.error({ err: errorMessage(err), method, path }, "request failed"),
    handOver: async () => {
      const refusal = handoverRefusal();
      if (refusal) throw new Conflict(refusal);
      const r = await agent.handOver({
        pauseHeartbeats: () => heartbeat?.stop(),
        resumeHeartbeats: () => heartbeat?.start(),
      });
      // The successor serves everything now. Under systemd it becomes the main process
      // before this one exits; if systemd could not be told, this process stays (it is
      // still the main process, holding nothing): exiting would restart the service.
      try {
        await notifyMainPid(r.pid);
      } catch (err) {
        log.error(
          { err: errorMessage(err), successor: r.pid },
          "handed over, but systemd still has this process as the main one: it stays, idle",
        );
        // Idle: its kept-alive API connections close (the successor answers on new ones),
        // and it lives as long as the successor, so that systemd restarts the service
        // when the agent that really serves it is gone.
        setTimeout(() => {
          app.server.close();
          app.server.closeAllConnections();
        }, 200);
        setInterval(() => {
          if (isAlive(r.pid)) return;
          log.error(
            { successor: r.pid },
            "the agent this one handed over to is gone: exiting for systemd to restart",
          );
          process.exit(1);
        }, 1000);
        return r;
      }
      setTimeout(() => process.exit(0), 200);
      return r;
    },
  });
  for (let attempt = 1; ; attempt++) {
    try {
      await app.listen(listenOptions(settings.address, settings.agentPort));
      track(settings.address, settings.agentPort, app.server);
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
  // Under systemd: the start is over. A successor says nothing; its predecessor tells
  // systemd it is the main process once it serves (service-manager.ts).
  if (!handoff) await notifyReady();
  if (handoff && adoptFrom)
    reportReady(adoptFrom, takeUnclaimed(), (binding, client, upstream) =>
      agent.addresses.adoptConnection(binding, client, upstream),
    );
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
