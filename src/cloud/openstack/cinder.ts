/**
 * Cinder (block storage API v3), the calls the driver makes, in Cinder's wire
 * format. Volumes are attached and detached through Nova (which drives Cinder's
 * attachments API itself); Cinder is called directly to create, read and delete
 * volumes, to list their attachments (the attachments API), and for
 * `os-force_detach` of each when the server a volume is attached to is dead and
 * cannot let it go.
 */
import type { OpenStackSession } from "./session.js";

const BLOCK_STORAGE = ["volumev3", "block-storage"];

/** 3.27: the attachments API (volumes list their attachment ids). */
export const CINDER_VERSION = "3.27";

export interface CinderVolume {
  id: string;
  name: string | null;
  status: string;
  size: number;
  availability_zone: string;
  metadata: Record<string, string>;
  created_at: string;
  attachments: Array<{
    server_id: string;
    attachment_id: string;
    device?: string;
    host_name?: string | null;
  }>;
}

export interface CinderAttachment {
  id: string;
  status: string;
  instance: string | null;
  volume_id: string;
}

export class Cinder {
  constructor(private readonly session: OpenStackSession) {}

  private async call<T>(
    method: string,
    path: string,
    o: { body?: unknown; query?: Record<string, string | number | undefined>; okStatuses?: number[] } = {},
  ) {
    return this.session.request<T>({
      service: "cinder",
      path: `${await this.base()}${path}`,
      method,
      ...o,
      headers: { "openstack-api-version": `volume ${CINDER_VERSION}` },
    });
  }

  /** False when the cloud has no block storage service (then it has no volumes either). */
  available(): Promise<boolean> {
    return this.session.hasEndpoint(BLOCK_STORAGE);
  }

  private async base(): Promise<string> {
    const url = await this.session.endpoint(BLOCK_STORAGE);
    // Older catalogs end in /v3/<project_id>; newer ones in /v3.
    return /\/v3$/.test(url) ? `${url}/${await this.session.projectId()}` : url;
  }

  /** Creates a volume (GiB). Not idempotent. */
  async create(v: {
    name: string;
    sizeGb: number;
    zone: string;
    metadata: Record<string, string>;
  }): Promise<CinderVolume> {
    const res = await this.call<{ volume: CinderVolume }>("POST", "/volumes", {
      body: {
        volume: { name: v.name, size: v.sizeGb, availability_zone: v.zone, metadata: v.metadata },
      },
    });
    return res.body.volume;
  }

  /** The volume, or undefined when Cinder does not know it. */
  async get(id: string): Promise<CinderVolume | undefined> {
    const res = await this.call<{ volume: CinderVolume }>("GET", `/volumes/${encodeURIComponent(id)}`, {
      okStatuses: [404],
    });
    return res.status === 404 ? undefined : res.body.volume;
  }

  /** Volumes whose metadata has all of `metadata` (Cinder filters; the caller checks again). */
  async list(metadata?: Record<string, string>): Promise<CinderVolume[]> {
    const out: CinderVolume[] = [];
    for (let marker: string | undefined; ;) {
      const page = (
        await this.call<{ volumes: CinderVolume[] }>("GET", "/volumes/detail", {
          query: {
            limit: 500,
            marker,
            metadata: metadata && Object.keys(metadata).length > 0 ? JSON.stringify(metadata) : undefined,
          },
        })
      ).body.volumes;
      out.push(...page);
      if (page.length < 500) return out;
      marker = page[page.length - 1]!.id;
    }
  }

  /**
   * The volume's attachments from the attachments API (3.27), in any state: also one
   * left `reserved` or `attaching` by an attach that its server's failure cut short,
   * which the volume's own `attachments` field does not list.
   */
  async attachments(volumeId: string): Promise<CinderAttachment[]> {
    const res = await this.call<{ attachments: CinderAttachment[] }>("GET", "/attachments", {
      query: { volume_id: volumeId },
    });
    return res.body.attachments;
  }

  /** Deletes a volume. Idempotent (404 is success). */
  async delete(id: string): Promise<void> {
    await this.call("DELETE", `/volumes/${encodeURIComponent(id)}`, { okStatuses: [404] });
  }

  /**
   * `os-force_detach`: Cinder forgets one attachment whatever the server does (admin).
   * Only for a server that is fenced: its hypervisor is not told.
   */
  async forceDetach(volumeId: string, attachmentId: string): Promise<void> {
    await this.call("POST", `/volumes/${encodeURIComponent(volumeId)}/action`, {
      body: { "os-force_detach": { attachment_id: attachmentId, connector: null } },
    });
  }
}
