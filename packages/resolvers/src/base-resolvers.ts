import { BffErrorCode } from '@bff/error-codes';
import { BillingRejection, type ProductRecord } from '@bff/upstream-clients';
import { GraphQLError, GraphQLScalarType, Kind } from 'graphql';
import type { BffContext, LiveSource, LiveUpdate, Viewer } from './context.ts';
import { requireViewer, userInput } from './errors.ts';
import type { Resolvers } from './generated/base-types.ts';
import { input } from './input.ts';
import { money } from './money.ts';
import { pageSize, productCursor, productIdFromCursor } from './pagination.ts';

export type ProductParent = ProductRecord;

const CANONICAL_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

const DateTime = new GraphQLScalarType<Date, string>({
  name: 'DateTime',
  description: 'An ISO-8601 instant in UTC, e.g. 2026-11-21T09:30:00.000Z.',
  serialize(value) {
    // Upstreams already send canonical UTC instants; pass those through without a Date.
    if (typeof value === 'string' && CANONICAL_INSTANT.test(value)) return value;
    const date = value instanceof Date ? value : new Date(String(value));
    if (Number.isNaN(date.getTime())) throw new TypeError('DateTime cannot represent an invalid date');
    return date.toISOString();
  },
  parseValue(value) {
    const date = typeof value === 'string' ? new Date(value) : new Date(Number.NaN);
    if (Number.isNaN(date.getTime())) throw new TypeError('DateTime must be an ISO-8601 string');
    return date;
  },
  parseLiteral(ast) {
    const date = ast.kind === Kind.STRING ? new Date(ast.value) : new Date(Number.NaN);
    if (Number.isNaN(date.getTime())) throw new TypeError('DateTime must be an ISO-8601 string');
    return date;
  },
});

function liveOf(context: BffContext): LiveSource {
  if (!context.live)
    throw new GraphQLError('Subscriptions are served over WebSocket (graphql-transport-ws) on this path', {
      extensions: { code: BffErrorCode.BadRequest },
    });
  return context.live;
}

/** A string id from an event's payload, or undefined. */
function idIn(update: LiveUpdate, field: string): string | undefined {
  const value = (update.event.payload as Record<string, unknown> | null | undefined)?.[field];
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

async function loadUser(viewer: Viewer, context: BffContext) {
  const user = await context.loaders.user.load(viewer.id);
  if (!user)
    throw new GraphQLError('Your account no longer exists', { extensions: { code: BffErrorCode.NotFound } });
  return user;
}

/**
 * Resolvers for the base SDL (`schema/graphql/base.graphql`), shared by every app. Typed by the
 * generated `Resolvers` (`pnpm codegen`): arguments, parents and return types come from the SDL.
 */
export const baseResolvers: Resolvers = {
  DateTime,
  Query: {
    viewer: (_, __, context) => context.viewer,
    product: (_, args, context) => context.loaders.product.load(input.productId(args.id, 'id')),
    // One malformed id fails the whole field (null, one BAD_USER_INPUT naming `ids`): it is an
    // argument error, like a list too long, and the client's list is what needs fixing. An id
    // that is well-formed but names no product is still just a null in its place.
    productsByIds: async (_, args, context) => {
      if (args.ids.length > 100) throw userInput('ids', `at most 100 ids, received ${args.ids.length}`);
      for (const id of args.ids) input.productId(id, 'ids');
      return context.loaders.product.loadMany(args.ids).then((results) =>
        results.map((result) => {
          if (result instanceof Error) throw result;
          return result;
        }),
      );
    },
    products: async (_, args, context) => {
      const first = pageSize(args.first, context.policy.products);
      if (args.search) input.searchText(args.search, 'search');
      if (args.category) input.category(args.category, 'category');
      const page = await context.loaders.productPage.load({
        first,
        afterId: args.after ? productIdFromCursor(args.after) : undefined,
        category: args.category ?? undefined,
        search: args.search?.trim() || undefined,
      });
      const edges = page.products.map((node) => ({ cursor: productCursor(node.id), node }));
      return {
        edges,
        totalCount: page.totalSize,
        pageInfo: { hasNextPage: page.nextPageToken !== '', endCursor: edges.at(-1)?.cursor ?? null },
      };
    },
  },
  Mutation: {
    purchase: async (_, args, context) => {
      const viewer = requireViewer(context);
      const { productId, quantity, idempotencyKey } = args.input;
      if (quantity < 1 || quantity > 1_000)
        throw userInput('quantity', `quantity must be between 1 and 1000, received ${quantity}`);
      input.idempotencyKey(idempotencyKey, 'idempotencyKey');
      input.productId(productId, 'productId');
      const invoice = await context.commands.purchase({
        userId: viewer.id,
        productId,
        quantity,
        idempotencyKey,
      });
      return { invoice };
    },
    payInvoice: async (_, args, context) => {
      const viewer = requireViewer(context);
      const invoice = await context.loaders.invoice.load(input.invoiceId(args.id, 'id'));
      // Someone else's invoice is reported exactly like a missing one: existence is not revealed.
      if (!invoice || invoice.userId !== viewer.id) {
        throw new GraphQLError('Invoice not found', { extensions: { code: BffErrorCode.NotFound } });
      }
      return context.commands.payInvoice(args.id);
    },
  },
  Subscription: {
    invoiceChanged: {
      subscribe: (_, __, context) => liveOf(context).invoicesOf(requireViewer(context).id),
      // The loaders here are the event's (see LiveSource): every device of the viewer subscribed
      // on this replica shares one read of the invoice.
      resolve: async (update: LiveUpdate, _: unknown, context: BffContext) => {
        const id = idIn(update, 'invoiceId');
        const invoice = id ? await context.loaders.invoice.load(id) : null;
        // Topics are per user, so this is the viewer's; checked all the same.
        if (!invoice || invoice.userId !== context.viewer?.id)
          throw new GraphQLError('Invoice not found', { extensions: { code: BffErrorCode.NotFound } });
        return invoice;
      },
    },
    productChanged: {
      subscribe: (_, args, context) => {
        if (args.ids.length === 0 || args.ids.length > 100)
          throw userInput('ids', `1 to 100 ids, received ${args.ids.length}`);
        for (const id of args.ids) input.productId(id, 'ids');
        return liveOf(context).products(args.ids);
      },
      resolve: async (update: LiveUpdate, _: unknown, context: BffContext) => {
        const id = idIn(update, 'productId');
        const product = id ? await context.loaders.product.load(id) : null;
        if (!product)
          throw new GraphQLError('Product not found', { extensions: { code: BffErrorCode.NotFound } });
        return product;
      },
    },
  },
  User: {
    email: async (viewer, _, context) => viewer.email ?? (await loadUser(viewer, context)).email,
    name: async (viewer, _, context) => viewer.name ?? (await loadUser(viewer, context)).name,
    avatarUrl: async (viewer, _, context) => (await loadUser(viewer, context)).avatarUrl,
    invoices: async (viewer, args, context) => {
      const first = pageSize(args.first, context.policy.invoices);
      const after = args.after ? input.invoiceCursor(args.after, 'after') : undefined;
      const page = await context.loaders.invoicePage
        .load({ userId: viewer.id, first, after })
        .catch((error: unknown) => {
          // Billing's 400 here can only be about the cursor (the user id is the viewer's own).
          if (error instanceof BillingRejection && error.status === 400)
            throw userInput('after', 'after is not a cursor this API issued');
          throw error;
        });
      return {
        edges: page.invoices.map((node) => ({ cursor: node.cursor, node })),
        pageInfo: page.pageInfo,
      };
    },
  },
  Invoice: {
    total: (invoice, _, context) => money(invoice.totalMinor, invoice.currency, context.locale),
  },
  InvoiceLine: {
    product: (line, _, context) => context.loaders.product.load(line.productId),
    unitPrice: (line, _, context) => money(line.unitPriceMinor, line.currency, context.locale),
    amount: (line, _, context) => money(line.amountMinor, line.currency, context.locale),
  },
  Product: {
    price: (product, _, context) => money(product.price.amountMinor, product.price.currency, context.locale),
    inStock: (product) => product.inventory > 0,
  },
  // Money has no resolvers: `money()` values carry `formatted` as a getter (see money.ts).
};
