/**
 * An agent hands over to its successor — the same VM's agent started from the zonal
 * files on disk now (a new version) — while every job runs on. Jobs keep their
 * processes (and PIDs); controllers hand over their lease with its deadline, the VIP
 * and their role; the listening sockets (the agent's API, the members' status APIs,
 * the virtual addresses) and every forwarded connection go along as descriptors, so
 * no client is refused or cut.
 *
 *   old agent                                  successor (--adopt FILE)
 *   heartbeats paused, jobs handed over ──▶ FILE (0600) + descriptors 4…N
 *                                             spec applied, jobs adopted, sockets taken
 *   exits (jobs untouched)              ◀── "ready" on the IPC channel
 *
 * A successor that exits or is not ready within READY_TIMEOUT_MS is killed and the
 * old agent goes on with its jobs as before (adopting its own handover).
 */
import { spawn } from "node:child_process";
import { closeSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { errorMessage, Unavailable } from "../lib/errors.js";
import { writeFileAtomic } from "../lib/files.js";
import { parseWith } from "../lib/validate.js";
import { handedJobSchema, type HandedJob } from "./job-runner.js";
import type { AddressSpec, HandedConnection } from "./addresses.js";

/** The successor's flag: where its predecessor wrote the handover. */
export const ADOPT_FLAG = "--adopt";
/** How long the successor may take to adopt everything and say it is ready. */
export const READY_TIMEOUT_MS = 60_000;
/** The first descriptor handed to the successor (0–2 stdio, 3 the IPC channel). */
const FIRST_FD = 4;

const handoffSchema = z
  .object({
    from: z.object({ pid: z.number().int().positive(), version: z.string() }).strict(),
    jobs: z.array(handedJobSchema),
    addresses: z.array(
      z.object({ address: z.string(), ports: z.array(z.number().int().min(1).max(65535)) }).strict(),
    ),
    /** `host:port` → the successor's descriptor of that listening socket. */
    listeners: z.record(z.string(), z.number().int().min(FIRST_FD)),
    connections: z.array(
      z
        .object({
          binding: z.string(),
          client: z.number().int().min(FIRST_FD),
          upstream: z.number().int().min(FIRST_FD),
        })
        .strict(),
    ),
  })
  .strict();
export type Handoff = z.infer<typeof handoffSchema>;

/** Where an agent writes its handover (the VM's ephemeral disk). */
export const handoffPath = (ephemeralDir: string): string => join(ephemeralDir, "agent", "handoff.json");

/** Reads and validates a handover; InvalidInput names the field that is wrong. */
export function readHandoff(path: string): Handoff {
  let body: unknown;
  try {
    body = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new Unavailable(`cannot read the handover ${path}: ${errorMessage(err)}`);
  }
  return parseWith(handoffSchema, body, "handoff");
}

export interface HandoffParts {
  from: Handoff["from"];
  jobs: HandedJob[];
  addresses: AddressSpec[];
  /** `host:port` → this process's descriptor. */
  listeners: Record<string, number>;
  /** With this process's descriptors. */
  connections: HandedConnection[];
}

/**
 * Writes the handover, starts the successor with the descriptors, and resolves with
 * its pid once it is ready. Rejects (the successor killed) when it exits first or
 * is not ready in time.
 */
export async function startSuccessor(
  path: string,
  parts: HandoffParts,
  timeoutMs = READY_TIMEOUT_MS,
): Promise<number> {
  const fds: number[] = [];
  const pass = (fd: number): number => fds.push(fd) - 1 + FIRST_FD;
  const handoff: Handoff = {
    from: parts.from,
    jobs: parts.jobs,
    addresses: parts.addresses,
    listeners: Object.fromEntries(Object.entries(parts.listeners).map(([k, fd]) => [k, pass(fd)])),
    connections: parts.connections.map((c) => ({
      binding: c.binding,
      client: pass(c.client),
      upstream: pass(c.upstream),
    })),
  };
  writeFileAtomic(path, JSON.stringify(handoff), 0o600);
  const args = [...process.execArgv, ...withoutAdopt(process.argv.slice(1)), ADOPT_FLAG, path];
  const child = spawn(process.execPath, args, {
    stdio: ["ignore", "inherit", "inherit", "ipc", ...fds],
    env: process.env,
  });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Unavailable(`the new agent was not ready within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const done = (err?: Error) => {
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      };
      child.once("error", (err) => done(new Unavailable(`could not start the new agent: ${err.message}`)));
      child.once("exit", (code, signal) =>
        done(
          new Unavailable(
            `the new agent exited (${signal ? `signal ${signal}` : `code ${code}`}) before it was ready; its output is on the VM's console`,
          ),
        ),
      );
      child.on("message", (m: unknown) => {
        if ((m as { ready?: unknown } | null)?.ready === true) done();
      });
    });
  } catch (err) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    rmSync(path, { force: true });
    throw err;
  }
  child.removeAllListeners();
  child.on("error", () => undefined);
  if (child.connected) child.disconnect();
  child.unref();
  return child.pid!;
}

/** The successor, once it adopted everything: tells its predecessor, drops the file and any descriptor nobody took. */
export function reportReady(path: string, unclaimed: number[]): void {
  for (const fd of unclaimed) {
    try {
      closeSync(fd);
    } catch {
      /* closed already */
    }
  }
  rmSync(path, { force: true });
  process.send?.({ ready: true }, () => {
    if (process.connected) process.disconnect();
  });
}

/** The command line without a previous `--adopt FILE` (a successor hands over in turn). */
function withoutAdopt(argv: string[]): string[] {
  const at = argv.indexOf(ADOPT_FLAG);
  return at < 0 ? argv : [...argv.slice(0, at), ...argv.slice(at + 2)];
}
