/** The director's state store: one object with a repository per table. */
import type { Kysely } from "kysely";
import { BrokerRecords } from "./broker.js";
import { SecretBox } from "../lib/secret-box.js";
import { openDatabase, type OpenOptions } from "./db.js";
import { Deployments } from "./deployments.js";
import { Instances } from "./instances.js";
import { Locks } from "./locks.js";
import type { Dialect } from "./migrations.js";
import type { Database } from "./schema.js";
import { Settings } from "./settings.js";
import { Maintenance } from "./maintenance.js";
import { Standbys } from "./standbys.js";
import { Tasks } from "./tasks.js";

/** Settings keys whose values earlier versions stored in plain text. */
const LEGACY_PLAIN_SECRETS = "secrets:";

export class Store {
  readonly settings: Settings;
  readonly maintenance: Maintenance;
  readonly deployments: Deployments;
  readonly instances: Instances;
  readonly tasks: Tasks;
  readonly locks: Locks;
  readonly standbys: Standbys;
  readonly broker: BrokerRecords;

  private constructor(
    readonly db: Kysely<Database>,
    readonly dialect: Dialect,
    readonly location: string,
    /** Seals what the store keeps secret (agent tokens here; passwords for its users). */
    readonly box: SecretBox,
  ) {
    this.settings = new Settings(db);
    this.maintenance = new Maintenance(this.settings);
    this.deployments = new Deployments(db);
    this.instances = new Instances(db, box);
    this.tasks = new Tasks(db);
    this.locks = new Locks(db);
    this.standbys = new Standbys(db, box);
    this.broker = new BrokerRecords(db);
  }

  /**
   * Opens the store with `box` (default: the key in the data dir), sealing any secret
   * an earlier version kept in plain text.
   */
  static async open(opts: OpenOptions & { box?: SecretBox }): Promise<Store> {
    const box = opts.box ?? SecretBox.inDataDir(opts.dataDir);
    const { db, dialect, location } = await openDatabase(opts);
    const store = new Store(db, dialect, location, box);
    await store.instances.sealPlainTokens();
    await store.standbys.sealPlainTokens();
    await store.sealPlainSecrets();
    return store;
  }

  /** Seals the settings earlier versions kept in plain text (the deployments' passwords, `secrets:*`). */
  private async sealPlainSecrets(): Promise<void> {
    const rows = await this.db.selectFrom("settings").selectAll().execute();
    for (const r of rows)
      if (r.key.startsWith(LEGACY_PLAIN_SECRETS) && !SecretBox.isSealed(r.value))
        await this.setSecret(r.key, r.value);
  }

  /** A secret kept in settings, sealed. */
  async setSecret(key: string, plain: string): Promise<void> {
    await this.settings.set(key, this.box.seal(plain));
  }

  /** A secret from settings (what earlier versions kept plain was sealed when the store opened). */
  async getSecret(key: string): Promise<string | undefined> {
    const stored = await this.settings.get(key);
    return stored === undefined ? undefined : this.box.open(stored);
  }

  async close(): Promise<void> {
    await this.db.destroy();
  }
}
