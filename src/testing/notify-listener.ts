/**
 * What systemd's notification socket receives, for tests of an agent run as a
 * `Type=notify` service: a unix datagram socket (node has none, so python3 binds it)
 * that records each message, the PID its credentials carry, and when it came
 * (CLOCK_MONOTONIC, node's `process.hrtime.bigint()`). Control messages beyond the
 * credentials (the file descriptor of systemd-notify's barrier) are cut, which closes
 * them: what systemd does once it has processed a message.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { signalPid } from "../lib/proc.js";
import { waitFor } from "../lib/sleep.js";

const LISTENER = `
import json, socket, struct, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
print(json.dumps({"listening": True}), flush=True)
while True:
    msg, anc, _flags, _addr = s.recvmsg(4096, socket.CMSG_SPACE(12))
    pid = None
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack("iII", data[:12])[0]
    print(json.dumps({"pid": pid, "message": msg.decode(), "atNs": str(time.monotonic_ns())}), flush=True)
`;

export interface Notification {
  /** The sender's PID as its credentials say. */
  pid: number;
  fields: Record<string, string>;
  atNs: bigint;
}

export class NotifyListener {
  readonly received: Notification[] = [];
  private proc?: ChildProcess;

  constructor(readonly path: string) {}

  async start(): Promise<void> {
    const proc = spawn("python3", ["-c", LISTENER, this.path], {
      detached: true,
      stdio: ["ignore", "pipe", "inherit"],
    });
    this.proc = proc;
    let listening = false;
    createInterface({ input: proc.stdout! }).on("line", (line) => {
      const m = JSON.parse(line) as { listening?: boolean; pid?: number; message?: string; atNs?: string };
      if (m.listening) listening = true;
      else
        this.received.push({
          pid: m.pid!,
          fields: Object.fromEntries(
            m.message!.split("\n").map((f) => [f.split("=")[0]!, f.slice(f.indexOf("=") + 1)]),
          ),
          atNs: BigInt(m.atNs!),
        });
    });
    await waitFor(() => listening || undefined, { timeoutMs: 5000, what: "the notification socket" });
  }

  /** The first message that names `field` (with `value`, when given), once it came. */
  async next(field: string, value?: string, timeoutMs = 10_000): Promise<Notification> {
    return waitFor(
      () =>
        this.received.find(
          (n) => n.fields[field] !== undefined && (value === undefined || n.fields[field] === value),
        ),
      {
        timeoutMs,
        intervalMs: 20,
        what: `a notification with ${field}${value === undefined ? "" : `=${value}`}`,
      },
    );
  }

  /** Stops listening (the socket file stays: senders then get ECONNREFUSED). */
  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((resolve) => proc.once("exit", resolve));
    signalPid(-proc.pid!, "SIGKILL"); // the group this listener leads, still alive (no exit seen)
    await exited;
  }
}
