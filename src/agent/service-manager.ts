/**
 * The agent under systemd (the unit OpenStack VMs get: `Type=notify`,
 * `NotifyAccess=main`, run as root). The agent tells systemd when it is ready; in a
 * handover the old agent, still the service's main process, tells systemd the
 * successor is the main process now, once the successor serves and before the old
 * one exits. systemd then neither restarts the service (two agents) nor loses track of
 * it (the successor, reparented to PID 1 when the old agent exits, is still watched).
 * The successor itself says nothing: if the handover fails before that point, there
 * is nothing to undo.
 *
 * Messages go through `systemd-notify`, which sends them with the credentials of the
 * process that ran it (this agent: root may) and, without `--no-block`, returns once
 * systemd has processed them.
 */
import { execFile } from "node:child_process";
import { Unavailable } from "../lib/errors.js";

export const NOTIFY_TIMEOUT_MS = 5_000;

/** Whether a service manager waits for this agent's notifications (`NOTIFY_SOCKET`). */
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
  return "this agent runs as a systemd service whose unit is not Type=notify (an older zonal wrote it): systemd would restart it when this process exits and leave two agents; recreate the VM to upgrade it";
}

/** Tells the service manager this agent is ready. Does nothing without one; Unavailable when it could not. */
export function notifyReady(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  return notify(["--ready"], "this agent is ready", env);
}

/**
 * Tells the service manager `pid` (the successor) is the service's main process now.
 * Does nothing without one; Unavailable when it could not (this process must then
 * stay: it is still the main process).
 */
export function notifyMainPid(pid: number, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  return notify([`MAINPID=${pid}`], `the new agent (pid ${pid}) is the main process`, env);
}

function notify(args: string[], what: string, env: NodeJS.ProcessEnv): Promise<void> {
  if (!underServiceManager(env)) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    execFile("systemd-notify", args, { env, timeout: NOTIFY_TIMEOUT_MS }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      reject(
        new Unavailable(`could not tell systemd ${what} (systemd-notify): ${stderr.trim() || err.message}`),
      );
    });
  });
}
