/**
 * An agent hands over to its successor — the same VM's agent started from the zonal
 * files on disk now (a new version) — while every job runs on. Jobs keep their
 * processes (and PIDs); controllers hand over their lease with its deadline, the VIP
 * and their role; the listening sockets (the agent's API, the members' status APIs,
 * the virtual addresses) and every forwarded connection go along as descriptors, so
 * no client is refused or cut.
 *
 *   old agent                                  successor (--adopt FILE)
 *   heartbeats paused, jobs handed over ──▶ FILE (0600) + listening descriptors 4…N
 *                                             spec applied, jobs adopted, accepts too
 *                                       ◀── "ready" on the IPC channel
 *   stops accepting; each forwarded
 *   connection quiesced and sent        ──▶ IPC, both ends' handles; forwarded on
 *   exits (jobs untouched)              ◀── "adopted"
 *
 * A successor that exits or is not ready within READY_TIMEOUT_MS is killed and the
 * old agent goes on with its jobs as before (adopting its own handover). From
 * "ready" on, the successor serves: the old agent only passes its connections on.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { Socket } from "node:net";
import { closeSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { z } from "zod";
import { errorMessage, Unavailable } from "../lib/errors.js";
import { writeFileAtomic } from "../lib/files.js";
import { parseWith } from "../lib/validate.js";
import { handedJobSchema, type HandedJob } from "./job-runner.js";
import type { AddressSpec, QuiescedConnection } from "./addresses.js";

/** The successor's flag: where its predecessor wrote the handover. */
export const ADOPT_FLAG = "--adopt";
/** How long the successor may take to adopt everything and say it is ready. */
export const READY_TIMEOUT_MS = 60_000;
/** The first descriptor handed to the successor (0–2 stdio, 3 the IPC channel). */
const FIRST_FD = 4;

/** The handover file's format: a successor refuses one it does not know before it adopts anything. */
const FORMAT = 1;

const handoffSchema = z
  .object({
    format: z.literal(FORMAT),
    from: z.object({ pid: z.number().int().positive(), version: z.string() }).strict(),
    jobs: z.array(handedJobSchema),
    addresses: z.array(
      z.object({ address: z.string(), ports: z.array(z.number().int().min(1).max(65535)) }).strict(),
    ),
    /** `host:port` → the successor's descriptor of that listening socket. */
    listeners: z.record(z.string(), z.number().int().min(FIRST_FD)),
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
}

/**
 * Writes the handover, starts the successor with the listening descriptors, and
 * resolves with it once it is ready (serving). Rejects (the successor killed) when
 * it exits first or is not ready in time.
 */
export async function startSuccessor(
  path: string,
  parts: HandoffParts,
  timeoutMs = READY_TIMEOUT_MS,
): Promise<ChildProcess> {
  const fds: number[] = [];
  const pass = (fd: number): number => fds.push(fd) - 1 + FIRST_FD;
  const handoff: Handoff = {
    format: FORMAT,
    from: parts.from,
    jobs: parts.jobs,
    addresses: parts.addresses,
    listeners: Object.fromEntries(Object.entries(parts.listeners).map(([k, fd]) => [k, pass(fd)])),
  };
  mkdirSync(dirname(path), { recursive: true });
  writeFileAtomic(path, JSON.stringify(handoff), 0o600);
  const args = [...process.execArgv, ...withoutAdopt(process.argv.slice(1)), ADOPT_FLAG, path];
  const child = spawn(process.execPath, args, {
    stdio: ["ignore", "inherit", "inherit", "ipc", ...fds],
    env: process.env,
  });
  // Only these listeners come off afterwards: Node's own (handle acknowledgements) stay.
  const onError = (err: Error) => done(new Unavailable(`could not start the new agent: ${err.message}`));
  const onExit = (code: number | null, signal: string | null) =>
    done(
      new Unavailable(
        `the new agent exited (${signal ? `signal ${signal}` : `code ${code}`}) before it was ready; its output is on the VM's console`,
      ),
    );
  const onMessage = (m: unknown) => {
    if ((m as { ready?: unknown } | null)?.ready === true) done();
  };
  let done: (err?: Error) => void = () => undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Unavailable(`the new agent was not ready within ${timeoutMs} ms`)),
        timeoutMs,
      );
      done = (err?: Error) => {
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      };
      child.once("error", onError).once("exit", onExit).on("message", onMessage);
    });
  } catch (err) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    rmSync(path, { force: true });
    throw err;
  } finally {
    child.off("error", onError).off("exit", onExit).off("message", onMessage);
  }
  child.on("error", () => undefined);
  child.unref();
  return child;
}

/** How long the successor may take to take the connections sent to it. */
const CONNECTIONS_TIMEOUT_MS = 10_000;

/**
 * Sends each quiesced connection's two ends to the ready successor (IPC handles) and
 * waits until it forwards them all; then lets go of the channel. Rejects when it does
 * not confirm in time (the connections it did not take are cut when this agent exits).
 */
export async function sendConnections(child: ChildProcess, connections: QuiescedConnection[]): Promise<void> {
  const adopted = new Promise<void>((resolve) =>
    child.on("message", (m: unknown) => {
      if ((m as { adopted?: unknown } | null)?.adopted === true) resolve();
    }),
  );
  const send = (message: object, handle?: Socket) =>
    new Promise<void>((resolve, reject) =>
      child.send(message, handle, {}, (err) => (err ? reject(err) : resolve())),
    );
  const work = (async () => {
    for (const [id, c] of connections.entries()) {
      await send({ connection: id, binding: c.binding, end: "client" }, c.client);
      await send({ connection: id, binding: c.binding, end: "upstream" }, c.upstream);
    }
    await send({ done: connections.length });
    await adopted;
  })();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new Unavailable(`the new agent did not take the connections in ${CONNECTIONS_TIMEOUT_MS} ms`),
            ),
          CONNECTIONS_TIMEOUT_MS,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
    work.catch(() => undefined);
    if (child.connected) child.disconnect();
  }
}

/**
 * The successor, once it adopted everything and serves: tells its predecessor, drops
 * the file and any descriptor nobody took, then takes the connections the
 * predecessor sends (`forward` each) until it says it is done.
 */
export function reportReady(
  path: string,
  unclaimed: number[],
  forward: (binding: string, client: Socket, upstream: Socket) => void,
): void {
  for (const fd of unclaimed) {
    try {
      closeSync(fd);
    } catch {
      /* closed already */
    }
  }
  rmSync(path, { force: true });
  const halves = new Map<number, { binding: string; client?: Socket; upstream?: Socket }>();
  process.on("message", (m: unknown, handle: unknown) => {
    const msg = m as { connection?: unknown; binding?: unknown; end?: unknown; done?: unknown };
    if (typeof msg.done === "number") {
      for (const h of halves.values()) for (const s of [h.client, h.upstream]) s?.destroy();
      halves.clear();
      process.send?.({ adopted: true }, () => {
        if (process.connected) process.disconnect();
      });
      return;
    }
    if (typeof msg.connection !== "number" || typeof msg.binding !== "string" || !(handle instanceof Socket))
      return;
    const h = halves.get(msg.connection) ?? { binding: msg.binding };
    if (msg.end === "client") h.client = handle;
    else if (msg.end === "upstream") h.upstream = handle;
    if (h.client && h.upstream) {
      halves.delete(msg.connection);
      forward(h.binding, h.client, h.upstream);
    } else halves.set(msg.connection, h);
  });
  process.send?.({ ready: true });
}

/** The command line without a previous `--adopt FILE` (a successor hands over in turn). */
function withoutAdopt(argv: string[]): string[] {
  const at = argv.indexOf(ADOPT_FLAG);
  return at < 0 ? argv : [...argv.slice(0, at), ...argv.slice(at + 2)];
}
