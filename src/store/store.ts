/** The director's state store: one object with a repository per table. */
import type { Kysely } from "kysely";
import { BrokerRecords } from "./broker.js";
import { openDatabase, type OpenOptions } from "./db.js";
import { Deployments } from "./deployments.js";
import { Instances } from "./instances.js";
import { Locks } from "./locks.js";
import type { Dialect } from "./migrations.js";
import type { Database } from "./schema.js";
import { Settings } from "./settings.js";
import { Standbys } from "./standbys.js";
import { Tasks } from "./tasks.js";

export class Store {
  readonly settings: Settings;
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
  ) {
    this.settings = new Settings(db);
    this.deployments = new Deployments(db);
    this.instances = new Instances(db);
    this.tasks = new Tasks(db);
    this.locks = new Locks(db);
    this.standbys = new Standbys(db);
    this.broker = new BrokerRecords(db);
  }

  static async open(opts: OpenOptions): Promise<Store> {
    const { db, dialect, location } = await openDatabase(opts);
    return new Store(db, dialect, location);
  }

  async close(): Promise<void> {
    await this.db.destroy();
  }
}
