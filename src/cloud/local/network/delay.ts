/**
 * Delay for slow links. This machine's kernel has no netem, so a slow link's packets
 * (marked by the cloud's nftables table) go through an iptables NFQUEUE rule to a
 * queue that `delay.py` empties after the link's delay. One queue and one delay.py
 * per slow fault with a delay; the rules live in an iptables chain of the cloud's
 * own (`ZONAL_B<base>`, jumped to from INPUT), removed with the faults.
 */
import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Unavailable } from "../../../lib/errors.js";
import { isAlive, readStat, signalPid } from "../../../lib/proc.js";
import type { ProcRef } from "../../../lib/proc.js";

const IPTABLES = "/usr/sbin/iptables-nft";
/** Beside this file in the repository (Python: Node.js cannot open a netlink socket). */
const DELAY_PY = fileURLToPath(new URL("../../../../../src/cloud/local/network/delay.py", import.meta.url));

export interface DelayQueue {
  faultId: string;
  queue: number;
  mark: number;
  delayMs: number;
  proc: ProcRef;
}

function iptables(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(IPTABLES, ["-w", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    child.on("error", (err) => resolve({ code: -1, output: err.message }));
    child.on("close", (code) => resolve({ code, output: output.trim() }));
  });
}

async function must(args: string[]): Promise<void> {
  const r = await iptables(args);
  if (r.code !== 0) throw new Unavailable(`iptables ${args.join(" ")}: ${r.output || `exit ${r.code}`}`);
}

/** Starts delay.py for one queue; resolves once it has bound the queue. */
function startDelayer(queue: number, delayMs: number, logPath: string): Promise<ProcRef> {
  return new Promise((resolve, reject) => {
    const log = openSync(logPath, "a");
    const child = spawn("python3", [DELAY_PY, String(queue), String(delayMs)], {
      detached: true,
      stdio: ["ignore", "pipe", log],
    });
    closeSync(log);
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Unavailable(`delay.py for queue ${queue} did not start within 5 s; see ${logPath}`));
    }, 5000);
    child.on("error", (err) => reject(new Unavailable(`slow links need python3: ${err.message}`)));
    child.once("exit", (code) =>
      reject(new Unavailable(`delay.py for queue ${queue} exited (${code}); see ${logPath}`)),
    );
    child.stdout!.once("data", () => {
      clearTimeout(timer);
      child.removeAllListeners("exit");
      child.stdout!.destroy();
      child.unref();
      const st = readStat(child.pid!);
      resolve({ pid: child.pid!, startTime: st?.startTime ?? 0 });
    });
  });
}

export class DelayQueues {
  private readonly chain: string;

  constructor(
    private readonly addressBase: number,
    private readonly logPath: string,
  ) {
    this.chain = `ZONAL_B${addressBase}`;
  }

  /** The mark and queue number of the Nth delayed fault of this cloud (unique on the machine). */
  slot(index: number): { mark: number; queue: number } {
    return {
      mark: (0x5b << 24) | (this.addressBase << 12) | (index & 0xfff),
      queue: 0x5a00 + this.addressBase * 16 + (index % 16),
    };
  }

  /**
   * Makes the queues `wanted` and only those: delayers started or stopped, the chain's
   * rules rewritten. Returns the queues now in effect.
   */
  async sync(
    running: DelayQueue[],
    wanted: Array<{ faultId: string; delayMs: number }>,
  ): Promise<DelayQueue[]> {
    const keep = running.filter((q) =>
      wanted.some((w) => w.faultId === q.faultId && w.delayMs === q.delayMs),
    );
    for (const q of running) if (!keep.includes(q)) stopDelayer(q.proc);
    const out: DelayQueue[] = [];
    const used = new Set(keep.map((q) => q.queue));
    let next = 0;
    for (const w of wanted) {
      const have = keep.find((q) => q.faultId === w.faultId);
      if (have) {
        out.push(have);
        continue;
      }
      while (used.has(this.slot(next).queue)) next++;
      const { mark, queue } = this.slot(next++);
      used.add(queue);
      out.push({
        faultId: w.faultId,
        delayMs: w.delayMs,
        mark,
        queue,
        proc: await startDelayer(queue, w.delayMs, this.logPath),
      });
    }
    await this.writeRules(out);
    return out;
  }

  private async writeRules(queues: DelayQueue[]): Promise<void> {
    if (queues.length === 0) return this.clearRules();
    if ((await iptables(["-t", "filter", "-L", this.chain, "-n"])).code !== 0)
      await must(["-t", "filter", "-N", this.chain]);
    if ((await iptables(["-t", "filter", "-C", "INPUT", "-j", this.chain])).code !== 0)
      await must(["-t", "filter", "-I", "INPUT", "-j", this.chain]);
    await must(["-t", "filter", "-F", this.chain]);
    for (const q of queues) {
      await must([
        "-t",
        "filter",
        "-A",
        this.chain,
        "-m",
        "mark",
        "--mark",
        `0x${q.mark.toString(16)}`,
        "-j",
        "NFQUEUE",
        "--queue-num",
        String(q.queue),
        "--queue-bypass",
      ]);
    }
  }

  /** Removes the chain and its jump, whatever is left of them. */
  async clearRules(): Promise<void> {
    while ((await iptables(["-t", "filter", "-D", "INPUT", "-j", this.chain])).code === 0);
    await iptables(["-t", "filter", "-F", this.chain]);
    await iptables(["-t", "filter", "-X", this.chain]);
  }

  /** Stops every delayer listed and removes the rules. */
  async clear(running: DelayQueue[]): Promise<void> {
    await this.clearRules();
    for (const q of running) stopDelayer(q.proc);
  }
}

function stopDelayer(proc: ProcRef): void {
  if (isAlive(proc.pid, proc.startTime)) signalPid(proc.pid, "SIGTERM");
}
