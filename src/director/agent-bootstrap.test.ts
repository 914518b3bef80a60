/** One-time bootstrap codes: picked up once, within their time, never from a copy of the store. */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Store } from "../store/store.js";
import { BOOTSTRAP_TTL_MS, BootstrapBook } from "./agent-bootstrap.js";

describe("agent bootstrap codes", () => {
  it("hands the secrets out once, within the TTL, and keeps no code or secret in plain text", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zonal-bootstrap-"));
    const store = await Store.open({ dataDir: dir });
    try {
      let now = 1_000_000;
      const book = new BootstrapBook(store, () => now);
      const { url, code } = await book.bootstrapper("https://10.0.0.1:25556/v1/bootstrap").deposit({
        token: "agent-token-".padEnd(40, "x"),
        tls: { cert: "CERT", key: "KEY-SECRET" },
      });
      assert.equal(url, "https://10.0.0.1:25556/v1/bootstrap");
      assert.match(code, /^[0-9a-f]{64}$/);
      const rows = JSON.stringify(await store.db.selectFrom("settings").selectAll().execute());
      for (const plain of [code, "agent-token-", "KEY-SECRET"]) assert.ok(!rows.includes(plain), plain);
      const got = await book.pickUp(code);
      assert.equal(got.token, "agent-token-".padEnd(40, "x"));
      assert.deepEqual(got.tls, { cert: "CERT", key: "KEY-SECRET" });
      await assert.rejects(book.pickUp(code), /already used/, "a second pickup gets nothing");
      const late = await book.deposit({ token: "t".repeat(32) });
      now += BOOTSTRAP_TTL_MS + 1;
      await assert.rejects(book.pickUp(late), /expired/);
      const forgotten = await book.deposit({ token: "f".repeat(32) });
      now += BOOTSTRAP_TTL_MS + 1;
      await book.deposit({ token: "n".repeat(32) }); // sweeps what ran out
      const kept = (await store.db.selectFrom("settings").select("key").execute()).filter((r) =>
        r.key.startsWith("bootstrap:"),
      );
      assert.equal(kept.length, 1, "an expired deposit nobody picked up is dropped");
      await assert.rejects(book.pickUp(forgotten), /expired/);
      await assert.rejects(book.pickUp("0".repeat(64)), /never given/);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
