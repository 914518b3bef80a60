/**
 * The broker as the control plane runs it: its catalog from the config file, its
 * secret box and basic-auth credentials (made on first start, kept sealed in the
 * store), and the loop that settles operations.
 */
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import type { Director } from "../director/director.js";
import type { BrokerCredentials } from "./api.js";
import type { Catalog } from "./catalog.js";
import { Broker } from "./service.js";

const CREDENTIALS_KEY = "broker:credentials";

export interface ControlPlaneBroker {
  broker: Broker;
  credentials: BrokerCredentials;
}

export async function startBroker(o: {
  catalog: Catalog;
  director: Director;
  log: Logger;
}): Promise<ControlPlaneBroker> {
  const catalog = o.catalog;
  const box = o.director.ctx.store.box;
  const settings = o.director.ctx.store.settings;
  const sealed = await settings.get(CREDENTIALS_KEY);
  let credentials: BrokerCredentials;
  if (sealed) {
    try {
      credentials = JSON.parse(box.open(sealed)) as BrokerCredentials;
    } catch {
      throw new Error(
        `the broker's sealed credentials do not open with ${box.keyPath}: restore that key file (a new one cannot read the stored secrets)`,
      );
    }
  } else {
    credentials = { username: "zonal-broker", password: randomBytes(18).toString("base64url") };
    await settings.set(CREDENTIALS_KEY, box.seal(JSON.stringify(credentials)));
  }
  const broker = new Broker(catalog, o.director, box, o.log);
  await broker.start();
  o.log.info(
    { plans: catalog.services.flatMap((s) => s.plans.map((p) => `${s.name}/${p.name}`)) },
    "service broker ready at /v2",
  );
  return { broker, credentials };
}
