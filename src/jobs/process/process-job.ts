/**
 * Job type `process`: runs any command, supervised, with an optional HTTP or TCP
 * health check against the VM's address.
 *
 *   type: process
 *   config:
 *     command: "exec python3 -m http.server 8080 --bind $ZONAL_ADDRESS"   # via /bin/sh -c
 *     # or: command: [/usr/bin/node, server.js]                        # argv, no shell
 *     env: { GREETING: hello }
 *     user: nobody
 *     health_check: { http: { port: 8080, path: /, status: 200 } }     # or { tcp: { port: 8080 } }
 */
import { z } from "zod";
import { defineJobType, type HealthCheck } from "../job-type.js";

const port = z.number().int("expected an integer port").min(1).max(65535, "expected a port up to 65535");

export const processConfigSchema = z
  .object({
    command: z.union([
      z.string().min(1, "expected a shell command"),
      z.array(z.string()).min(1, "expected [program, ...args]"),
    ]),
    env: z.record(z.string(), z.string()).default({}),
    user: z.string().min(1).optional(),
    health_check: z
      .union([
        z.object({
          http: z
            .object({
              port,
              path: z.string().startsWith("/", "expected a path starting with /").default("/"),
              status: z.number().int().min(100).max(599).optional(),
            })
            .strict(),
        }),
        z.object({ tcp: z.object({ port }).strict() }).strict(),
      ])
      .optional(),
  })
  .strict();

export type ProcessConfig = z.output<typeof processConfigSchema>;

export const processJob = defineJobType<ProcessConfig>({
  type: "process",
  description: "any command, supervised, with an optional HTTP or TCP health check",
  configSchema: processConfigSchema,
  process(ctx, config) {
    const [command, ...args] =
      typeof config.command === "string" ? ["/bin/sh", "-c", config.command] : config.command;
    return {
      command: command!,
      args,
      env: config.env,
      cwd: ctx.jobDir,
      ...(config.user ? { user: config.user } : {}),
    };
  },
  healthCheck(ctx, config): HealthCheck | undefined {
    const hc = config.health_check;
    if (!hc) return undefined;
    if ("http" in hc) {
      return {
        kind: "http",
        host: ctx.address,
        port: hc.http.port,
        path: hc.http.path,
        ...(hc.http.status ? { status: hc.http.status } : {}),
      };
    }
    return { kind: "tcp", host: ctx.address, port: hc.tcp.port };
  },
});
