/** Absolute paths to the contract files in this folder, and the loaded gRPC service. */
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export const productProtoPath = fileURLToPath(new URL('./product/v1/product.proto', import.meta.url));
/** The base GraphQL SDL every BFF shares. */
export const baseSchemaPath = fileURLToPath(new URL('./graphql/base.graphql', import.meta.url));
/** Folder for proto imports. */
export const protoRoot = fileURLToPath(new URL('./', import.meta.url));

/** Field mapping shared by client and server: camelCase names, int64 as JS numbers, defaults filled. */
export const protoLoaderOptions: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  arrays: true,
  oneofs: true,
  includeDirs: [protoRoot],
};

let productService: grpc.ServiceClientConstructor | undefined;

/** The loaded `bff.product.v1.ProductService` (its `.service` is the server definition). */
export function loadProductService(): grpc.ServiceClientConstructor {
  if (productService) return productService;
  const definition = protoLoader.loadSync(productProtoPath, protoLoaderOptions);
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    bff: { product: { v1: { ProductService: grpc.ServiceClientConstructor } } };
  };
  productService = loaded.bff.product.v1.ProductService;
  return productService;
}
