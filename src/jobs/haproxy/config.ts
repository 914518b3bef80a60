/**
 * The `haproxy` job's properties: frontends (HTTP or TCP, on the VM's address and,
 * on the active node, the pair's VIP) and backends whose servers are a linked
 * group's instances (any deployment's) or fixed addresses.
 *
 *   type: haproxy
 *   properties:
 *     frontends:
 *       - { name: www, mode: http, port: 8000, backend: web }
 *     backends:
 *       - name: web
 *         mode: http
 *         link: web                      # a link of the group: its instances are the servers
 *         port: 8080                     # the servers' port
 *         health_check: { path: /healthz, interval: 500ms, fall: 2, rise: 2 }
 *       # or servers: [{ address: 127.0.0.5, port: 9000 }]
 *     status_port: 8404                  # the node's status API (role, config version, backends)
 */
import { z } from "zod";
import { durationMs } from "../../lib/duration.js";

const port = z.number().int("expected an integer port").min(1).max(65535, "expected a port up to 65535");
const name = z
  .string()
  .regex(/^[a-z][a-z0-9_-]{0,30}$/, "expected a name of lowercase letters, digits, - and _");
const mode = z.enum(["http", "tcp"]);

export const haproxyConfigSchema = z
  .object({
    frontends: z
      .array(z.object({ name, mode: mode.default("http"), port, backend: name }).strict())
      .min(1, "expected at least one frontend"),
    backends: z
      .array(
        z
          .object({
            name,
            mode: mode.default("http"),
            link: name.optional(),
            servers: z
              .array(z.object({ address: z.ipv4("expected an IPv4 address"), port }).strict())
              .optional(),
            port: port.optional(),
            balance: z.enum(["roundrobin", "leastconn", "source"]).default("roundrobin"),
            health_check: z
              .object({
                path: z
                  .string()
                  .regex(
                    // Visible ASCII but what ends a word of haproxy.cfg: " # ' \ (render.ts refuses them too).
                    /^\/[\x21\x24-\x26\x28-\x5b\x5d-\x7e]{0,254}$/,
                    "expected a path starting with / of at most 255 visible ASCII characters (no space, newline, control character, quote, # or \\; %-encode them)",
                  )
                  .optional(),
                interval: durationMs({ min: 100 }).default(500),
                fall: z.number().int().min(1).default(2),
                rise: z.number().int().min(1).default(2),
              })
              .strict()
              .default({ interval: 500, fall: 2, rise: 2 }),
          })
          .strict()
          .refine((b) => (b.link === undefined) !== (b.servers === undefined), {
            message: "give either link (a group's instances) or servers, not both",
          })
          .refine((b) => b.link === undefined || b.port !== undefined, {
            message: "a linked backend needs the port its servers listen on",
            path: ["port"],
          }),
      )
      .min(1, "expected at least one backend"),
    status_port: port.default(8404),
  })
  .strict()
  .superRefine((c, ctx) => {
    const backends = new Set(c.backends.map((b) => b.name));
    c.frontends.forEach((f, i) => {
      if (!backends.has(f.backend))
        ctx.addIssue({
          code: "custom",
          path: ["frontends", i, "backend"],
          message: `no backend "${f.backend}"`,
        });
    });
    const ports = c.frontends.map((f) => f.port);
    if (new Set([...ports, c.status_port]).size !== ports.length + 1)
      ctx.addIssue({
        code: "custom",
        path: ["frontends"],
        message: "each frontend and the status API need their own port",
      });
  });

export type HaproxyConfig = z.output<typeof haproxyConfigSchema>;
