/** Runs a job's health check once: resolves when healthy, rejects with the reason. */
import { httpFetch } from "../lib/fetch.js";
import { connect } from "node:net";
import type { HealthCheck } from "../jobs/job-type.js";

export function describeCheck(check: HealthCheck): string {
  switch (check.kind) {
    case "http":
      return `HTTP GET http://${check.host}:${check.port}${check.path}`;
    case "tcp":
      return `TCP connect ${check.host}:${check.port}`;
    case "probe":
      return check.describe;
  }
}

export async function runCheck(check: HealthCheck, timeoutMs = 2000): Promise<void> {
  switch (check.kind) {
    case "http": {
      const res = await httpFetch(`http://${check.host}:${check.port}${check.path}`, {
        signal: AbortSignal.timeout(timeoutMs),
      });
      await res.body?.cancel();
      const ok = check.status !== undefined ? res.status === check.status : res.status < 400;
      if (!ok) throw new Error(`HTTP ${res.status} from ${describeCheck(check)}`);
      return;
    }
    case "tcp":
      return new Promise((resolve, reject) => {
        const socket = connect({ host: check.host, port: check.port, timeout: timeoutMs });
        socket.once("connect", () => {
          socket.destroy();
          resolve();
        });
        socket.once("timeout", () => {
          socket.destroy();
          reject(new Error(`timeout: ${describeCheck(check)}`));
        });
        socket.once("error", (err) => reject(new Error(`${describeCheck(check)}: ${err.message}`)));
      });
    case "probe":
      return check.run();
  }
}
