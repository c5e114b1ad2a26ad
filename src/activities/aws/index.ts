/**
 * EC2 instances, RDS DB instances and Aurora DB clusters that follow an environment: those
 * tagged `namespace=<ns>` and `scheduler=enabled`. The activities the workflows call, the
 * status read the Slack commands show, and the inventory table's set-up, built from the
 * parts in this folder: the inventory (inventory.ts), the actions (actions.ts), and what
 * both list and call AWS with (resources.ts, sdk.ts).
 */
import type { AwsActionReport, AwsActivities, AwsStatus } from '../contracts';
import { holdUntil } from '../timing';
import { createAwsActions, type Action, type AwsActions } from './actions';
import { createDatabaseWait } from './databases';
import { createInventory, ensureTable, type Inventory } from './inventory';
import { createResourceLister, type ResourceLister } from './resources';
import { createAwsClients, inventoryTableRegion, notAllowedIsFinal, type AwsSettings } from './sdk';

export function createAwsActivities(settings: AwsSettings): AwsActivities {
  const aws = connect(settings);
  if (!aws) return withoutAws();
  const { inventory, actions, lister } = aws;
  const awaitDatabases = createDatabaseWait(settings.databaseWait ?? { timeoutMs: 0 }, lister);
  return {
    refreshAwsInventory: () => inventory.refresh(),
    restopOrphanedAwsResources: (environments, existingNamespaces) => actions.restopOrphans(environments, existingNamespaces),
    async stopAwsResources(namespace, timing, options) {
      await holdUntil(timing);
      return actions.stop(namespace, options);
    },
    startAwsResources: (namespace, options) => actions.start(namespace, options),
    awsStatus: (namespace) => actions.status(namespace),
    awaitDatabases: (namespace, wait) => notAllowedIsFinal(`describe the databases of ${namespace}`, () => awaitDatabases(namespace, wait)),
  };
}

/** The status of a namespace's resources, read outside any workflow (the Slack status table). */
export function createAwsStatusReader(settings: AwsSettings): (namespace: string) => Promise<AwsStatus> {
  const aws = connect(settings);
  return aws ? (namespace) => aws.actions.status(namespace) : withoutAws().awsStatus;
}

/**
 * Checks that the inventory table exists with the expected key; with `create`, creates it
 * (on-demand billing) and waits until it is active. `disabled` when no region is configured.
 */
export async function ensureInventoryTable(
  settings: AwsSettings,
  options?: { create?: boolean },
): Promise<'exists' | 'created' | 'disabled'> {
  const tableRegion = inventoryTableRegion(settings);
  if (!tableRegion) return 'disabled';
  return ensureTable({ ...settings, tableRegion }, createAwsClients(settings, tableRegion).dynamo, options);
}

function connect(settings: AwsSettings): { inventory: Inventory; actions: AwsActions; lister: ResourceLister } | undefined {
  const tableRegion = inventoryTableRegion(settings);
  if (!tableRegion) return undefined;
  const now = settings.now ?? (() => new Date());
  const clients = createAwsClients(settings, tableRegion);
  const lister = createResourceLister(clients, settings.pageSize);
  const inventory = createInventory({ ...settings, tableRegion, now }, clients.table, lister);
  return { inventory, actions: createAwsActions({ ...settings, now }, clients, lister, inventory), lister };
}

/**
 * With no region configured no AWS resource follows an environment: the activities answer
 * at once with empty reports, so the workflows call them unconditionally.
 */
function withoutAws(): AwsActivities {
  const notes = ['AWS_REGIONS is not set: no EC2 or RDS resources follow environments'];
  const report = (namespace: string, action: Action): AwsActionReport => ({
    namespace,
    action,
    source: 'live',
    resources: [],
    notes,
    durationMs: 0,
  });
  return {
    refreshAwsInventory: async () => ({ regions: [], resources: 0, namespaces: 0, removed: 0, withoutNamespace: [], durationMs: 0 }),
    restopOrphanedAwsResources: async () => ({ resources: [], restopped: 0 }),
    stopAwsResources: async (namespace) => report(namespace, 'stop'),
    startAwsResources: async (namespace) => report(namespace, 'start'),
    awsStatus: async (namespace) => ({ namespace, source: 'live', resources: [], notes }),
    awaitDatabases: async (_namespace, wait) => ({ ...wait, durationMs: 0 }),
  };
}
