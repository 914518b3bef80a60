/**
 * Heartbeats: every interval the agent POSTs what it knows about the VM to the
 * configured URL (`Authorization: Bearer <agent token>`). A slow receiver never
 * delays the next beat by more than one interval; a beat is skipped while the
 * previous one is still in flight. With `ca` the URL must be https and the
 * receiver's certificate must be signed by that CA and name the URL's host.
 */
import { statfsSync } from "node:fs";
import { readdir, lstat } from "node:fs/promises";
import { join } from "node:path";
import { loadavg } from "node:os";
import { z } from "zod";
import { fetcherFor, type Fetch } from "../lib/fetch.js";
import { JOB_STATES, JOBS_SUMMARIES, type JobsSummary, type JobState } from "./job-state.js";

export interface DiskUsage {
  /** Bytes used by the disk's files (refreshed every few seconds). */
  usedBytes: number;
  /** Free and total bytes of the filesystem holding it. */
  freeBytes: number;
  totalBytes: number;
}

export interface Heartbeat {
  vmId: string;
  /** Counts up from 1 for each agent process; a reset means the agent restarted. */
  seq: number;
  sentAt: string;
  agentStartedAt: string;
  specVersion: string | null;
  instance: { deployment: string; group: string; index: number; id: string } | null;
  jobsState: JobsSummary;
  /** Virtual addresses it serves, and whether each is bound yet. */
  addresses: Array<{ address: string; port: number; state: "bound" | "waiting" }>;
  jobs: { name: string; state: JobState; restarts: number; healthy: boolean }[];
  disk: { persistent: (DiskUsage & { id: string }) | null; ephemeral: DiskUsage };
  /** 1, 5 and 15 minute load averages. */
  load: number[];
}

const bytes = z.number().int().nonnegative();
const usage = z.object({ usedBytes: bytes, freeBytes: bytes, totalBytes: bytes });
const text = (max: number) => z.string().max(max, `expected at most ${max} characters`);

/**
 * A heartbeat as the control plane accepts it from a VM: every field checked and
 * bounded (a VM runs other people's code; its body is input like any other).
 */
export const heartbeatSchema: z.ZodType<Heartbeat> = z.object({
  vmId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, "expected the VM's id"),
  seq: z.number().int().nonnegative(),
  sentAt: text(64),
  agentStartedAt: text(64),
  specVersion: text(256).nullable(),
  instance: z
    .object({ deployment: text(128), group: text(128), index: z.number().int().nonnegative(), id: text(128) })
    .nullable(),
  jobsState: z.enum(JOBS_SUMMARIES),
  addresses: z
    .array(
      z.object({
        address: text(64),
        port: z.number().int().min(0).max(65_535),
        state: z.enum(["bound", "waiting"]),
      }),
    )
    .max(64),
  jobs: z
    .array(
      z.object({
        name: text(128),
        state: z.enum(JOB_STATES),
        restarts: z.number().int().nonnegative(),
        healthy: z.boolean(),
      }),
    )
    .max(256),
  disk: z.object({ persistent: usage.extend({ id: text(128) }).nullable(), ephemeral: usage }),
  load: z.array(z.number().nonnegative()).max(3),
});

export async function dirSize(path: string): Promise<number> {
  let total = 0;
  let entries: string[];
  try {
    entries = await readdir(path);
  } catch {
    return 0;
  }
  for (const name of entries) {
    const p = join(path, name);
    try {
      const st = await lstat(p);
      total += st.isDirectory() ? await dirSize(p) : st.size;
    } catch {
      /* vanished while counting */
    }
  }
  return total;
}

/** Disk usage of a directory; the file walk is cached for `maxAgeMs`. */
export class DiskMeter {
  private cache = new Map<string, { at: number; bytes: number }>();
  private pending = new Set<string>();

  constructor(private readonly maxAgeMs = 10_000) {}

  usage(path: string): DiskUsage {
    const fs = statfsSync(path);
    const cached = this.cache.get(path);
    if ((!cached || Date.now() - cached.at > this.maxAgeMs) && !this.pending.has(path)) {
      this.pending.add(path);
      void dirSize(path)
        .then((bytes) => this.cache.set(path, { at: Date.now(), bytes }))
        .finally(() => this.pending.delete(path));
    }
    return {
      usedBytes: cached?.bytes ?? 0,
      freeBytes: fs.bavail * fs.bsize,
      totalBytes: fs.blocks * fs.bsize,
    };
  }
}

export const currentLoad = (): number[] => loadavg().map((n) => Math.round(n * 100) / 100);

export class HeartbeatSender {
  private timer: NodeJS.Timeout | undefined;
  private inFlight = false;
  private seq = 0;
  private stopped = false;
  private readonly fetch: Fetch;

  /** InvalidInput when `ca` is given and `url` is not https. */
  constructor(
    private readonly o: {
      url: string;
      token: string;
      intervalMs: number;
      build: (seq: number) => Heartbeat;
      onError?: (err: unknown) => void;
      /** Trust only this CA (PEM) for the receiver's certificate. */
      ca?: string;
    },
  ) {
    this.fetch = fetcherFor(o.url, o.ca);
  }

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => this.beat(), ms);
  }

  private beat(): void {
    this.schedule(this.o.intervalMs);
    if (this.inFlight) return;
    this.inFlight = true;
    const body = JSON.stringify(this.o.build(++this.seq));
    this.fetch(this.o.url, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${this.o.token}` },
      body,
      signal: AbortSignal.timeout(Math.max(this.o.intervalMs * 2, 1000)),
    })
      .then((res) => res.body?.cancel())
      .catch((err: unknown) => this.o.onError?.(err))
      .finally(() => {
        this.inFlight = false;
      });
  }
}
