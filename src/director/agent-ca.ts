/**
 * The agent CA: a certificate authority the control plane makes for itself, so
 * that off loopback the director and the agents speak TLS to each other. It signs
 * every agent's certificate (for the VM's IP) and the director's own (for its
 * heartbeat listener); both sides trust only this CA.
 *
 * Its directory (`<data dir>/agent-ca`, 0700) holds:
 *   ca.key   the CA's private key (EC P-256, 0600)
 *   ca.pem   the CA's certificate (self-signed, 10 years, 0600)
 * Issued certificates are not kept: the cloud puts an agent's into its VM, and the
 * director issues its own again at every start.
 *
 * Certificates are made with the `openssl` command-line tool. Failures are Internal
 * (openssl missing or failing; a CA whose key and certificate do not match, or that
 * has expired) or InvalidInput (a name that cannot go into a certificate).
 */
import { execFile } from "node:child_process";
import { randomBytes, X509Certificate, createPrivateKey } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { isIP } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import type { AgentTlsIssuer } from "../cloud/cloud.js";
import { errorMessage, Internal, InvalidInput } from "../lib/errors.js";

const run = promisify(execFile);

export const CA_KEY_FILE = "ca.key";
export const CA_CERT_FILE = "ca.pem";
const CA_DAYS = 3650;
/** Issued certificates last 5 years unless asked otherwise (there is no rotation yet). */
const DEFAULT_DAYS = 1825;

export interface IssueRequest {
  /** The certificate's subject CN (clients check the subjectAltNames, not this). */
  commonName: string;
  /** IP addresses the certificate is for (subjectAltName IP: entries). */
  ips?: string[];
  /** Host names the certificate is for (subjectAltName DNS: entries). */
  dnsNames?: string[];
  days?: number;
}

export interface IssuedCertificate {
  certPem: string;
  keyPem: string;
}

const SAFE_CN = /^[A-Za-z0-9][A-Za-z0-9 .:_-]{0,63}$/;
const DNS_NAME =
  /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

export class AgentCa {
  private constructor(
    readonly dir: string,
    /** The CA's certificate (PEM): what clients and agents trust. */
    readonly caPem: string,
  ) {}

  /**
   * Opens the CA in `dir`, creating it the first time. Idempotent; a creation that
   * crashed half-way (a key without a certificate) is started over. Rejects with
   * Internal when openssl fails or the files on disk do not make a valid CA.
   */
  static async openOrCreate(dir: string): Promise<AgentCa> {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
    const keyPath = join(dir, CA_KEY_FILE);
    const certPath = join(dir, CA_CERT_FILE);
    if (!existsSync(certPath)) await createCa(dir, keyPath, certPath);
    const caPem = readFileSync(certPath, "utf8");
    checkCa(caPem, readFileSync(keyPath, "utf8"), dir);
    return new AgentCa(dir, caPem);
  }

  /**
   * A new key and a certificate signed by this CA for the given names, for both
   * server and client authentication. InvalidInput for a bad name or no name at all.
   */
  async issue(req: IssueRequest): Promise<IssuedCertificate> {
    const ext = leafExtensions(req);
    const days = req.days ?? DEFAULT_DAYS;
    if (!Number.isInteger(days) || days < 1 || days > CA_DAYS) {
      throw new InvalidInput(`days: expected an integer from 1 to ${CA_DAYS}, got ${days}`);
    }
    const work = await mkdtemp(join(this.dir, "issue-"));
    try {
      const keyPath = join(work, "key.pem");
      const csrPath = join(work, "req.csr");
      const cnfPath = join(work, "leaf.cnf");
      await writeFile(cnfPath, leafConfig(req.commonName, ext), { mode: 0o600 });
      await openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", keyPath]);
      await openssl(["req", "-new", "-config", cnfPath, "-key", keyPath, "-out", csrPath]);
      const certPem = await openssl([
        "x509",
        "-req",
        "-in",
        csrPath,
        "-CA",
        join(this.dir, CA_CERT_FILE),
        "-CAkey",
        join(this.dir, CA_KEY_FILE),
        "-set_serial",
        serial(),
        "-days",
        String(days),
        "-sha256",
        "-extfile",
        cnfPath,
        "-extensions",
        "leaf",
      ]);
      return { certPem, keyPem: await readFile(keyPath, "utf8") };
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }

  /** The issuer a cloud driver uses: `issue(address)` gives a certificate for that IP. */
  issuerForAgents(): AgentTlsIssuer {
    return {
      caPem: this.caPem,
      issue: (address) => this.issue({ commonName: address, ips: [address] }),
    };
  }
}

async function createCa(dir: string, keyPath: string, certPath: string): Promise<void> {
  const work = await mkdtemp(join(dir, "create-"));
  try {
    const cnfPath = join(work, "ca.cnf");
    const tmpKey = join(work, CA_KEY_FILE);
    const tmpCert = join(work, CA_CERT_FILE);
    await writeFile(cnfPath, CA_CONFIG, { mode: 0o600 });
    await openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", tmpKey]);
    await openssl([
      "req",
      "-x509",
      "-new",
      "-config",
      cnfPath,
      "-key",
      tmpKey,
      "-set_serial",
      serial(),
      "-days",
      String(CA_DAYS),
      "-sha256",
      "-out",
      tmpCert,
    ]);
    chmodSync(tmpKey, 0o600);
    chmodSync(tmpCert, 0o600);
    // The key first: a crash between the renames leaves no ca.pem, so the next open starts over.
    renameSync(tmpKey, keyPath);
    renameSync(tmpCert, certPath);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function checkCa(caPem: string, keyPem: string, dir: string): void {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(caPem);
    if (!cert.checkPrivateKey(createPrivateKey(keyPem))) throw new Error("ca.key does not match ca.pem");
  } catch (err) {
    throw new Internal(`the agent CA in ${dir} is not usable: ${errorMessage(err)}`);
  }
  if (!cert.ca) throw new Internal(`the agent CA in ${dir} is not usable: ca.pem is not a CA certificate`);
  if (Date.parse(cert.validTo) <= Date.now()) {
    throw new Internal(
      `the agent CA in ${dir} expired on ${cert.validTo}; agents trust only it, so it is not replaced silently`,
    );
  }
}

const CA_CONFIG = `[req]
distinguished_name = dn
prompt = no
x509_extensions = ca
[dn]
CN = zonal agent CA
[ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
`;

function leafExtensions(req: IssueRequest): string[] {
  if (!SAFE_CN.test(req.commonName)) {
    throw new InvalidInput(`commonName: expected letters, digits, " .:_-", got "${req.commonName}"`);
  }
  const names: string[] = [];
  for (const ip of req.ips ?? []) {
    if (isIP(ip) === 0) throw new InvalidInput(`ips: expected an IP address, got "${ip}"`);
    names.push(`IP:${ip}`);
  }
  for (const dns of req.dnsNames ?? []) {
    if (!DNS_NAME.test(dns)) throw new InvalidInput(`dnsNames: expected a host name, got "${dns}"`);
    names.push(`DNS:${dns}`);
  }
  if (names.length === 0) throw new InvalidInput("a certificate needs at least one IP address or host name");
  return names;
}

function leafConfig(commonName: string, subjectAltNames: string[]): string {
  return `[req]
distinguished_name = dn
prompt = no
[dn]
CN = ${commonName}
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = ${subjectAltNames.join(", ")}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
`;
}

/** A random positive 128-bit serial number. */
function serial(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f;
  return "0x" + b.toString("hex");
}

/** Runs openssl; resolves with its stdout. Internal when it is missing or fails. */
async function openssl(args: string[]): Promise<string> {
  try {
    return (await run("openssl", args, { encoding: "utf8", timeout: 30_000 })).stdout;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === "ENOENT") {
      throw new Internal("openssl is not installed: the agent CA needs it (Debian: apt-get install openssl)");
    }
    throw new Internal(`openssl ${args[0]} failed: ${(e.stderr ?? errorMessage(err)).trim()}`);
  }
}
