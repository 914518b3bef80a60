/**
 * Seals secrets at rest — agent tokens, the deployments' database passwords, binding
 * passwords, the broker's own password — with AES-256-GCM under a key kept outside
 * the database: a 0600 file, by default `secrets.key` in the control plane's data
 * dir, or wherever `ZONAL_SECRET_KEY_FILE` (or the control plane's
 * `--secret-key-file`) points for production (a mounted secret, a separate disk).
 * A copy of the database alone opens nothing.
 *
 * A sealed value is `v1:` + base64(iv | tag | ciphertext); opening checks the tag,
 * so a value sealed under another key, or altered, is refused rather than misread.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from "node:crypto";
import { existsSync, readFileSync, renameSync, statSync } from "node:fs";
import { join } from "node:path";
import { Internal } from "./errors.js";
import { writeFileAtomic } from "./files.js";

export const KEY_FILE = "secrets.key";
/** Where earlier versions kept the key (the broker's alone then): taken over as it is. */
const LEGACY_KEY_FILE = "broker.key";
const SEALED = "v1:";

export class SecretBox {
  private constructor(
    private readonly key: Buffer,
    /** Where the key lives, for messages. */
    readonly keyPath: string,
  ) {}

  /**
   * The key at `keyFile` (or `ZONAL_SECRET_KEY_FILE`, or `<dataDir>/secrets.key`),
   * made on first use. Refuses a key file others may read (chmod 600).
   */
  static load(o: { dataDir: string; keyFile?: string }): SecretBox {
    const path = o.keyFile ?? process.env.ZONAL_SECRET_KEY_FILE ?? join(o.dataDir, KEY_FILE);
    const legacy = join(o.dataDir, LEGACY_KEY_FILE);
    if (!existsSync(path) && path === join(o.dataDir, KEY_FILE) && existsSync(legacy))
      renameSync(legacy, path);
    if (!existsSync(path)) writeFileAtomic(path, randomBytes(32).toString("base64") + "\n", 0o600);
    if ((statSync(path).mode & 0o077) !== 0)
      throw new Internal(`${path}: the secret key is readable by others; chmod 600 it`);
    const key = Buffer.from(readFileSync(path, "utf8").trim(), "base64");
    if (key.length !== 32) throw new Internal(`${path}: expected a 32-byte key in base64`);
    return new SecretBox(key, path);
  }

  /** The data dir's own key (tests, and stores opened without a key file). */
  static inDataDir(dataDir: string): SecretBox {
    return SecretBox.load({ dataDir, keyFile: join(dataDir, KEY_FILE) });
  }

  static withKey(key: Buffer): SecretBox {
    return new SecretBox(key, "(in memory)");
  }

  /** Whether `value` looks sealed (earlier versions stored some secrets in plain text). */
  static isSealed(value: string): boolean {
    return value.startsWith(SEALED);
  }

  /**
   * A keyed one-way digest of a bearer token (HMAC-SHA-256), to find its owner
   * without storing the token: without the key, the digest cannot even confirm a guess.
   */
  digest(token: string): string {
    return createHmac("sha256", this.key).update("zonal token digest\0").update(token).digest("hex");
  }

  seal(plain: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.key, iv);
    const body = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()]);
    return `${SEALED}${Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64")}`;
  }

  /** Rejects (Internal) a value that was not sealed by this key or was altered. */
  open(sealed: string): string {
    if (!SecretBox.isSealed(sealed)) throw new Internal("sealed secret: unknown format");
    const raw = Buffer.from(sealed.slice(3), "base64");
    if (raw.length < 28) throw new Internal("sealed secret: too short");
    try {
      const decipher = createDecipheriv("aes-256-gcm", this.key, raw.subarray(0, 12), { authTagLength: 16 });
      decipher.setAuthTag(raw.subarray(12, 28));
      return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString("utf8");
    } catch {
      throw new Internal(`sealed secret: cannot be opened with the key ${this.keyPath}`);
    }
  }
}
