/**
 * The Product service: the catalogue over gRPC (`bff.product.v1.ProductService`) with the
 * standard health service, its own database, and `product.*` events through the outbox.
 */

export type { ProductConfig } from './config.ts';
export { readProductConfig } from './config.ts';
export type { ProductServiceOptions, RunningProductService } from './service.ts';
export { startProductService } from './service.ts';
