/** A service instance as `GET /v1/broker/instances` lists it (the CLI's `zonal services` and `zonal upgrade-services`). */
export interface BrokerInstanceView {
  id: string;
  /** The catalog service it is an instance of. */
  serviceId: string;
  plan: string;
  /** The version it runs (its plan's when it was last provisioned or updated), and its plan's now. */
  version: string | null;
  latest: string | null;
  behind: boolean;
  deployment: string;
  parameters: Record<string, unknown>;
  context: Record<string, unknown>;
  lastOperation: { id: string; kind: string; state: string; description: string | null };
  bindings: string[];
}
