import { destination, pino, type Logger } from 'pino';

/** LOG_REDACT lists the paths pino censors wherever they appear, as a last line against key leaks. */
const LOG_REDACT = ['apikey', 'authorization', 'api_key', 'api_keys', 'token', 'upstream_api_key', '*.apikey', '*.authorization', '*.api_keys', '*.token'];

/** createLogger builds the gateway's logger: JSON lines on stderr (stdout is kept for access logs). */
export function createLogger(level: string = process.env.IGW_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { service: 'inference-gateway' }, redact: { paths: LOG_REDACT, censor: '[redacted]' } }, destination(2));
}

export type { Logger };
