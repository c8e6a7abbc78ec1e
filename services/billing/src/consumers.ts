import type { Database } from '@bff/db';
import { consumeOnce, type EventBus, type Subscription } from '@bff/events';
import type { Tracing } from '@bff/observability';
import { isUuid, openAccount } from './invoices.ts';

export const ACCOUNTS_CONSUMER = 'billing.accounts';

/** Opens a billing account for every user Identity registers; redeliveries are absorbed. */
export function subscribeAccountOpening(
  bus: EventBus,
  db: Database,
  tracing?: Tracing,
): Promise<Subscription> {
  return bus.subscribe(
    ACCOUNTS_CONSUMER,
    ['identity.user.registered'],
    async (event) => {
      const userId = (event.payload as { userId?: unknown } | null)?.userId;
      if (event.version !== 1 || typeof userId !== 'string' || !isUuid(userId)) {
        throw new TypeError(`identity.user.registered v${event.version}: payload.userId must be a UUID`);
      }
      await consumeOnce(db, ACCOUNTS_CONSUMER, event, (tx) => openAccount(tx, userId));
    },
    tracing ? { tracing } : {},
  );
}
