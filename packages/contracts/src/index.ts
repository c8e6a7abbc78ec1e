/**
 * The REST contracts of Identity and Billing, defined once for service and client: the JSON
 * schemas the routes validate with, and the request and response types.
 *
 * Every export here is public API of `@bff/contracts`.
 */

export type {
  AccountsQuery,
  AccountsResponse,
  BillingAccount,
  BillingErrorBody,
  BillingInvoice,
  BillingInvoiceLine,
  BillingInvoicePage,
  BillingInvoiceStatus,
  InvoiceParams,
  InvoiceResponse,
  InvoicesQuery,
  InvoicesResponse,
  PurchaseRequest,
} from './billing.ts';
export {
  accountsQuerySchema,
  BILLING_MAX_BATCH,
  invoiceParamsSchema,
  invoicesQuerySchema,
  purchaseRequestSchema,
} from './billing.ts';
export type {
  IdentityAudience,
  IdentityUser,
  RegisterUserRequest,
  TokenRequest,
  TokenResponse,
  UserParams,
  UsersQuery,
  UsersResponse,
} from './identity.ts';
export {
  IDENTITY_AUDIENCE_PATTERN,
  IDENTITY_MAX_BATCH,
  registerUserRequestSchema,
  tokenRequestSchema,
  userParamsSchema,
  usersQuerySchema,
} from './identity.ts';
