import { InProcessEventBus } from '@bff/events';
import { type Money__Output, type Product__Output, productProtoPath, protoLoaderOptions } from '@bff/schema';
import { readCommittedProductTypes, renderProductTypes } from '@bff/schema/product-types';
import { throwawayDatabase } from '@bff/testkit';
import { createProductClient, type ProductPage, type ProductRecord } from '@bff/upstream-clients';
import * as protoLoader from '@grpc/proto-loader';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { startProductService } from '../src/index.ts';

describe('the Product contract types generated from product.proto', () => {
  it('are current: rendering them again gives the committed files (else run pnpm proto:generate)', async () => {
    const [rendered, committed] = await Promise.all([renderProductTypes(), readCommittedProductTypes()]);
    expect([...committed.keys()]).toEqual([...rendered.keys()]);
    for (const [path, text] of rendered) expect(committed.get(path), path).toBe(text);
  });

  it('are what the client exports as ProductRecord and ProductPage', () => {
    expectTypeOf<keyof ProductRecord>().toEqualTypeOf<keyof Product__Output>();
    expectTypeOf<ProductRecord>().toExtend<Product__Output>();
    expectTypeOf<ProductRecord['price']>().toEqualTypeOf<Money__Output>();
    expectTypeOf<ProductPage['products']>().toEqualTypeOf<ProductRecord[]>();
  });
});

const definition = protoLoader.loadSync(productProtoPath, protoLoaderOptions);
const PACKAGE = 'bff.product.v1';

/** The JS type proto-loader gives a scalar, with int64 as numbers and enums as strings. */
const JS_TYPES: Record<string, string> = {
  TYPE_STRING: 'string',
  TYPE_BOOL: 'boolean',
  TYPE_INT32: 'number',
  TYPE_UINT32: 'number',
  TYPE_SINT32: 'number',
  TYPE_INT64: 'number',
  TYPE_UINT64: 'number',
  TYPE_SINT64: 'number',
  TYPE_DOUBLE: 'number',
  TYPE_FLOAT: 'number',
  TYPE_ENUM: 'string',
};

interface FieldDescriptor {
  name: string;
  label: string;
  type: string;
  typeName: string;
}

/** Every way `value` differs from the message's fields as the generated `__Output` type states them. */
function mismatches(value: unknown, message: string, path: string): string[] {
  const type = (definition[`${PACKAGE}.${message}`] as { type?: { field: FieldDescriptor[] } } | undefined)
    ?.type;
  if (!type) return [`${path}: no message ${message}`];
  if (typeof value !== 'object' || value === null) return [`${path}: expected a ${message} object`];
  const record = value as Record<string, unknown>;
  const problems: string[] = [];
  const names = type.field.map((f) => f.name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()));
  for (const key of Object.keys(record)) {
    if (!names.includes(key)) problems.push(`${path}.${key}: not a field of ${message}`);
  }
  type.field.forEach((field, i) => {
    const name = names[i] as string;
    const at = `${path}.${name}`;
    if (!(name in record)) {
      problems.push(`${at}: missing`);
      return;
    }
    const check = (item: unknown, where: string) => {
      if (field.type === 'TYPE_MESSAGE') problems.push(...mismatches(item, field.typeName, where));
      else if (typeof item !== JS_TYPES[field.type]) {
        problems.push(`${where}: ${typeof item}, expected ${JS_TYPES[field.type] ?? field.type}`);
      }
    };
    const fieldValue = record[name];
    if (field.label === 'LABEL_REPEATED') {
      if (!Array.isArray(fieldValue)) problems.push(`${at}: expected an array`);
      else {
        for (const [n, item] of fieldValue.entries()) check(item, `${at}[${n}]`);
      }
    } else check(fieldValue, at);
  });
  return problems;
}

describe('a product decoded by the client', () => {
  const database = throwawayDatabase('pglite', 'product');
  const bus = new InProcessEventBus();
  let service: Awaited<ReturnType<typeof startProductService>>;
  let client: ReturnType<typeof createProductClient>;

  beforeAll(async () => {
    service = await startProductService({
      port: 0,
      database: database.options,
      bus,
      logger: pino({ level: 'silent' }),
    });
    client = createProductClient({ address: service.address });
  });
  afterAll(async () => {
    client?.close();
    await service?.close();
    await bus.close();
    await database.drop();
  });

  it('has every field of bff.product.v1.Product, each with the JS type the generated type states', async () => {
    const [batch, single, page] = await Promise.all([
      client.getProducts(['p-0001', 'p-0002']),
      client.getProduct('p-0003'),
      client.listProducts({ pageSize: 3 }),
    ]);
    const updated = await client.updatePrice('p-0004', { amountMinor: 1_234, currency: 'EUR' });
    const records: ProductRecord[] = [...batch, ...page.products, updated];
    if (single) records.push(single);
    expect(records).toHaveLength(7);
    for (const record of records) {
      expect(mismatches(record, 'Product', record.id)).toEqual([]);
      expect(record.price).not.toBeNull();
    }
    expect(updated.price).toEqual({ amountMinor: 1_234, currency: 'EUR' });
    expect(mismatches(page, 'ListProductsResponse', 'page')).toEqual([]);
  });
});
