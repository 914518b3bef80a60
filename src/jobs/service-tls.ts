/**
 * A data service's TLS certificate: issued by the control plane's CA for the names
 * its clients use (the VM's address; the cluster's VIP or the instance's), kept in a
 * directory of the job's (the key 0600, owned by the service's system user). It is
 * asked for only when missing or when a name this member needs is not on it (a new
 * address, a VIP added): a member whose control plane is away keeps serving with the
 * one it has. Every data service's job uses it (PostgreSQL's today).
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../lib/files.js";
import { ownBy, ownedDir } from "../lib/users.js";
import { z } from "zod";
import { parseWith } from "../lib/validate.js";
import { controlPlaneCall } from "./cluster-member.js";
import type { JobContext } from "./job-type.js";

export interface TlsFiles {
  cert: string;
  key: string;
  /** The control plane's CA: what members verify each other (and clients the service) with. */
  ca: string;
  names: string;
}

export const tlsFiles = (tlsDir: string): TlsFiles => ({
  cert: join(tlsDir, "server.crt"),
  key: join(tlsDir, "server.key"),
  ca: join(tlsDir, "ca.crt"),
  names: join(tlsDir, "names.json"),
});

const pem = z.string().min(1).max(20_000);
const issuedSchema = z.object({ cert: pem, key: pem, ca: pem, names: z.array(z.string()).min(1) }).strict();

/** The names the certificate on disk is for; none when there is no readable record (then it is asked for again). */
function namesOn(path: string): string[] {
  try {
    const names = JSON.parse(readFileSync(path, "utf8")) as unknown;
    return Array.isArray(names) ? names.filter((n): n is string => typeof n === "string") : [];
  } catch {
    return [];
  }
}

/** The names this member must be reachable by: its address, and its cluster's VIP. */
const needed = (ctx: JobContext): string[] => [ctx.address, ...(ctx.cluster?.vip ? [ctx.cluster.vip] : [])];

/**
 * Makes sure the certificate in `tlsDir` is there and names what it must, its files
 * owned by the system user `owner`; rejects when it cannot get one.
 */
export async function ensureCertificate(ctx: JobContext, tlsDir: string, owner: string): Promise<TlsFiles> {
  const f = tlsFiles(tlsDir);
  const have = namesOn(f.names);
  if (existsSync(f.cert) && needed(ctx).every((n) => have.includes(n))) return f;
  const issued = parseWith(
    issuedSchema,
    await controlPlaneCall(ctx, "POST", "/v1/certificates", { body: {}, timeoutMs: 10_000 }),
    "certificate from the control plane",
  );
  ownedDir(tlsDir, owner, 0o700);
  for (const [path, text, mode] of [
    [f.key, issued.key, 0o600],
    [f.cert, issued.cert, 0o644],
    [f.ca, issued.ca, 0o644],
    [f.names, JSON.stringify(issued.names), 0o644],
  ] as const) {
    writeFileAtomic(path, text, mode); // a crash leaves the old file or the new one, never half
    ownBy(path, owner, mode);
  }
  ctx.log(`TLS certificate from the control plane's CA for ${issued.names.join(", ")}`);
  return f;
}
