/**
 * `memo`: a data service that keeps its users in memory, for the in-process tests of
 * the broker and the director's bindings (the fake agent runs no job, so no real
 * service could answer). It is registered only by the tests that use it; its job
 * type runs `sleep infinity` wherever a real agent would start it.
 */
import { z } from "zod";
import { checkBindingUser } from "../jobs/bindings.js";
import type { DataService, ServiceEndpoint } from "../jobs/data-service.js";
import { defineJobType } from "../jobs/job-type.js";
import { registerJobType } from "../jobs/registry.js";
import { registerDataService } from "../jobs/services.js";

const configSchema = z
  .object({
    space: z
      .string()
      .regex(/^[a-z][a-z0-9_]{0,30}$/, "expected a space name")
      .default("main"),
    port: z.number().int().min(1).max(65535).default(7000),
  })
  .strict();

/** Every user made, by deployment, with its password (what a real service would keep). */
export const memoUsers = new Map<string, Map<string, string>>();

const usersOf = (at: ServiceEndpoint) => {
  let users = memoUsers.get(at.deployment);
  if (!users) memoUsers.set(at.deployment, (users = new Map()));
  return users;
};

export const memoService: DataService = {
  type: "memo",
  description: "a test service that keeps its users in memory",
  secrets: ["memo_admin_password"],
  bindings: {
    async create(at, username, password) {
      checkBindingUser(username, password);
      usersOf(at).set(username, password);
    },
    async drop(at, username) {
      usersOf(at).delete(username);
    },
    credentials: (at, username, password) => ({
      uri: `memo://${username}:${password}@${at.host}:${String(at.properties.port ?? 7000)}/${String(at.properties.space ?? "main")}`,
      host: at.host,
      port: at.properties.port ?? 7000,
      space: at.properties.space ?? "main",
      username,
      password,
    }),
  },
  parameters: {
    provision: z
      .object({
        space: z
          .string()
          .regex(/^[a-z][a-z0-9_]{0,30}$/, "expected a space name")
          .optional(),
      })
      .strict(),
    apply: (properties, parameters) =>
      typeof parameters.space === "string" ? { ...properties, space: parameters.space } : properties,
  },
};

/** Registers the memo job type and data service (idempotent). */
export function registerMemo(): void {
  registerJobType(
    defineJobType({
      type: "memo",
      description: memoService.description,
      configSchema,
      process: () => ({ command: "sleep", args: ["infinity"] }),
    }),
  );
  registerDataService(memoService);
}
