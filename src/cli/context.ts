/** What every command needs: the zonal home and clients for the running parts. */
import type { Command } from "commander";
import { AgentClient } from "../agent/client.js";
import { LocalCloudClient } from "../cloud/local/client.js";
import { cloudDataDir, zonalHome } from "./home.js";

export interface GlobalOptions {
  home?: string;
}

export function homeOf(cmd: Command): string {
  return zonalHome((cmd.optsWithGlobals() as GlobalOptions).home);
}

export function cloudClient(cmd: Command): LocalCloudClient {
  return LocalCloudClient.fromDataDir(cloudDataDir(homeOf(cmd)));
}

/** A client for a VM's agent, with the address and token the cloud holds for it. */
export async function agentFor(cmd: Command, vmId: string): Promise<AgentClient> {
  const ep = await cloudClient(cmd).agentEndpoint(vmId);
  return new AgentClient({ address: ep.address, port: ep.agentPort, token: ep.token });
}
