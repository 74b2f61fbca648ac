// Appwrite's error types, with the status and message each carries in 1.8.1 (appwrite/appwrite app/config/errors.php
// at tag 1.8.1; type names from src/Appwrite/Extend/Exception.php). Bodies are `{ message, code, type, version }`.

export const APPWRITE_VERSION = '1.8.1';

export const ERRORS = {
  general_argument_invalid: [400, 'The request contains one or more invalid arguments. Please refer to the endpoint documentation.'],
  general_bad_request: [400, 'There was an error processing your request. Please check the inputs and try again.'],
  general_query_invalid: [400, "The query's syntax is invalid. Please check the query and try again."],
  general_route_not_found: [404, 'Route not found. Please ensure the endpoint is configured correctly and that the API route is valid for this SDK version. Refer to the API docs for more details.'],
  general_cursor_not_found: [400, 'The cursor is invalid. This can happen if the item represented by the cursor has been deleted.'],
  general_unauthorized_scope: [401, 'The current user or API key does not have the required scopes to access the requested resource.'],
  general_rate_limit_exceeded: [429, 'Rate limit for the current endpoint has been exceeded. Please try again after some time.'],
  general_server_error: [500, 'An internal server error occurred.'],
  general_not_implemented: [405, 'This method was not fully implemented yet. If you believe this is a mistake, please upgrade your Appwrite server version.'],
  project_not_found: [404, 'Project with the requested ID could not be found. Please check the value of the X-Appwrite-Project header to ensure the correct project ID is being used.'],
  database_not_found: [404, 'Database not found'],
  database_already_exists: [409, 'Database already exists'],
  database_query_order_null: [400, 'The order attribute/column had a null value. Cursor pagination requires all documents/rows order attribute/column values are non-null.'],
  table_not_found: [404, 'Table with the requested ID could not be found.'],
  table_already_exists: [409, 'A table with the requested ID already exists. Try again with a different ID or use ID.unique() to generate a unique ID.'],
  collection_not_found: [404, 'Collection with the requested ID could not be found.'],
  column_not_found: [404, 'Column with the requested ID could not be found.'],
  column_already_exists: [409, 'Column with the requested key already exists. Column keys must be unique, try again with a different key.'],
  column_default_unsupported: [400, 'Default values cannot be set for array or required columns.'],
  column_value_invalid: [400, 'The column value is invalid. Please check the type, range and value of the column.'],
  column_limit_exceeded: [400, 'The maximum number or size of columns for this table has been reached.'],
  column_unknown: [400, 'The column required for the index could not be found. Please confirm all your columns are in the available state.'],
  attribute_type_invalid: [400, 'The attribute type is invalid.'],
  attribute_limit_exceeded: [400, 'The maximum number or size of attributes for this collection has been reached.'],
  column_index_not_found: [404, 'Index with the requested ID could not be found.'],
  column_index_already_exists: [409, 'Index with the requested key already exists. Try again with a different key.'],
  column_index_invalid: [400, 'Index invalid.'],
  row_not_found: [404, 'Row with the requested ID could not be found.'],
  row_already_exists: [409, 'Row with the requested ID already exists. Try again with a different ID or use ID.unique() to generate a unique ID.'],
  row_invalid_structure: [400, 'The row structure is invalid. Please ensure the columns match the table definition.'],
  row_missing_data: [400, 'The row data is missing. Try again with row data populated'],
  row_missing_payload: [400, 'The row data and permissions are missing. You must provide either row data or permissions to be updated.'],
  document_not_found: [404, 'Document with the requested ID could not be found.'],
  document_invalid_structure: [400, 'The document structure is invalid. Please ensure the attributes match the collection definition.'],
  transaction_not_found: [404, 'Transaction with the requested ID could not be found.'],
  transaction_not_ready: [400, 'The transaction is not ready yet. Please try again later.'],
  transaction_expired: [410, 'The transaction has expired. Please create a new transaction and try again.'],
  transaction_conflict: [409, 'The transaction has a conflict. Please resolve the conflict and try again.'],
  transaction_limit_exceeded: [400, 'The maximum number of operations per transaction has been exceeded.'],
} as const satisfies Record<string, readonly [number, string]>;

export type ErrorType = keyof typeof ERRORS;

/** Statuses Appwrite 1.8.1 lets through (app/controllers/general.php); any other becomes 500 "Server Error", type kept. */
const PUBLIC_STATUSES = new Set([400, 401, 402, 403, 404, 408, 409, 412, 416, 422, 429, 451, 501, 503]);

export class AppwriteError extends Error {
  readonly type: ErrorType;
  constructor(type: ErrorType, message?: string) {
    super(message ?? ERRORS[type][1]);
    this.type = type;
  }
}

export function fail(type: ErrorType, message?: string): never {
  throw new AppwriteError(type, message);
}

export interface ErrorBody {
  message: string;
  code: number;
  type: string;
  version: string;
}

/** The status and body Appwrite sends for an error, including its masking of non-public codes such as 410. */
export function errorResponse(type: string, message: string, code: number): { status: number; body: ErrorBody } {
  const status = PUBLIC_STATUSES.has(code) ? code : 500;
  return { status, body: { message: status === code ? message : 'Server Error', code: status, type, version: APPWRITE_VERSION } };
}

export function toErrorResponse(error: AppwriteError): { status: number; body: ErrorBody } {
  return errorResponse(error.type, error.message, ERRORS[error.type][0]);
}
