/**
 * Error classes shared by every zonal component. Each class names the recovery
 * action a caller should take (STYLE.md point 10); the HTTP layer maps them to
 * status codes in one place (`http-server.ts`) and clients map them back
 * (`http-client.ts`), so an error crosses a process boundary with its class intact.
 */

/** One problem with one field of some input. `field` is a dotted path ("vm_type.ram_mb"). */
export interface FieldProblem {
  field: string;
  problem: string;
}

export abstract class ZonalError extends Error {
  /** Stable, machine-readable code; also the `error` field of HTTP error bodies. */
  abstract readonly code: string;
  /** HTTP status used when this error crosses an API. */
  abstract readonly status: number;
  /** True when the same call may succeed if retried later, unchanged. */
  readonly retryable: boolean = false;
  /** Extra fields for the HTTP error body (e.g. per-host reasons). */
  details(): Record<string, unknown> | undefined {
    return undefined;
  }

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The input is wrong. Fix the input; retrying it unchanged fails again. Nothing was changed. */
export class InvalidInput extends ZonalError {
  readonly code = "invalid_input";
  readonly status = 400;
  constructor(
    message: string,
    readonly problems: FieldProblem[] = [],
  ) {
    super(message);
  }
}

/** The named thing does not exist. */
export class NotFound extends ZonalError {
  readonly code: string = "not_found";
  readonly status = 404;
}

/** The request conflicts with the current state (in use, locked, wrong state). Nothing was changed. */
export class Conflict extends ZonalError {
  readonly code: string = "conflict";
  readonly status = 409;
}

/** Missing or wrong credentials. */
export class Unauthorized extends ZonalError {
  readonly code = "unauthorized";
  readonly status = 401;
}

/** The caller is known but may not do this (act for another VM, publish another's address). Nothing was changed. */
export class Forbidden extends ZonalError {
  readonly code = "forbidden";
  readonly status = 403;
}

/** The caller asks too often; it may ask again after a while. Nothing was changed. */
export class TooManyRequests extends ZonalError {
  readonly code = "too_many_requests";
  readonly status = 429;
}

/** A transient failure (a peer is down, a timeout). Retrying later may succeed. */
export class Unavailable extends ZonalError {
  readonly code: string = "unavailable";
  readonly status = 503;
  override readonly retryable = true;
}

/** A bug or an unexpected failure; the message is all we know. */
export class Internal extends ZonalError {
  readonly code = "internal";
  readonly status = 500;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
