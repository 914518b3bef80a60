/** The Cloud contract against the in-memory cloud (no agents: VMs are records). */
import { cloudContract } from "../contract.js";
import { MemoryCloud } from "./memory-cloud.js";

cloudContract("memory", async () => {
  const host = (name: string, attributes = {}) => ({ name, cpu: 8, ramMb: 16_384, attributes });
  const cloud = new MemoryCloud({
    firstOctet: 200,
    zones: [
      { name: "z1", hosts: [host("h1", { ssd: true }), host("h2")] },
      { name: "z2", hosts: [host("h1")] },
    ],
  });
  return { cloud, zones: ["z1", "z2"], ssdAttribute: "ssd", teardown: async () => undefined };
});
