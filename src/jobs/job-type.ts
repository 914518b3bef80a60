/**
 * The job-type plugin interface. A job type turns a job's config (from the
 * manifest) into files and one long-running process the agent supervises, and
 * tells the agent how to check that the process serves. `process` is the first
 * type; `postgres` and `haproxy` implement the same interface.
 */
import type { z } from "zod";

/** What the agent tells a job about where it runs. */
export interface JobContext {
  jobName: string;
  vmId: string;
  /** The VM's address: jobs listen there. */
  address: string;
  /** The job's own directory on the ephemeral disk (config files, sockets, run state). */
  jobDir: string;
  /** The attached persistent disk, when the spec has one. */
  persistentDir?: string;
  /** Groups this VM links to, with their instances' addresses. */
  links: Record<
    string,
    {
      deployment: string;
      group: string;
      instances: Array<{ id: string; index: number; zone: string; address: string }>;
    }
  >;
  /** Writes a line to the job's log. */
  log(line: string): void;
}

/** The process the agent starts and supervises. It must stay in the foreground. */
export interface ProcessSpec {
  command: string;
  args: string[];
  env?: Record<string, string>;
  cwd?: string;
  /** Run as this system user (name); default: the agent's user. */
  user?: string;
  /** Signal asking it to stop (default SIGTERM); SIGKILL follows after the stop timeout. */
  stopSignal?: NodeJS.Signals;
}

export type HealthCheck =
  | { kind: "http"; host: string; port: number; path: string; status?: number }
  | { kind: "tcp"; host: string; port: number }
  /** Any check; resolves when healthy, rejects with the reason when not. */
  | { kind: "probe"; describe: string; run(): Promise<void> };

export interface JobType<C> {
  readonly type: string;
  readonly description: string;
  /** Validates the job's `config`; errors name the field. */
  readonly configSchema: z.ZodType<C>;
  /** Writes whatever the process needs (config files). Runs before every start; idempotent. */
  prepare?(ctx: JobContext, config: C): Promise<void>;
  /** The process to supervise. */
  process(ctx: JobContext, config: C): ProcessSpec;
  /** How to tell the job serves; undefined means "its process is alive". */
  healthCheck?(ctx: JobContext, config: C): HealthCheck | undefined;
  /** Type-specific draining before a stop (the spec's drain hook runs after it). */
  drain?(ctx: JobContext, config: C): Promise<void>;
}

/** A job type with its config type erased, as the registry holds it. */
export type AnyJobType = JobType<unknown>;

export function defineJobType<C>(type: JobType<C>): AnyJobType {
  return type as unknown as AnyJobType;
}
