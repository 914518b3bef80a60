/** `zonal openstack check`: is this OpenStack ready for zonal? */
import { Command } from "commander";
import { loadOpenStackConfig } from "../../cloud/openstack/config.js";
import { OpenStackCloud } from "../../cloud/openstack/driver.js";
import { print, printJson, table } from "../output.js";

export function openstackCommand(): Command {
  const os = new Command("openstack").description("the OpenStack driver: check a cloud before running on it");
  os.command("check")
    .description(
      "log in, negotiate Nova's microversion, list zones, hosts and their aggregate attributes, " +
        "and resolve the image and networks of the driver settings",
    )
    .argument("<settings>", "driver settings file (openstack.yml; see src/cloud/openstack/README.md)")
    .option("--json", "print JSON")
    .action(async (file: string, o: { json?: boolean }) => {
      const config = loadOpenStackConfig(file);
      const result = await new OpenStackCloud(config).check();
      if (o.json) return printJson({ source: config.source, authUrl: config.credentials.authUrl, ...result });
      print(`credentials:   ${config.source} (${config.credentials.authUrl})`);
      print(`nova:          microversion ${result.novaMicroversion}`);
      print(`image:         ${result.imageId}`);
      print(`network:       ${result.networkId}`);
      if (result.floatingNetworkId) print(`floating IPs:  ${result.floatingNetworkId}`);
      print(
        table(
          ["ZONE", "HOST", "STATE", "CPU", "RAM MiB", "ATTRIBUTES"],
          result.zones.flatMap((z) =>
            z.hosts.map((h) => [
              z.name,
              h.name,
              h.state,
              `${h.used.cpu}/${h.capacity.cpu}`,
              `${h.used.ramMb}/${h.capacity.ramMb}`,
              Object.entries(h.attributes)
                .map(([k, v]) => `${k}=${String(v)}`)
                .join(",") || "-",
            ]),
          ),
        ),
      );
    });
  return os;
}
