/**
 * Import of OCI AI Blueprints recipes, mapped as the Kong-based gateway did:
 * `recipe_inference_gateway.model_name` -> name, `url_path` -> path, `api_key` -> api_keys[0],
 * `--served-model-name` -> served_model, readiness probe `endpoint_path` -> health check path,
 * and the default target `http://<deployment_name>:<recipe_container_port>` (the deployment's
 * Kubernetes Service). Only `recipe_inference_gateway` is checked strictly (the blueprint schema
 * forbids other fields there); the rest of a recipe belongs to the platform and is ignored.
 */
import type { ConfigIssue } from './config-error.js';
import type { Locate } from './locator.js';
import { toSchemaIssues } from './schema-issues.js';
import { recipeGatewaySection, type ModelDefaultsConfig } from './schema.js';

/** RecipeModel is what one recipe contributes to a model, with the recipe field each value came from. */
export interface RecipeModel {
  name: string;
  fields: ModelDefaultsConfig;
  /** fieldSources names the recipe field behind each imported model field (for error messages). */
  fieldSources: Partial<Record<'name' | 'path' | 'api_keys' | 'targets', string>>;
}

const SECTION = 'recipe_inference_gateway';

/** parseRecipe maps one recipe document; returns null (with a reason) when it has no gateway section. `locate` places errors in the recipe file. */
export function parseRecipe(doc: unknown, file: string, issues: ConfigIssue[], targetTemplate?: string, locate?: Locate): RecipeModel | { skipped: string } | null {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    issues.push({ file, field: '', message: 'a blueprint recipe must be a JSON object' });
    return null;
  }
  const recipe = doc as Record<string, unknown>;
  if (recipe[SECTION] === undefined) return { skipped: `${file}: no ${SECTION} section, not routed` };
  const parsed = recipeGatewaySection.safeParse(recipe[SECTION]);
  if (!parsed.success) {
    issues.push(...toSchemaIssues(parsed.error.issues, { file, schema: recipeGatewaySection, input: recipe[SECTION], prefix: [SECTION], ...(locate ? { locate } : {}) }).issues);
    return null;
  }
  const section = parsed.data;
  const fields: ModelDefaultsConfig = {};
  const fieldSources: RecipeModel['fieldSources'] = { name: `${SECTION}.model_name` };
  if (section.url_path !== undefined) {
    fields.path = section.url_path;
    fieldSources.path = `${SECTION}.url_path`;
  }
  if (section.api_key !== undefined) {
    fields.api_keys = [section.api_key];
    fieldSources.api_keys = `${SECTION}.api_key`;
  }

  const served = servedModelFromArgs(recipe.recipe_container_command_args);
  if (served !== undefined) fields.served_model = served;

  const probe = recipe.recipe_readiness_probe_params as { endpoint_path?: unknown } | undefined;
  if (probe && typeof probe.endpoint_path === 'string' && probe.endpoint_path.startsWith('/')) {
    fields.health_check = { path: probe.endpoint_path };
  }

  const deployment = recipe.deployment_name;
  const port = recipe.recipe_container_port ?? 8000;
  if (typeof deployment === 'string' && /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(deployment) && /^\d{1,5}$/.test(String(port))) {
    const target = (targetTemplate ?? 'http://{deployment_name}:{port}').replaceAll('{deployment_name}', deployment).replaceAll('{port}', String(port));
    fields.targets = [target.startsWith('dns:') ? { dns: target.slice(4) } : { url: target }];
    fieldSources.targets = 'deployment_name';
  } else if (targetTemplate !== undefined) {
    issues.push({ file, field: 'deployment_name', message: 'target_template needs a valid deployment_name and recipe_container_port in the recipe' });
  }
  return { name: section.model_name, fields, fieldSources };
}

/**
 * servedModelFromArgs finds the model id vLLM will answer to: the first `--served-model-name`
 * value, else the `--model` value (vLLM's own default for the served name).
 */
export function servedModelFromArgs(args: unknown): string | undefined {
  if (!Array.isArray(args)) return undefined;
  const valueOf = (flag: string): string | undefined => {
    for (let i = 0; i < args.length; i++) {
      const a = args[i];
      if (typeof a !== 'string') continue;
      if (a === flag && typeof args[i + 1] === 'string') return args[i + 1] as string;
      if (a.startsWith(`${flag}=`)) return a.slice(flag.length + 1);
    }
    return undefined;
  };
  return valueOf('--served-model-name') ?? valueOf('--model');
}
