/** Absolute paths to the contract files in this folder, and the loaded gRPC service. */
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { Money__Output } from './product/v1/generated/bff/product/v1/Money.ts';
import type { Product__Output } from './product/v1/generated/bff/product/v1/Product.ts';
import type { ProtoGrpcType } from './product/v1/generated/product.ts';

// The Product contract's types, generated from product.proto by `pnpm proto:generate` with the
// options below: `X` is what a sender may pass, `X__Output` exactly what proto-loader decodes.
export type {
  GetProductRequest,
  GetProductRequest__Output,
} from './product/v1/generated/bff/product/v1/GetProductRequest.ts';
export type {
  GetProductsRequest,
  GetProductsRequest__Output,
} from './product/v1/generated/bff/product/v1/GetProductsRequest.ts';
export type {
  GetProductsResponse,
  GetProductsResponse__Output,
} from './product/v1/generated/bff/product/v1/GetProductsResponse.ts';
export type { Image, Image__Output } from './product/v1/generated/bff/product/v1/Image.ts';
export type {
  ListProductsRequest,
  ListProductsRequest__Output,
} from './product/v1/generated/bff/product/v1/ListProductsRequest.ts';
export type {
  ListProductsResponse,
  ListProductsResponse__Output,
} from './product/v1/generated/bff/product/v1/ListProductsResponse.ts';
export type { Money, Money__Output } from './product/v1/generated/bff/product/v1/Money.ts';
export type { Product, Product__Output } from './product/v1/generated/bff/product/v1/Product.ts';
export type {
  ProductServiceClient,
  ProductServiceDefinition,
  ProductServiceHandlers,
} from './product/v1/generated/bff/product/v1/ProductService.ts';
export type {
  UpdatePriceRequest,
  UpdatePriceRequest__Output,
} from './product/v1/generated/bff/product/v1/UpdatePriceRequest.ts';

/**
 * A decoded `bff.product.v1.Product` whose price is set: what the service's store holds and the
 * client hands out. proto3 decodes an unset message field as null; every catalogue product has
 * a price, so both sides fill it rather than make every reader check.
 */
export interface PricedProduct extends Omit<Product__Output, 'price'> {
  price: Money__Output;
}

/** The generated client constructor, with its `.service` definition. */
export type ProductServiceConstructor = ProtoGrpcType['bff']['product']['v1']['ProductService'];

export const productProtoPath = fileURLToPath(new URL('./product/v1/product.proto', import.meta.url));
/** The base GraphQL SDL every BFF shares. */
export const baseSchemaPath = fileURLToPath(new URL('./graphql/base.graphql', import.meta.url));
/** Folder for proto imports. */
export const protoRoot = fileURLToPath(new URL('./', import.meta.url));

/**
 * Field mapping shared by client and server: camelCase names, int64 as JS numbers, defaults filled.
 * The generated types are rendered from these options (product-types.ts): change them, then run
 * `pnpm proto:generate`.
 */
export const protoLoaderOptions: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  arrays: true,
  oneofs: true,
  includeDirs: [protoRoot],
};

let productService: ProductServiceConstructor | undefined;

/** The loaded `bff.product.v1.ProductService` (its `.service` is the server definition). */
export function loadProductService(): ProductServiceConstructor {
  if (productService) return productService;
  const definition = protoLoader.loadSync(productProtoPath, protoLoaderOptions);
  const loaded = grpc.loadPackageDefinition(definition) as unknown as ProtoGrpcType;
  productService = loaded.bff.product.v1.ProductService;
  return productService;
}
