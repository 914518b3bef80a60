/**
 * First contact on a cloud whose metadata service any process on the VM can read
 * for the VM's whole life (OpenStack's user data): the settings the cloud injects
 * carry no token and no TLS key, only a one-time code and where to trade it. At its
 * first start the agent trades the code with the control plane (over TLS, trusting
 * only the CA it was given) for its token and certificate, writes them into its
 * settings file (0600) and forgets the code. The control plane hands the secrets out
 * once, and only within an hour: the code left in the metadata is worthless after.
 */
import { z } from "zod";
import { errorMessage } from "../lib/errors.js";
import { fetcherFor } from "../lib/fetch.js";
import { sleep } from "../lib/sleep.js";
import { parseWith } from "../lib/validate.js";

export const bootstrapSchema = z
  .object({
    url: z.url().startsWith("https:", "expected an https URL"),
    code: z.string().regex(/^[0-9a-f]{64}$/, "expected the one-time code (64 hex digits)"),
    ca: z.string().includes("-----BEGIN CERTIFICATE-----", "expected a PEM certificate"),
  })
  .strict();
export type Bootstrap = z.output<typeof bootstrapSchema>;

const pickedUpSchema = z
  .object({
    token: z.string().min(16),
    tls: z
      .object({ cert: z.string().min(1), key: z.string().min(1) })
      .strict()
      .optional(),
  })
  .strict();
export type PickedUp = z.output<typeof pickedUpSchema>;

/**
 * Trades the code for the agent's secrets, retrying while the control plane cannot
 * be reached or answers 5xx or 429 (it may be restarting). Rejects when the control plane refuses the code
 * (used, expired or unknown): this VM cannot be trusted, and is left to be replaced.
 */
export async function pickUp(b: Bootstrap, log: (line: string) => void, attempts = 150): Promise<PickedUp> {
  for (let attempt = 1; ; attempt++) {
    let res;
    try {
      res = await fetcherFor(b.url, b.ca)(b.url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ code: b.code }),
        signal: AbortSignal.timeout(10_000),
      });
    } catch (err) {
      if (attempt >= attempts) throw err;
      log(`bootstrap: the control plane at ${b.url} does not answer yet (${errorMessage(err)}); retrying`);
      await sleep(2000);
      continue;
    }
    const text = await res.text();
    // Starting, overloaded, or asking for patience: the code is still good, ask again.
    if ((res.status >= 500 || res.status === 429) && attempt < attempts) {
      log(`bootstrap: the control plane answered HTTP ${res.status}; retrying`);
      await sleep(2000);
      continue;
    }
    if (!res.ok)
      throw new Error(
        `bootstrap: the control plane refused the one-time code: HTTP ${res.status} ${text.slice(0, 200)}`,
      );
    return parseWith(pickedUpSchema, JSON.parse(text), "bootstrap answer");
  }
}
