/**
 * What every SQL data service's bindings share: the user names zonal makes (`u_` and
 * 12 hex digits, so dropping one can never hit another account), the passwords it
 * makes (base64url), and the broker's `database` parameter.
 */
import { z } from "zod";
import { InvalidInput } from "../lib/errors.js";
import type { ServiceParameters } from "./data-service.js";

const BINDING_USER = /^u_[0-9a-f]{12}$/;

/** Refuses a user name zonal would not make, or a password with characters it would not use. */
export function checkBindingUser(username: string, password?: string): void {
  if (!BINDING_USER.test(username))
    throw new InvalidInput(
      `username: expected a user made by zonal (u_ and 12 hex digits), got "${username}"`,
    );
  if (password !== undefined && !/^[A-Za-z0-9_-]+$/.test(password))
    throw new InvalidInput("password: expected base64url characters");
}

/** Provision parameter `database`: the database the instance's bindings get every right on. */
export const databaseParameters: ServiceParameters = {
  provision: z
    .object({
      database: z
        .string()
        .regex(/^[a-z][a-z0-9_]{0,62}$/, "expected a database name of lowercase letters, digits and _")
        .optional(),
    })
    .strict(),
  apply: (properties, parameters) =>
    typeof parameters.database === "string" ? { ...properties, database: parameters.database } : properties,
};
