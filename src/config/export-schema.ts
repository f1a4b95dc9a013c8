/**
 * Writes schema/gateway.schema.json from the zod schema (`npm run schema`). A test fails when the
 * committed file and the schema disagree, so editors never validate against a stale copy.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { gatewayConfig } from './schema.js';

/** toJsonSchemaText renders the configuration's JSON Schema as committed. */
export function toJsonSchemaText(): string {
  const schema = z.toJSONSchema(gatewayConfig, { io: 'input', unrepresentable: 'any' });
  return `${JSON.stringify({ ...schema, $id: 'https://github.com/inference-gateway/schema/gateway.schema.json', title: 'Inference Gateway configuration' }, null, 2)}\n`;
}

/** schemaFilePath is where the committed JSON Schema lives. */
export const schemaFilePath = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'schema', 'gateway.schema.json');

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(schemaFilePath, toJsonSchemaText());
  process.stdout.write(`wrote ${schemaFilePath}\n`);
}
