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
import { fetcherFor, type Fetch } from "../lib/fetch.js";
import type { JobsSummary, JobState } from "./job-state.js";

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
