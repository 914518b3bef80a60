/** Looks up a system user (uid, gid, home) in /etc/passwd, for jobs that run as one. */
import { readFileSync } from "node:fs";
import { InvalidInput } from "./errors.js";

export interface SystemUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

export function lookupUser(name: string): SystemUser {
  for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
    const [user, , uid, gid, , home] = line.split(":");
    if (user === name) return { name, uid: Number(uid), gid: Number(gid), home: home ?? "/" };
  }
  throw new InvalidInput(`user: no system user "${name}" on this VM`);
}
