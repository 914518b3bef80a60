/**
 * The counter of examples/counter.yml, driven and audited by tests: a writer that
 * keeps incrementing and records every acknowledged value, and the checks that
 * failover must pass — the data survived, no acknowledged write was lost, and
 * the disk was never written by two VMs at once.
 */
import { readFileSync } from "node:fs";
import { sleep } from "../lib/sleep.js";

export class CounterWriter {
  readonly acked: number[] = [];
  /** When each acknowledgement came (ms), beside `acked`. */
  readonly ackedAt: number[] = [];
  readonly errors: string[] = [];
  private stopped = false;
  private loop: Promise<void> | undefined;

  /** `url()` is asked again after every failure: an instance's address may change. */
  constructor(private readonly url: () => Promise<string>) {}

  start(): this {
    this.loop = (async () => {
      let base = await this.url();
      while (!this.stopped) {
        try {
          const res = await fetch(`${base}/inc`, { method: "POST", signal: AbortSignal.timeout(500) });
          if (res.ok) {
            this.acked.push(Number((await res.text()).trim()));
            this.ackedAt.push(Date.now());
          } else this.errors.push(`HTTP ${res.status}`);
          await sleep(20);
        } catch (err) {
          this.errors.push((err as Error).name);
          await sleep(50);
          base = await this.url().catch(() => base);
        }
      }
    })();
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  /** The longest stretch without an acknowledged increment within [from, to]. */
  longestGap(from: number, to = Date.now()): number {
    let last = from;
    let gap = 0;
    for (const at of this.ackedAt) {
      if (at < from || at > to) continue;
      gap = Math.max(gap, at - last);
      last = at;
    }
    return Math.max(gap, to - last);
  }

  get max(): number {
    return this.acked.length === 0 ? 0 : Math.max(...this.acked);
  }
}

export interface WriteLog {
  lines: Array<{ at: number; vm: string; text: string }>;
  /** VMs in the order they first wrote. */
  writers: string[];
  /** True when some VM wrote after a later VM had started writing. */
  interleaved: boolean;
  /** Values the log shows written. */
  written: Set<number>;
}

export function readWriteLog(path: string): WriteLog {
  const lines = readFileSync(path, "utf8")
    .trim()
    .split("\n")
    .map((l) => {
      const [at, vm, ...rest] = l.split(" ");
      return { at: Number(at), vm: vm!, text: rest.join(" ") };
    });
  const writers: string[] = [];
  let interleaved = false;
  for (const l of lines) {
    const i = writers.indexOf(l.vm);
    if (i === -1) writers.push(l.vm);
    else if (i !== writers.length - 1) interleaved = true;
  }
  const written = new Set(
    lines.flatMap((l) => (/^wrote \d+$/.test(l.text) ? [Number(l.text.slice(6))] : [])),
  );
  return { lines, writers, interleaved, written };
}
