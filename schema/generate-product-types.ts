// `pnpm proto:generate`: writes the Product contract's TypeScript types (see product-types.ts).
import { relative } from 'node:path';
import { productTypesDir, writeProductTypes } from './product-types.ts';

const written = await writeProductTypes();
console.log(`wrote ${written.length} files to ${relative(process.cwd(), productTypesDir)}`);
