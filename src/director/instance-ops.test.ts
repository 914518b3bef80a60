/**
 * InstanceOps.waitForAgent against an address where nothing listens: the error an
 * operator reads says what the cloud knows of the VM, and its console's last lines.
 */
import assert from "node:assert/strict";
import { createServer, type AddressInfo } from "node:net";
import { describe, it } from "node:test";
import type { Cloud, Vm } from "../cloud/cloud.js";
import type { InstanceRecord } from "../store/instances.js";
import type { DirectorContext } from "./context.js";
import { InstanceOps } from "./instance-ops.js";

/** A loopback port nothing listens on (taken, then given back). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

async function instance(): Promise<InstanceRecord> {
  return {
    id: "i-1",
    deployment: "db",
    group: "pg",
    index: 0,
    zone: "z1",
    state: "creating",
    desired: "started",
    vmId: "vm-1",
    host: "z1/h1",
    address: "127.0.0.1",
    agentPort: await closedPort(),
    agentToken: "t".repeat(32),
    vmResources: null,
    diskId: null,
    diskSizeMb: null,
    specHash: null,
    vip: null,
    createdAt: "",
    updatedAt: "",
  };
}

const opsWith = (cloud: Partial<Cloud>) => new InstanceOps({ cloud } as unknown as DirectorContext);

describe("waiting for a new VM's agent", () => {
  it("fails with the VM's state and its console's last lines", async () => {
    const asked: number[] = [];
    const ops = opsWith({
      getVm: async () => ({ id: "vm-1", state: "crashed" }) as Vm,
      consoleOutput: async (_id, lines) => {
        asked.push(lines);
        return ["agent starting", "Error: cannot read settings.json"];
      },
    });
    await assert.rejects(ops.waitForAgent(await instance(), 300), (err: Error) => {
      assert.match(
        err.message,
        /^timed out after 300 ms waiting for the agent of vm-1 \(last error: .*ECONNREFUSED/,
      );
      assert.match(
        err.message,
        /; VM vm-1 is crashed; its console's last lines:\n {4}agent starting\n {4}Error: cannot read settings\.json$/,
      );
      return true;
    });
    assert.deepEqual(asked, [12]);
  });

  it("says the VM is gone, or that the cloud cannot say, on a cloud that keeps no console", async () => {
    await assert.rejects(
      opsWith({ getVm: async () => undefined }).waitForAgent(await instance(), 200),
      /; VM vm-1 is gone$/,
    );
    await assert.rejects(
      opsWith({
        getVm: async () => {
          throw new Error("cloud API down");
        },
      }).waitForAgent(await instance(), 200),
      /; the cloud cannot say how VM vm-1 is \(cloud API down\)$/,
    );
  });
});
