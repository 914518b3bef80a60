/**
 * Seals secrets at rest (binding passwords, the broker's own password) with
 * AES-256-GCM under a key kept in the control plane's data dir (`broker.key`, 0600).
 * A sealed value is `v1:` + base64(iv | tag | ciphertext); opening checks the tag,
 * so a value sealed under another key, or altered, is refused rather than misread.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Internal } from "../lib/errors.js";
import { writeFileAtomic } from "../lib/files.js";

export const KEY_FILE = "broker.key";

export class SecretBox {
  private constructor(private readonly key: Buffer) {}

  /** The data dir's key, made on first use. */
  static inDataDir(dataDir: string): SecretBox {
    const path = join(dataDir, KEY_FILE);
    if (!existsSync(path)) writeFileAtomic(path, randomBytes(32).toString("base64") + "\n", 0o600);
    const key = Buffer.from(readFileSync(path, "utf8").trim(), "base64");
    if (key.length !== 32) throw new Internal(`${path}: expected a 32-byte key in base64`);
    return new SecretBox(key);
  }

  static withKey(key: Buffer): SecretBox {
    return new SecretBox(key);
  }

  seal(plain: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.key, iv);
    const body = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()]);
    return `v1:${Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64")}`;
  }

  /** Rejects (Internal) a value that was not sealed by this key or was altered. */
  open(sealed: string): string {
    if (!sealed.startsWith("v1:")) throw new Internal("sealed secret: unknown format");
    const raw = Buffer.from(sealed.slice(3), "base64");
    if (raw.length < 28) throw new Internal("sealed secret: too short");
    try {
      const decipher = createDecipheriv("aes-256-gcm", this.key, raw.subarray(0, 12), { authTagLength: 16 });
      decipher.setAuthTag(raw.subarray(12, 28));
      return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString("utf8");
    } catch {
      throw new Internal("sealed secret: cannot be opened with this data dir's key");
    }
  }
}
