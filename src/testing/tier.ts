/**
 * The test tiers. `npm test` (CI) runs every test file; `npm run test:long` runs the
 * clustered tier again with the long cases too (ZONAL_TEST_TIER=long): full CPU for
 * 20 s, partitions flapping for half a minute, MariaDB's rolling updates. They are
 * the same kind of proof as their neighbours, only longer, and keep `npm test` within
 * its 25 minutes.
 */
import { it } from "node:test";

/** True in `npm run test:long`. */
export const LONG = process.env.ZONAL_TEST_TIER === "long";

/** A test case of the long tier: defined (and run) there only. */
export function longIt(name: string, fn: () => Promise<void>): void {
  if (LONG) it(`${name} [long]`, fn);
}
