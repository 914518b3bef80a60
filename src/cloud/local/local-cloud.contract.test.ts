/** The Cloud contract against the local cloud daemon, through its HTTP API. */
import { cloudContract } from "../contract.js";
import { CloudHarness } from "../../testing/cloud-harness.js";

cloudContract(
  "local (daemon over HTTP)",
  async () => {
    const harness = new CloudHarness();
    const cloud = await harness.start();
    return { cloud, zones: ["z1", "z2", "z3"], ssdAttribute: "ssd", teardown: () => harness.teardown() };
  },
  { console: true },
);
