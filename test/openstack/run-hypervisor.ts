/**
 * The loopback hypervisor as a process, for trying the test OpenStack by hand:
 *
 *   node dist/test/openstack/run-hypervisor.js DIR VM_ROOT
 *
 * DIR is the test OpenStack's (up.sh DIR); VM_ROOT is where servers' files go. It
 * runs until SIGTERM/SIGINT, then powers off every server it booted.
 */
import { OpenStackSession } from "../../src/cloud/openstack/session.js";
import { LoopbackHypervisor } from "./hypervisor.js";
import { testOpenStack } from "./env.js";

// `node --test dist/test/openstack` loads every file under a test folder: this one is
// a tool, not a test, so it does nothing there.
const underTestRunner = process.env.NODE_TEST_CONTEXT !== undefined;
const [dir, root] = process.argv.slice(2);
if (underTestRunner) process.exit(0);
if (!dir || !root) {
  console.error("usage: node dist/test/openstack/run-hypervisor.js DIR VM_ROOT");
  process.exit(2);
}
process.env.ZONAL_TEST_OPENSTACK = dir;
const os = testOpenStack();
const hypervisor = new LoopbackHypervisor(new OpenStackSession(os.config.credentials), root);
hypervisor.start();
let printed = 0;
const timer = setInterval(() => {
  for (; printed < hypervisor.log.length; printed++) console.log(hypervisor.log[printed]);
}, 500);
const stop = () =>
  void hypervisor.stop().then(() => {
    clearInterval(timer);
    for (; printed < hypervisor.log.length; printed++) console.log(hypervisor.log[printed]);
    process.exit(0);
  });
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
console.log(`loopback hypervisor for ${dir}: booting the user data of ACTIVE servers under ${root}`);
