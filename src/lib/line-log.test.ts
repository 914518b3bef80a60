import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { silentLogger } from "./log.js";
import { createLineLogger, type LineLogger } from "./line-log.js";

describe("line logger", () => {
  it("writes one JSON line per entry in pino's shape, with the child's bindings and an error's message", () => {
    const lines: string[] = [];
    const log = createLineLogger("agent", "info", (l) => lines.push(l)).child({ vm: "vm-1" });
    log.info({ port: 6868 }, "agent listening");
    log.warn("plain sentence");
    log.error({ err: new Error("boom") }, "request failed");
    log.debug({ x: 1 }, "not at info");
    assert.equal(lines.length, 3);
    assert.ok(lines.every((l) => l.endsWith("\n") && !l.slice(0, -1).includes("\n")));
    const [a, b, c] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(
      { level: a!.level, name: a!.name, vm: a!.vm, port: a!.port, msg: a!.msg, pid: a!.pid },
      { level: 30, name: "agent", vm: "vm-1", port: 6868, msg: "agent listening", pid: process.pid },
    );
    assert.ok(!Number.isNaN(Date.parse(String(a!.time))));
    assert.deepEqual([b!.level, b!.msg], [40, "plain sentence"]);
    assert.equal((c!.err as { message: string }).message, "boom");
  });

  it("writes nothing under its level; pino's loggers fit the same interface", () => {
    const lines: string[] = [];
    const log = createLineLogger("agent", "error", (l) => lines.push(l));
    log.info("hidden");
    log.warn({ a: 1 }, "hidden");
    log.error("shown");
    assert.equal(lines.length, 1);
    const pino: LineLogger = silentLogger;
    pino.child({ vm: "x" }).info({ a: 1 }, "silent");
  });
});
