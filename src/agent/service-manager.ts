/**
 * The agent under systemd (the unit OpenStack VMs get: `Type=notify`,
 * `NotifyAccess=all`). An agent tells systemd, once it serves, that it is ready and
 * that it is the service's main process. For the first agent that only ends its start;
 * for the successor of a handover it moves the main PID to the new process before the
 * old one exits, so systemd neither restarts the service (two agents) nor loses track
 * of it (the successor, reparented to PID 1 when the old agent exits, is still watched).
 *
 * `systemd-notify --pid=N` sends the message with N's credentials, so systemd
 * attributes it to this process, alive, and not to the short-lived tool; without
 * `--no-block` the tool returns once systemd has processed it.
 */
import { execFile } from "node:child_process";
import { Unavailable } from "../lib/errors.js";

export const NOTIFY_TIMEOUT_MS = 5_000;

/** Whether a service manager waits for this agent's notification (`NOTIFY_SOCKET`). */
export function underServiceManager(env: NodeJS.ProcessEnv = process.env): boolean {
  return (env.NOTIFY_SOCKET ?? "") !== "";
}

/**
 * A systemd service whose unit cannot follow a handover: run by systemd
 * (`INVOCATION_ID`) but not told to wait for a notification (a unit of an older zonal,
 * `Type=simple`): its main process exiting would restart the service.
 */
export function handoverRefusal(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (!env.INVOCATION_ID || underServiceManager(env)) return undefined;
  return "this agent runs as a systemd service whose unit is not Type=notify with NotifyAccess=all (an older zonal wrote it): systemd would restart it when this process exits and leave two agents; recreate the VM to upgrade it";
}

/**
 * Tells the service manager this process is ready and is the service's main process.
 * Does nothing without one. Rejects (Unavailable) when the notification could not be
 * sent: a successor must then not take over.
 */
export async function notifyReady(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  if (!underServiceManager(env)) return;
  await new Promise<void>((resolve, reject) => {
    execFile(
      "systemd-notify",
      ["--ready", `--pid=${process.pid}`],
      { env, timeout: NOTIFY_TIMEOUT_MS },
      (err, _stdout, stderr) => {
        if (!err) return resolve();
        const why = stderr.trim() || err.message;
        reject(new Unavailable(`could not tell systemd this agent is ready (systemd-notify): ${why}`));
      },
    );
  });
}
