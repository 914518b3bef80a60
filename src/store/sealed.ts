/**
 * Agent tokens as the store keeps them: sealed with the control plane's secret box.
 * A token written by an earlier version in plain text is read as it is (the store
 * seals those when it opens).
 */
import { SecretBox } from "../lib/secret-box.js";

export function sealToken(box: SecretBox, token: string | null): string | null {
  return token === null ? null : box.seal(token);
}

export function openToken(box: SecretBox, stored: string | null): string | null {
  if (stored === null) return null;
  return SecretBox.isSealed(stored) ? box.open(stored) : stored;
}
