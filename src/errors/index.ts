export { errorCodes, type ErrorCode, type ErrorSpec, type ErrorType } from './codes.js';
export { GatewayError, type GatewayErrorOptions } from './gateway-error.js';
export {
  toErrorBody,
  toAnthropicErrorBody,
  toAnthropicErrorType,
  toSseErrorEvent,
  toGatewayError,
  sendError,
  type AnthropicErrorBody,
  type AnthropicErrorType,
  type ErrorBody,
  type ErrorFormat,
} from './to-response.js';
