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
  /** The cluster this VM is a member of, when its group is clustered (see ClusterSpec). */
  cluster: ClusterSpec | null;
  /** Secrets of the deployment (passwords), from the director. */
  secrets: Record<string, string>;
  /** What the agent lends jobs: its token (for the control plane) and its virtual addresses. */
  services: AgentServices;
  /** Writes a line to the job's log. */
  log(line: string): void;
}

/** A clustered group's coordinates, from the spec (the director fills them in). */
export interface ClusterSpec {
  /** Lease key prefix of the cluster: `<deployment>/<group>`. */
  key: string;
  /** This member's stable name (`m<index>`). */
  member: string;
  /** Every member's name, this one's included: the cluster's fixed membership. */
  members: string[];
  lease: { store: "embedded"; url: string } | { store: "etcd"; endpoints: string[] };
  ttl_ms: number;
  renew_ms: number;
  /** The cluster's virtual address (follows the leader), when it has one. */
  vip: string | null;
  control_plane_url: string;
  /**
   * The members' shared bearer token for each other's status API (status, failsafe):
   * the control plane gives it to this cluster's members only.
   */
  member_token: string;
}

export interface AgentServices {
  /** The VM's bearer token: the control plane knows the VM by it. */
  token: string;
  /** The control plane's CA (PEM) when VMs reach it over TLS (off loopback). */
  ca?: string;
  /** Where the control plane takes what VMs call (the heartbeat URL's origin), when the VM beats to one. */
  controlPlaneUrl?: string;
  /**
   * Serve exactly these virtual addresses from this VM (bind retried until free). An
   * address dropped takes no new connection; its open ones are cut, or, with
   * `lingerMs`, left to finish for up to that long.
   */
  setAddresses(specs: Array<{ address: string; ports: number[] }>, o?: { lingerMs?: number }): void;
  /** Cuts every connection forwarded from a virtual address now; the addresses stay served. */
  cutConnections(): void;
}

/** What a job's controller may do to its job's process. */
export interface JobHandle {
  /**
   * Stops the process and starts it again (prepare runs again first). `abort`: stop
   * it at once with the process's abort signal (no graceful part), for a process that
   * must stop now and will recover on start. `stopped` runs once the process has
   * exited, before it starts again (a leader gives up its lease there: nothing can
   * commit after the stop, and the start may take a while).
   */
  restartProcess(why: string, o?: { abort?: boolean; stopped?: () => Promise<unknown> }): Promise<void>;
  /** True while the process runs (started, not exited). */
  processRunning(): boolean;
}

/**
 * A job's controller: a loop beside the job's process (a cluster manager). It starts
 * before the process is prepared and stops after the process was stopped: what it
 * holds (a leader lease) outlives the writes it guards.
 */
export interface JobController {
  /**
   * Starts the controller; with `handedOver` (what a predecessor agent's controller
   * handed over, as JSON: validate it), it goes on from there with the job's process
   * already running — nothing is re-decided that the process was started with.
   */
  start(handedOver?: unknown): Promise<void>;
  stop(): Promise<void>;
  /**
   * For an agent handing over to its successor (a new zonal version) while the job
   * runs on: stops acting — its loop, its timers, its watchdog — without releasing
   * anything it holds (lease, VIP, role), and returns what the successor's controller
   * needs (`state`, JSON) with the deadline of the lease it holds (epoch ms; null:
   * none) — the successor must run by then — or undefined when it was not running.
   * Its listening sockets stay open: they go to the successor. A controller without
   * it cannot be handed over.
   */
  handOff?(): Promise<{ state: unknown; deadline: number | null } | undefined>;
  /** What `GET /v1/jobs/:name/status` shows (may be a promise). */
  status(): unknown;
  /**
   * The job is being stopped while its prepare may wait on this controller (a cluster
   * member waiting for the others before it starts): that wait gives up now.
   */
  abandonStart?(): void;
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
  /**
   * Who gets the stop signal: the whole process tree (default), or only the process,
   * which stops its children itself. A server whose children read the same signal as
   * something else needs "process": PostgreSQL's backends take SIGINT as a query
   * cancel, and a cancel releases a commit that waits for a synchronous standby.
   */
  stopSignalTo?: "tree" | "process";
  /**
   * Signal that stops it at once, skipping what the stop signal waits for (sent the
   * same way as the stop signal); default SIGKILL. PostgreSQL: SIGQUIT, immediate
   * shutdown — a fast one waits until every standby has the last WAL, which a
   * standby cut off from it never confirms.
   */
  abortSignal?: NodeJS.Signals;
}

export type HealthCheck =
  | { kind: "http"; host: string; port: number; path: string; status?: number }
  | { kind: "tcp"; host: string; port: number }
  /** Any check; resolves when healthy, rejects with the reason when not. */
  | { kind: "probe"; describe: string; run(): Promise<void> };

/** A job type; `K` is its controller's class, which `prepare` is handed (no global lookup). */
export interface JobType<C, K extends JobController = JobController> {
  readonly type: string;
  readonly description: string;
  /** Validates the job's `config`; errors name the field. */
  readonly configSchema: z.ZodType<C>;
  /** The job keeps its data on the instance's persistent disk (the manifest must give one). */
  readonly needsPersistentDisk?: boolean;
  /** Whether this config makes the group a cluster (the director then fills in the spec's cluster section). */
  clustered?(config: C): boolean;
  /** Group sizes a cluster of this type may have (default: 1, or 3 and more: a majority survives one loss). */
  readonly clusterSizes?: number[];
  /**
   * Writes whatever the process needs (config files). Runs before every start;
   * idempotent. `controller` is the one `controller` made for this job (undefined
   * when the type has none).
   */
  prepare?(ctx: JobContext, config: C, controller: K | undefined): Promise<void>;
  /** The process to supervise. */
  process(ctx: JobContext, config: C): ProcessSpec;
  /** How to tell the job serves; undefined means "its process is alive". */
  healthCheck?(ctx: JobContext, config: C): HealthCheck | undefined;
  /** Type-specific draining before a stop (the spec's drain hook runs after it). */
  drain?(ctx: JobContext, config: C): Promise<void>;
  /** A controller beside the process (e.g. the postgres cluster manager). */
  controller?(ctx: JobContext, config: C, handle: JobHandle): K | undefined;
}

/** A job type with its config type erased, as the registry holds it. */
export type AnyJobType = JobType<unknown>;

export function defineJobType<C, K extends JobController = JobController>(type: JobType<C, K>): AnyJobType {
  return type as unknown as AnyJobType;
}
