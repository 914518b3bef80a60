/** What every command needs: the zonal home and clients for the running parts. */
import type { Command } from "commander";
import { print } from "./output.js";
import { AgentClient } from "../agent/client.js";
import { LocalCloudClient } from "../cloud/local/client.js";
import { DirectorClient } from "../director/client.js";
import { cloudDataDir, directorDataDir, zonalHome } from "./home.js";

export interface GlobalOptions {
  home?: string;
}

export function homeOf(cmd: Command): string {
  return zonalHome((cmd.optsWithGlobals() as GlobalOptions).home);
}

export function cloudClient(cmd: Command): LocalCloudClient {
  return LocalCloudClient.fromDataDir(cloudDataDir(homeOf(cmd)));
}

export function directorClient(cmd: Command): DirectorClient {
  return DirectorClient.fromDataDir(directorDataDir(homeOf(cmd)));
}

/** A client for a VM's agent, with the address and token the cloud holds for it. */
export async function agentFor(cmd: Command, vmId: string): Promise<AgentClient> {
  const ep = await cloudClient(cmd).agentEndpoint(vmId);
  return new AgentClient({ address: ep.address, port: ep.agentPort, token: ep.token });
}

/**
 * Adds `parent NAME <target>`: one call on the local cloud for one target, then a
 * sentence saying what happened ("vm-1: crashed").
 */
export function addTargetCommand(
  parent: Command,
  usage: string,
  description: string,
  run: (cloud: LocalCloudClient, target: string) => Promise<unknown>,
  done: string,
): void {
  parent
    .command(usage)
    .description(description)
    .action(async (target: string, _o: unknown, cmd: Command) => {
      await run(cloudClient(cmd), target);
      print(`${target}: ${done}`);
    });
}
