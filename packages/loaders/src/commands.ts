import type { BillingInvoice } from '@bff/upstream-clients';
import type { Loaders } from './loaders.ts';
import type { RequestScope, Upstreams } from './upstreams.ts';

/** Writes, for mutation resolvers. Each keeps the request's loaders consistent with what it changed. */
export interface Commands {
  purchase(input: {
    userId: string;
    productId: string;
    quantity: number;
    idempotencyKey: string;
  }): Promise<BillingInvoice>;
  payInvoice(id: string): Promise<BillingInvoice>;
  /** Exchanges credentials for an access token (InvalidCredentialsError when wrong). */
  login(credentials: {
    email: string;
    password: string;
    audience: string;
  }): Promise<{ accessToken: string; expiresIn: number }>;
}

export function createCommands(upstreams: Upstreams, loaders: Loaders, scope: RequestScope = {}): Commands {
  // Commands call the service once each (no batching): their tries hang off the request's span.
  const call = { signal: scope.signal, deadline: scope.deadline, trace: scope.trace };
  return {
    async purchase(input) {
      const { invoice } = await upstreams.billing.purchase(input, call);
      // The viewer's invoice lists changed (a purchase does not change the catalogue).
      scope.entities?.wrote('Invoices', invoice.userId);
      scope.entities?.wrote('Invoice', invoice.id);
      loaders.invoice.clear(invoice.id).prime(invoice.id, invoice);
      loaders.invoicePage.clearAll();
      return invoice;
    },
    login: (credentials) => upstreams.identity.issueToken(credentials, call),
    async payInvoice(id) {
      const invoice = await upstreams.billing.payInvoice(id, call);
      scope.entities?.wrote('Invoice', id);
      scope.entities?.wrote('Invoices', invoice.userId);
      loaders.invoice.clear(id).prime(id, invoice);
      loaders.invoicePage.clearAll();
      return invoice;
    },
  };
}
