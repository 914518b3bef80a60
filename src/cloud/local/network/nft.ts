/** Runs `nft` (Debian's nftables): loads a ruleset text in one transaction, deletes a table. */
import { spawn } from "node:child_process";
import { Unavailable } from "../../../lib/errors.js";

const NFT = "/usr/sbin/nft";

function runNft(args: string[], input?: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(NFT, args, { stdio: ["pipe", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    child.on("error", (err) => resolve({ code: -1, output: err.message }));
    child.on("close", (code) => resolve({ code, output: output.trim() }));
    child.stdin.on("error", () => undefined); // nft may exit before reading (a listing); its code tells
    child.stdin.end(input ?? "");
  });
}

/** Loads `text` (nft syntax) as one transaction: all of it takes effect, or none. */
export async function loadRuleset(text: string): Promise<void> {
  const r = await runNft(["-f", "-"], text);
  if (r.code !== 0) throw new Unavailable(`nft refused the local cloud's rules: ${r.output.slice(0, 2000)}`);
}

/** Deletes `table ip <name>` if it exists. */
export async function deleteTable(name: string): Promise<void> {
  await loadRuleset(`add table ip ${name}\ndelete table ip ${name}\n`);
}

/** Why nft cannot be used here, or undefined when it can. */
export async function nftUnavailable(): Promise<string | undefined> {
  const r = await runNft(["list", "tables"]);
  if (r.code === 0) return undefined;
  return r.code === -1
    ? `nft is not installed (${r.output}); install Debian's nftables`
    : `nft does not work here (${r.output}); network faults need root`;
}
