// The three workloads, as the web BFF is asked for them. Sizes are for one response.
export type WorkloadName = 'small' | 'medium' | 'large';

export const LARGE_INVOICES = 64;

export const workloads: Record<WorkloadName, { query: string; description: string }> = {
  small: {
    description: '~1 KB: the viewer and 4 invoice totals (1 upstream call)',
    query:
      'query Small { viewer { id name email invoices(first: 4) { edges { node { id status issuedAt total { amountMinor currency formatted } } } } } }',
  },
  medium: {
    description: '~10 KB: 20 invoices, 3 lines each, a product per line (3 upstream calls)',
    query:
      'query Medium { viewer { name avatarUrl invoices(first: 20) { edges { node { id status issuedAt total { formatted } lines { quantity amount { formatted } product { id name price { formatted } } } } } } } }',
  },
  large: {
    description: `~90 KB: ${LARGE_INVOICES} invoices with product descriptions (3 upstream calls)`,
    query: `query Large { viewer { name avatarUrl invoices(first: ${LARGE_INVOICES}) { edges { node { id status issuedAt total { formatted } lines { quantity amount { formatted } product { id name description price { formatted } } } } } } } }`,
  },
};
