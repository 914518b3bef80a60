/**
 * One-time bootstrap codes for agents on clouds whose metadata a VM can read for its
 * whole life (OpenStack user data): the cloud driver deposits the agent's token and
 * TLS certificate here and puts only a code in the user data; the agent trades the
 * code once, at first boot, over TLS (`POST /v1/bootstrap {code}`). A deposit is kept
 * sealed in the store (it survives a control plane restart) under a keyed digest of
 * its code, and is gone once picked up or after BOOTSTRAP_TTL_MS.
 */
import { randomBytes } from "node:crypto";
import type { AgentBootstrapper, AgentSecrets } from "../cloud/cloud.js";
import { NotFound } from "../lib/errors.js";
import { Mutex } from "../lib/mutex.js";
import type { Store } from "../store/store.js";

/** How long a deposit waits for its VM's first boot. */
export const BOOTSTRAP_TTL_MS = 3_600_000;
const PREFIX = "bootstrap:";

export class BootstrapBook {
  private readonly mutex = new Mutex();

  constructor(
    private readonly store: Store,
    private readonly clock: () => number = Date.now,
  ) {}

  /** What a cloud driver is given: deposits answered with the URL agents trade their code at. */
  bootstrapper(url: string): AgentBootstrapper {
    return { deposit: async (secrets) => ({ url, code: await this.deposit(secrets) }) };
  }

  async deposit(secrets: AgentSecrets): Promise<string> {
    await this.sweep();
    const code = randomBytes(32).toString("hex");
    await this.store.setSecret(
      PREFIX + this.store.box.digest(code),
      JSON.stringify({ secrets, expiresAt: this.clock() + BOOTSTRAP_TTL_MS }),
    );
    return code;
  }

  /** Drops deposits whose time ran out (their VM never came to pick them up). */
  private async sweep(): Promise<void> {
    const keys = (await this.store.db.selectFrom("settings").select("key").execute())
      .map((r) => r.key)
      .filter((k) => k.startsWith(PREFIX));
    for (const key of keys) {
      const text = await this.store.getSecret(key).catch(() => undefined);
      const kept = text ? (JSON.parse(text) as { expiresAt: number }) : undefined;
      if (!kept || kept.expiresAt <= this.clock()) await this.store.settings.delete(key);
    }
  }

  /** The secrets for `code`, once: NotFound for a code never given, already used or expired. */
  pickUp(code: string): Promise<AgentSecrets> {
    return this.mutex.run(async () => {
      const key = PREFIX + this.store.box.digest(code);
      const text = await this.store.getSecret(key);
      await this.store.settings.delete(key);
      const kept = text ? (JSON.parse(text) as { secrets: AgentSecrets; expiresAt: number }) : undefined;
      if (!kept || kept.expiresAt <= this.clock())
        throw new NotFound("no such bootstrap code: never given, already used, or expired");
      return kept.secrets;
    });
  }
}
