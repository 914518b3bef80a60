/**
 * Tasks and events as the director's API sends them (and the store keeps them): the
 * CLI and other clients read these types from here, never from the store.
 */
export type TaskKind = "deploy" | "delete" | "recreate" | "stop" | "start" | "recover" | "upgrade-agents";
export type TaskState = "queued" | "running" | "done" | "failed";
export type EventLevel = "info" | "warn" | "error";

export interface TaskRecord {
  id: number;
  deployment: string | null;
  kind: TaskKind;
  state: TaskState;
  description: string;
  payload: unknown;
  progress: { done: number; total: number };
  result: string | null;
  owner: string | null;
  createdAt: string;
  startedAt: string | null;
  endedAt: string | null;
}

export interface EventRecord {
  id: number;
  taskId: number | null;
  deployment: string | null;
  instance: string | null;
  at: string;
  level: EventLevel;
  stage: string;
  message: string;
}
