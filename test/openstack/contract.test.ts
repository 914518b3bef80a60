/**
 * The Cloud contract against the OpenStack driver on the test OpenStack: real
 * Keystone, Placement, Glance and Nova (API, conductor, scheduler, six
 * nova-compute hosts with the fake virt driver, aggregates forming z1–z3 with c1
 * in an ssd=true aggregate). Neutron is the stub in neutron-stub.ts. Left out: the
 * disk lifecycle (the test OpenStack has no Cinder; the driver's Cinder calls are
 * covered by src/cloud/openstack/driver.wire.test.ts).
 */
import { cloudContract } from "../../src/cloud/contract.js";
import { OpenStackCloud } from "../../src/cloud/openstack/driver.js";
import { testOpenStack } from "./env.js";

cloudContract(
  "openstack (real Nova, fake virt driver)",
  () => {
    const os = testOpenStack();
    const cloud = new OpenStackCloud(os.config);
    return Promise.resolve({
      cloud,
      zones: ["z1", "z2", "z3"],
      ssdAttribute: "ssd",
      teardown: async () => {},
    });
  },
  { disks: false, antiAffinity: true, console: true },
);
