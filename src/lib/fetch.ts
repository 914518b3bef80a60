/**
 * The fetch zonal's own clients use. Without a CA it is node's global fetch; with
 * one (PEM), undici's fetch over a dispatcher that trusts exactly that CA and checks
 * the server's name against its certificate (node's global fetch cannot take a CA
 * per request). One dispatcher per CA, shared, so connections are kept alive
 * across clients. Failures look the same either way: a TypeError whose `cause`
 * carries the code (ECONNREFUSED, UND_ERR_SOCKET, UNABLE_TO_VERIFY_LEAF_SIGNATURE, …).
 */
import { Agent, fetch as undiciFetch } from "undici";
import { InvalidInput } from "./errors.js";

export interface FetchInit {
  method: string;
  headers: Record<string, string>;
  body?: string | undefined;
  signal: AbortSignal;
}

export interface FetchResponse {
  ok: boolean;
  status: number;
  statusText: string;
  text(): Promise<string>;
  body: { cancel(): Promise<void> } | null;
  headers: { get(name: string): string | null };
}

export type Fetch = (url: URL | string, init: FetchInit) => Promise<FetchResponse>;

const dispatchers = new Map<string, Agent>();

/**
 * The fetch for requests to `url`, trusting only `ca` when given. InvalidInput when a
 * CA is given for a URL that is not https (the CA would silently go unused).
 */
export function fetcherFor(url: string, ca?: string): Fetch {
  if (ca === undefined) return fetch;
  if (new URL(url).protocol !== "https:") {
    throw new InvalidInput(`${url}: a CA is given, so expected an https URL`);
  }
  let dispatcher = dispatchers.get(ca);
  if (!dispatcher) {
    dispatcher = new Agent({ connect: { ca } });
    dispatchers.set(ca, dispatcher);
  }
  const d = dispatcher;
  return (u, init) => undiciFetch(u, { ...init, dispatcher: d });
}

/** What a failed fetch says went wrong: the cause's code (ECONNREFUSED, …), else the error's name. */
export function failureCode(err: unknown): string {
  return (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
}

/** A response body: undefined when empty, parsed JSON when it is JSON, else the text itself. */
export function parseBody(text: string): unknown {
  if (text === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
