export { errorCodes, type ErrorCode, type ErrorSpec, type ErrorType } from './codes.js';
export { GatewayError, type GatewayErrorOptions } from './gateway-error.js';
export { toErrorBody, toGatewayError, sendError, type ErrorBody } from './to-response.js';
