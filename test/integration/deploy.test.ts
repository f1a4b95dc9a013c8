/**
 * Deployment: the Kubernetes manifests as rendered by kustomize, the Dockerfile, the
 * external-URL script, a gateway reading its config from a kubelet-style ConfigMap mount, and three
 * gateway processes behind one load balancer sharing one Redis and one config file.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { ConfigError, compileSnapshot, describeSnapshot, loadConfigFile } from '../../src/config/index.js';
import { Cleanup, chat, post, startSim, tempDir } from '../helpers/harness.js';
import { freePort, startGatewayProcess, waitFor, type GatewayProcess } from '../helpers/gateway-process.js';
import { ConfigMapVolume, renderKustomize, requireKubectl, validateObject, type K8sObject } from '../helpers/kubernetes.js';
import { Nginx } from '../helpers/nginx.js';
import { parsePrometheus, valueOf } from '../helpers/prometheus.js';
import { RedisServer } from '../helpers/redis.js';
import { makeCertificate } from '../helpers/tls.js';

const OVERLAYS = ['oci-public', 'oci-private', 'redis'] as const;
type Overlay = (typeof OVERLAYS)[number];
const NS = 'inference-gateway';
const POD_LABELS = { 'app.kubernetes.io/name': 'inference-gateway', 'app.kubernetes.io/component': 'gateway' };
const OCI_SHAPE = {
  'service.beta.kubernetes.io/oci-load-balancer-shape': 'flexible',
  'service.beta.kubernetes.io/oci-load-balancer-shape-flex-min': '10',
  'service.beta.kubernetes.io/oci-load-balancer-shape-flex-max': '100',
};
const INTERNAL = 'service.beta.kubernetes.io/oci-load-balancer-internal';
/** The simulators' model id: request bodies name it, X-Model picks the gateway's model. */
const SIM_MODEL = 'sim';
/** The Secret's variables the shipped gateway.yaml uses. */
const SECRET_ENV = { IGW_ADMIN_TOKEN: 'admin-token-0123456789', GPT_OSS_API_KEY: 'gpt-key-0123456789', SCOUT_API_KEY: 'scout-key-0123456789', MAVERICK_API_KEY: 'maverick-key-0123456789' };

// Plain views of the fields the assertions read (the objects are YAML data).
interface Container {
  name: string;
  image: string;
  args: string[];
  ports: Array<{ name: string; containerPort: number }>;
  envFrom: Array<{ secretRef?: { name: string } }>;
  resources: unknown;
  readinessProbe: { httpGet: { path: string; port: number } };
  livenessProbe: { httpGet: { path: string; port: number } };
  lifecycle: { preStop: { exec: { command: string[] } } };
  securityContext: { readOnlyRootFilesystem: boolean; allowPrivilegeEscalation: boolean; runAsNonRoot: boolean; capabilities: { drop: string[] } };
  volumeMounts: Array<{ name: string; mountPath: string; readOnly?: boolean; subPath?: string }>;
}
interface PodSpec {
  terminationGracePeriodSeconds: number;
  securityContext: { runAsNonRoot: boolean; runAsUser: number };
  affinity: {
    podAntiAffinity: {
      preferredDuringSchedulingIgnoredDuringExecution: Array<{ weight: number; podAffinityTerm: { topologyKey: string; labelSelector: { matchLabels: Record<string, string> } } }>;
      requiredDuringSchedulingIgnoredDuringExecution?: unknown;
    };
  };
  containers: Container[];
  volumes: Array<{ name: string; projected: { sources: Array<{ configMap?: { name: string }; secret?: { name: string; items: Array<{ key: string; path: string }> } }> } }>;
}
interface DeploymentView {
  spec: { replicas?: number; selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string>; annotations?: Record<string, string> }; spec: PodSpec } };
}
interface ServiceView {
  metadata: { annotations?: Record<string, string> };
  spec: { type: string; selector: Record<string, string>; ports: Array<{ name: string; port: number; targetPort: number }> };
}

function find(objects: K8sObject[], kind: string, name: string): K8sObject {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  assert.ok(o, `${kind} ${name} is rendered`);
  return o;
}
const deploymentOf = (objects: K8sObject[]): DeploymentView => find(objects, 'Deployment', 'inference-gateway') as unknown as DeploymentView;
const serviceOf = (objects: K8sObject[], name: string): ServiceView => find(objects, 'Service', name) as unknown as ServiceView;
const configMapData = (objects: K8sObject[], name: string): Record<string, string> => (find(objects, 'ConfigMap', name) as unknown as { data: Record<string, string> }).data;
const gatewayYaml = (objects: K8sObject[]): Record<string, unknown> => parse(configMapData(objects, 'inference-gateway-config')['gateway.yaml']!) as Record<string, unknown>;

/** dockerfile parses the Dockerfile into stages of [instruction, arguments] (comments and continuations handled). */
function dockerfileStages(): Array<{ from: string; name: string; lines: Array<[string, string]> }> {
  const text = readFileSync('Dockerfile', 'utf8').replace(/\\\n/g, ' ');
  const stages: Array<{ from: string; name: string; lines: Array<[string, string]> }> = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const [, instr = '', rest = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    if (instr.toUpperCase() === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest);
      stages.push({ from: m?.[1] ?? rest, name: m?.[2] ?? '', lines: [] });
    } else stages.at(-1)?.lines.push([instr.toUpperCase(), rest]);
  }
  return stages;
}

/** markdownSection returns the body of a heading's section (to the next heading of its level or above; fenced code skipped). */
function markdownSection(file: string, heading: string): string {
  const lines = readFileSync(file, 'utf8').split('\n');
  const level = /^#+/.exec(heading)![0].length;
  const start = lines.indexOf(heading);
  assert.ok(start !== -1, `${file} has the heading "${heading}"`);
  let inFence = false;
  let end = start + 1;
  for (; end < lines.length; end++) {
    const line = lines[end]!;
    if (line.trimStart().startsWith('```')) inFence = !inFence;
    const m = inFence ? null : /^(#+) /.exec(line);
    if (m && m[1]!.length <= level) break;
  }
  return lines.slice(start + 1, end).join('\n');
}

/** codeBlocks returns the bodies of the fenced blocks of one language in markdown text (list-item indentation removed). */
const codeBlocks = (md: string, lang: string): string[] =>
  [...md.matchAll(new RegExp(`^( *)\`\`\`${lang}\n([\\s\\S]*?)^\\1\`\`\``, 'gm'))].map(([, indent, body]) => body!.replace(new RegExp(`^${indent}`, 'gm'), ''));

/** deploymentImage is the image of the gateway container in rendered objects. */
const deploymentImage = (objects: K8sObject[]): string => deploymentOf(objects).spec.template.spec.containers[0]!.image;

describe('deploy: Kubernetes manifests (kubectl kustomize, offline)', () => {
  const rendered = {} as Record<Overlay, K8sObject[]>;
  before(() => {
    requireKubectl();
    for (const o of OVERLAYS) rendered[o] = renderKustomize(`deploy/kubernetes/overlays/${o}`);
  });

  it('every overlay renders, and every object validates against the Kubernetes schemas', () => {
    const common = [
      'Namespace inference-gateway',
      'ConfigMap inference-gateway-config',
      'ConfigMap inference-gateway-blueprints',
      'Service inference-gateway-proxy',
      'Service inference-gateway-admin',
      'Service inference-gateway-status',
      'Deployment inference-gateway',
      'HorizontalPodAutoscaler inference-gateway',
      'PodDisruptionBudget inference-gateway',
    ];
    const expected: Record<Overlay, string[]> = {
      'oci-public': common,
      'oci-private': common,
      redis: [...common, 'Deployment inference-gateway-redis', 'Service inference-gateway-redis', 'NetworkPolicy inference-gateway-redis'],
    };
    for (const o of OVERLAYS) {
      assert.deepEqual(rendered[o].map((x) => `${x.kind} ${x.metadata.name}`).sort(), [...expected[o]].sort(), o);
      for (const obj of rendered[o]) {
        validateObject(obj);
        if (obj.kind !== 'Namespace') assert.equal(obj.metadata.namespace, NS, `${o}: ${obj.kind} ${obj.metadata.name} namespace`);
      }
    }
    // The validation is real: a wrong type or quantity is refused.
    const broken = structuredClone(find(rendered['oci-public'], 'Deployment', 'inference-gateway')) as unknown as DeploymentView;
    broken.spec.template.spec.containers[0]!.ports[0]!.containerPort = 'eight thousand' as unknown as number;
    assert.throws(() => validateObject(broken as unknown as K8sObject), /containerPort must be integer/);
    const badQty = structuredClone(find(rendered['oci-public'], 'Deployment', 'inference-gateway')) as unknown as { spec: { template: { spec: { containers: Array<{ resources: { limits: { cpu: string } } }> } } } };
    badQty.spec.template.spec.containers[0]!.resources.limits.cpu = 'one core';
    assert.throws(() => validateObject(badQty as unknown as K8sObject), /quantity/);
  });

  it('the gateway Deployment: resources, probes, drain time, anti-affinity, non-root read-only container, config and Secret', () => {
    for (const o of OVERLAYS) {
      const d = deploymentOf(rendered[o]);
      const pod = d.spec.template.spec;
      assert.equal(d.spec.replicas, undefined, 'the HPA owns the replica count');
      assert.deepEqual(d.spec.selector.matchLabels, POD_LABELS);
      assert.deepEqual(d.spec.template.metadata.labels, POD_LABELS);
      assert.equal(pod.containers.length, 1);
      const c = pod.containers[0]!;
      assert.deepEqual(c.resources, { requests: { cpu: '500m', memory: '512Mi' }, limits: { cpu: '1000m', memory: '1Gi' } });
      assert.deepEqual(c.readinessProbe.httpGet, { path: '/status/ready', port: 8100 });
      assert.deepEqual(c.livenessProbe.httpGet, { path: '/status', port: 8100 });
      assert.deepEqual(
        c.ports.map((p) => [p.name, p.containerPort]),
        [['proxy', 8000], ['proxy-tls', 8443], ['admin', 8001], ['admin-tls', 8442], ['status', 8100], ['status-tls', 8101]],
      );
      // The pod must outlive the preStop pause plus the gateway's own drain.
      const cfg = gatewayYaml(rendered[o]);
      assert.equal(cfg.shutdown_grace_s, 30);
      assert.deepEqual(c.lifecycle.preStop.exec.command, ['sleep', '5']);
      assert.equal(pod.terminationGracePeriodSeconds, 45);
      assert.ok(pod.terminationGracePeriodSeconds > (cfg.shutdown_grace_s as number) + Number(c.lifecycle.preStop.exec.command[1]));
      // Spread over nodes, preferred (a one-node cluster still runs both replicas).
      const anti = pod.affinity.podAntiAffinity;
      assert.equal(anti.requiredDuringSchedulingIgnoredDuringExecution, undefined);
      assert.equal(anti.preferredDuringSchedulingIgnoredDuringExecution.length, 1);
      assert.equal(anti.preferredDuringSchedulingIgnoredDuringExecution[0]!.podAffinityTerm.topologyKey, 'kubernetes.io/hostname');
      assert.deepEqual(anti.preferredDuringSchedulingIgnoredDuringExecution[0]!.podAffinityTerm.labelSelector.matchLabels, POD_LABELS);
      // Non-root, read-only, no capabilities.
      assert.equal(pod.securityContext.runAsNonRoot, true);
      assert.equal(pod.securityContext.runAsUser, 1000);
      assert.deepEqual(c.securityContext, { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] } });
      // Config: the whole folder (a subPath mount would never see an update), from both ConfigMaps
      // and the TLS Secret, whose two files are the ones gateway.yaml names.
      assert.deepEqual(c.volumeMounts, [{ name: 'config', mountPath: '/etc/inference-gateway', readOnly: true }]);
      const volume = pod.volumes.find((v) => v.name === 'config')!;
      assert.deepEqual(
        volume.projected.sources.map((s) => (s.configMap ? `configMap ${s.configMap.name}` : `secret ${s.secret?.name}`)),
        ['configMap inference-gateway-config', 'configMap inference-gateway-blueprints', 'secret inference-gateway-tls'],
      );
      assert.deepEqual(volume.projected.sources[2]!.secret!.items, [{ key: 'tls.crt', path: 'tls.crt' }, { key: 'tls.key', path: 'tls.key' }]);
      assert.deepEqual(c.args, ['start', '--config', '/etc/inference-gateway/gateway.yaml', '--watch']);
      // Keys from the Secret, as environment variables the config names as ${VAR}.
      assert.deepEqual(c.envFrom, [{ secretRef: { name: 'inference-gateway-secrets' } }]);
      // Admin and status over HTTPS too (8442, 8101), with the proxy's certificate (no tls of their own).
      assert.deepEqual(cfg.admin, { listen: '0.0.0.0:8001', tls_listen: '0.0.0.0:8442', token: '${IGW_ADMIN_TOKEN}' });
      // HTTP on 8000 and HTTPS on 8443, the Service's two target ports.
      assert.deepEqual(cfg.proxy, { listen: '0.0.0.0:8000', tls_listen: '0.0.0.0:8443', tls: { cert: './tls.crt', key: './tls.key' }, max_body_size: '32MiB' });
      assert.deepEqual(cfg.status, { listen: '0.0.0.0:8100', tls_listen: '0.0.0.0:8101' });
    }
  });

  it('Services: proxy LoadBalancer 80->8000 and 443->8443 with the OCI flexible shape; admin 8001/8442 and status 8100/8101 inside the cluster', () => {
    for (const o of OVERLAYS) {
      const proxy = serviceOf(rendered[o], 'inference-gateway-proxy');
      assert.equal(proxy.spec.type, 'LoadBalancer');
      assert.deepEqual(proxy.spec.ports.map((p) => [p.name, p.port, p.targetPort]), [['http', 80, 8000], ['https', 443, 8443]]);
      const expectedAnnotations = o === 'oci-private' ? { ...OCI_SHAPE, [INTERNAL]: 'true' } : OCI_SHAPE;
      assert.deepEqual(proxy.metadata.annotations, expectedAnnotations, `${o}: proxy annotations`);
      const admin = serviceOf(rendered[o], 'inference-gateway-admin');
      assert.equal(admin.spec.type, 'ClusterIP');
      assert.deepEqual(admin.spec.ports.map((p) => [p.name, p.port, p.targetPort]), [['admin', 8001, 8001], ['admin-tls', 8442, 8442]]);
      const status = serviceOf(rendered[o], 'inference-gateway-status');
      assert.equal(status.spec.type, 'ClusterIP');
      assert.deepEqual(status.spec.ports.map((p) => [p.name, p.port, p.targetPort]), [['status', 8100, 8100], ['status-tls', 8101, 8101]]);
      for (const s of [proxy, admin, status]) assert.deepEqual(s.spec.selector, POD_LABELS);
    }
  });

  it('HorizontalPodAutoscaler 2-3 replicas at 70% CPU, PodDisruptionBudget minAvailable 1', () => {
    for (const o of OVERLAYS) {
      const hpa = find(rendered[o], 'HorizontalPodAutoscaler', 'inference-gateway') as unknown as { apiVersion: string; spec: Record<string, unknown> };
      assert.equal(hpa.apiVersion, 'autoscaling/v2');
      assert.deepEqual(hpa.spec, {
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'inference-gateway' },
        minReplicas: 2,
        maxReplicas: 3,
        metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } }],
      });
      const pdb = find(rendered[o], 'PodDisruptionBudget', 'inference-gateway') as unknown as { apiVersion: string; spec: Record<string, unknown> };
      assert.equal(pdb.apiVersion, 'policy/v1');
      assert.deepEqual(pdb.spec, { minAvailable: 1, selector: { matchLabels: POD_LABELS } });
    }
  });

  it('oci-private differs from oci-public in the internal load balancer annotation only', () => {
    const strip = (objects: K8sObject[]): K8sObject[] =>
      objects.map((x) => {
        const y = structuredClone(x);
        if (y.kind === 'Service') delete y.metadata.annotations?.[INTERNAL];
        return y;
      });
    assert.deepEqual(strip(rendered['oci-private']), rendered['oci-public']);
    for (const o of ['oci-public', 'redis'] as const) assert.equal(serviceOf(rendered[o], 'inference-gateway-proxy').metadata.annotations?.[INTERNAL], undefined);
  });

  it('only the redis overlay runs Redis and counts limits in it; its gateway.yaml is the base one plus limits_store', () => {
    const objs = rendered.redis;
    const redisDeploy = find(objs, 'Deployment', 'inference-gateway-redis') as unknown as DeploymentView;
    const redisSvc = serviceOf(objs, 'inference-gateway-redis');
    assert.equal(redisSvc.spec.type, 'ClusterIP');
    assert.deepEqual(redisSvc.spec.ports.map((p) => [p.port, p.targetPort]), [[6379, 6379]]);
    assert.deepEqual(redisSvc.spec.selector, redisDeploy.spec.selector.matchLabels);
    assert.deepEqual(redisDeploy.spec.template.spec.containers[0]!.ports.map((p) => p.containerPort), [6379]);
    assert.equal(redisDeploy.spec.template.spec.containers[0]!.securityContext.readOnlyRootFilesystem, true);
    const policy = find(objs, 'NetworkPolicy', 'inference-gateway-redis') as unknown as { spec: { ingress: Array<{ from: Array<{ podSelector: { matchLabels: Record<string, string> } }> }> } };
    assert.deepEqual(policy.spec.ingress[0]!.from[0]!.podSelector.matchLabels, POD_LABELS);

    const withRedis = gatewayYaml(objs);
    assert.deepEqual(withRedis.limits_store, { policy: 'redis', redis_url: 'redis://inference-gateway-redis:6379', fault_tolerant: true, timeout_ms: 500 });
    const { limits_store: _, ...rest } = withRedis;
    assert.deepEqual(rest, gatewayYaml(rendered['oci-public']), 'the redis gateway.yaml is the base one plus limits_store');
    assert.deepEqual(configMapData(objs, 'inference-gateway-blueprints'), configMapData(rendered['oci-public'], 'inference-gateway-blueprints'));
    // limits_store is read at start: switching overlays must roll the pods, so the pod template differs.
    assert.equal(deploymentOf(objs).spec.template.metadata.annotations?.['inference-gateway/limits-store'], 'redis');
    for (const o of ['oci-public', 'oci-private'] as const) {
      assert.equal(gatewayYaml(rendered[o]).limits_store, undefined);
      assert.equal(rendered[o].filter((x) => x.metadata.name === 'inference-gateway-redis').length, 0);
    }
  });

  it('the mounted config loads and compiles as a pod sees it, in every overlay, with the Secret\'s variables', () => {
    for (const o of OVERLAYS) {
      // The projected volume: both ConfigMaps' files and the TLS Secret's side by side, kubelet layout.
      const files = { ...configMapData(rendered[o], 'inference-gateway-config'), ...configMapData(rendered[o], 'inference-gateway-blueprints'), 'tls.crt': 'cert', 'tls.key': 'key' };
      const vol = new ConfigMapVolume(tempDir(), files);
      const path = join(vol.dir, 'gateway.yaml');
      const loaded = loadConfigFile(path, { env: SECRET_ENV });
      for (const f of [loaded.config.proxy?.tls?.cert, loaded.config.proxy?.tls?.key]) assert.ok(existsSync(resolve(vol.dir, f!)), `${f} is in the mounted folder`);
      const snapshot = compileSnapshot(loaded);
      const models = describeSnapshot(snapshot).models.map((m) => ({ name: m.name, path: m.path, served: m.served_model, keys: m.keys, targets: m.targets, dns: m.dns, health: m.health_check_path }));
      assert.deepEqual(models, [
        { name: 'gpt-oss-120b', path: '/ai/models', served: 'openai/gpt-oss-120b', keys: 1, targets: ['http://gpt-oss-tp2.default.svc.cluster.local:8000'], dns: [], health: '/health' },
        { name: 'scout', path: '/ai/models', served: 'Llama-4-Scout-17B-16E-Instruct', keys: 1, targets: ['http://scout.default.svc.cluster.local:8000'], dns: [], health: '/health' },
        { name: 'maverick', path: '/ai/models', served: 'Llama-4-Maverick-17B-128E-Instruct-FP8', keys: 1, targets: ['http://maverick.default.svc.cluster.local:8000'], dns: [], health: '/health' },
      ], o);
      // Without the Secret the pod would not start, and the error names every missing variable.
      assert.throws(
        () => loadConfigFile(path, { env: {} }),
        (err: unknown) => err instanceof ConfigError && Object.keys(SECRET_ENV).every((v) => err.issues.some((i) => i.message.includes(v))),
      );
    }
    // The docs tell which variables the Secret needs.
    const docs = readFileSync('docs/kubernetes.md', 'utf8');
    for (const v of Object.keys(SECRET_ENV)) assert.ok(docs.includes(v), `docs/kubernetes.md names ${v}`);
  });

  it('every dns: target of the shipped config is a headless Service the overlay renders (the base needs none)', () => {
    for (const o of OVERLAYS) {
      const files = { ...configMapData(rendered[o], 'inference-gateway-config'), ...configMapData(rendered[o], 'inference-gateway-blueprints'), 'tls.crt': 'cert', 'tls.key': 'key' };
      const vol = new ConfigMapVolume(tempDir(), files);
      const models = describeSnapshot(compileSnapshot(loadConfigFile(join(vol.dir, 'gateway.yaml'), { env: SECRET_ENV }))).models;
      const headless = rendered[o]
        .filter((x) => x.kind === 'Service' && (x as unknown as { spec: { clusterIP?: string } }).spec.clusterIP === 'None')
        .flatMap((x) => (x as unknown as ServiceView).spec.ports.map((p) => `${x.metadata.name}.${x.metadata.namespace}.svc.cluster.local:${p.port}`));
      for (const m of models) for (const d of m.dns) assert.ok(headless.includes(d), `${o}: ${m.name}'s dns target ${d} is a headless Service of the overlay`);
    }
  });

  it('the per-pod recipe of docs/kubernetes.md: a valid headless Service, and the dns target it documents resolves to that Service', () => {
    const section = markdownSection('docs/kubernetes.md', '## Per-pod balancing with a headless Service');
    const [serviceYaml, configYaml] = codeBlocks(section, 'yaml');
    assert.ok(serviceYaml && configYaml, 'a Service and a config snippet');
    const svc = parse(serviceYaml) as K8sObject & { spec: { clusterIP: string; ports: Array<{ port: number }> } };
    validateObject(svc);
    assert.equal(svc.spec.clusterIP, 'None');
    // The documented blueprints entry, in the shipped config in place of the base one for that recipe.
    const entry = (parse(configYaml) as { blueprints: Array<Record<string, unknown>> }).blueprints[0]!;
    const files: Record<string, string> = { ...configMapData(rendered['oci-public'], 'inference-gateway-config'), ...configMapData(rendered['oci-public'], 'inference-gateway-blueprints'), 'tls.crt': 'cert', 'tls.key': 'key' };
    const cfg = parse(files['gateway.yaml']!) as { blueprints: Array<Record<string, unknown>> };
    cfg.blueprints = cfg.blueprints.map((b) => (b.file === entry.file ? entry : b));
    const vol = new ConfigMapVolume(tempDir(), { ...files, 'gateway.yaml': stringify(cfg) });
    const models = describeSnapshot(compileSnapshot(loadConfigFile(join(vol.dir, 'gateway.yaml'), { env: SECRET_ENV }))).models;
    const model = models.find((m) => m.dns.length > 0);
    assert.ok(model, 'the documented entry makes a dns target');
    assert.deepEqual(model.dns, [`${svc.metadata.name}.${svc.metadata.namespace}.svc.cluster.local:${svc.spec.ports[0]!.port}`]);
    assert.equal(model.balancer, 'least-load');
  });

  it('the dashboard in docs/kubernetes.md: its port-forward reaches the admin listener through a rendered Service, and the token comes from the Secret the pods load', () => {
    const section = markdownSection('docs/kubernetes.md', '## The dashboard and Grafana');
    const commands = codeBlocks(section, 'bash').join('\n');
    const forward = /port-forward svc\/([a-z0-9-]+) (\d+):(\d+)/.exec(commands);
    assert.ok(forward, 'a port-forward to a Service');
    const [, name, local, remote] = forward;
    assert.ok(section.includes(`http://127.0.0.1:${local}/ui/`), 'the page is at the forwarded port');
    const token = /get secret ([a-z0-9-]+) -o jsonpath='\{\.data\.([A-Z0-9_]+)\}' \| base64 -d/.exec(commands);
    assert.ok(token, 'the token read from a Secret');
    const [, secret, variable] = token;
    // Every port-forward the docs show, here and in Troubleshooting, names a Service port that exists.
    const docs = readFileSync('docs/kubernetes.md', 'utf8');
    for (const o of OVERLAYS) {
      for (const [, svc, , port] of docs.matchAll(/port-forward svc\/([a-z0-9-]+) (\d+):(\d+)/g)) {
        assert.ok(serviceOf(rendered[o], svc!).spec.ports.some((p) => p.port === Number(port)), `${o}: Service ${svc} has port ${port}`);
      }
      const admin = serviceOf(rendered[o], name!).spec.ports.find((p) => p.port === Number(remote))!;
      const cfg = gatewayYaml(rendered[o]) as { admin: { listen: string; token: string } };
      assert.equal(`:${admin.targetPort}`, cfg.admin.listen.slice(cfg.admin.listen.lastIndexOf(':')), `${o}: the Service sends ${remote} to the admin listener`);
      assert.equal(cfg.admin.token, `\${${variable}}`, `${o}: ${variable} is the admin token`);
      const envFrom = deploymentOf(rendered[o]).spec.template.spec.containers[0]!.envFrom.map((e) => e.secretRef?.name);
      assert.ok(envFrom.includes(secret), `${o}: the pods load the Secret ${secret}`);
    }
  });
});

describe('deploy: the image the manifests run (kubectl alone, no kustomize command)', () => {
  before(requireKubectl);
  /** A copy of deploy/kubernetes to edit as a user would. */
  const copy = (): string => {
    const dir = join(tempDir(), 'kubernetes');
    cpSync('deploy/kubernetes', dir, { recursive: true });
    return dir;
  };

  it("the README's images: entry, written into base/kustomization.yaml, sets the gateway image of every overlay", () => {
    const section = markdownSection('README.md', '## Deploying to Kubernetes');
    const snippet = codeBlocks(section, 'yaml').find((b) => /^images:/m.test(b));
    assert.ok(snippet, 'the README shows the images: entry to edit');
    // The user's values in place of the placeholders.
    const edited = parse(snippet.replaceAll('<region>', 'eu-frankfurt-1').replaceAll('<tenancy-namespace>', 'mytenancy')) as { images: Array<{ name: string; newName: string; newTag: string }> };
    assert.equal(edited.images.length, 1);
    const image = edited.images[0]!;
    assert.equal(image.newName, 'eu-frankfurt-1.ocir.io/mytenancy/inference-gateway');
    const dir = copy();
    const kustomization = join(dir, 'base', 'kustomization.yaml');
    const k = parse(readFileSync(kustomization, 'utf8')) as { images: unknown };
    assert.deepEqual((k.images as Array<{ name: string }>).map((i) => i.name), [image.name], 'the base has the entry the README edits');
    k.images = edited.images;
    writeFileSync(kustomization, stringify(k));
    for (const o of OVERLAYS) assert.equal(deploymentImage(renderKustomize(join(dir, 'overlays', o))), `${image.newName}:${image.newTag}`, o);
    // The build and push commands name the same image.
    const pushed = `${image.newName}:${image.newTag}`.replace('eu-frankfurt-1', '<region>').replace('mytenancy', '<tenancy-namespace>');
    assert.ok(section.includes(`docker build -t ${pushed} .`), 'the README builds that image');
    assert.ok(section.includes(`docker push ${pushed}`));
  });

  it('an overlay of your own with an images: entry sets the image (docs/kubernetes.md)', () => {
    const dir = copy();
    mkdirSync(join(dir, 'overlays', 'mine'));
    writeFileSync(
      join(dir, 'overlays', 'mine', 'kustomization.yaml'),
      stringify({ apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', resources: ['../oci-private'], images: [{ name: 'inference-gateway', newName: 'registry.example/igw', newTag: '9.9.9' }] }),
    );
    const objects = renderKustomize(join(dir, 'overlays', 'mine'));
    assert.equal(deploymentImage(objects), 'registry.example/igw:9.9.9');
    assert.equal(serviceOf(objects, 'inference-gateway-proxy').metadata.annotations?.[INTERNAL], 'true');
  });

  it('the docs ask for kubectl only: no kustomize command, and the README names every variable of the Secret', () => {
    for (const f of ['README.md', 'docs/kubernetes.md', ...readdirSync('deploy/kubernetes', { recursive: true, encoding: 'utf8' }).filter((p) => p.endsWith('.yaml')).map((p) => join('deploy/kubernetes', p))]) {
      assert.doesNotMatch(readFileSync(f, 'utf8'), /\bkustomize (edit|build|create)\b/, `${f} needs only kubectl`);
    }
    const section = markdownSection('README.md', '## Deploying to Kubernetes');
    for (const v of Object.keys(SECRET_ENV)) assert.ok(section.includes(`${v}=`), `the README's Secret command sets ${v}`);
  });
});

describe('deploy: container image (static checks, no container engine here)', () => {
  it('Dockerfile: multi-stage build, production dependencies only, non-root, the six ports, node as entrypoint', () => {
    requireKubectl();
    const stages = dockerfileStages();
    assert.ok(stages.length >= 2, 'multi-stage');
    const build = stages.find((s) => s.name === 'build');
    const runtime = stages.at(-1)!;
    assert.ok(build, 'a stage named build');
    assert.notEqual(runtime, build);
    for (const s of stages) assert.match(s.from, /^(node:20-bookworm-slim|\$\{NODE_IMAGE\})$/);
    assert.match(readFileSync('Dockerfile', 'utf8'), /^ARG NODE_IMAGE=node:20-bookworm-slim$/m);
    const runs = (s: { lines: Array<[string, string]> }): string[] => s.lines.filter(([i]) => i === 'RUN').map(([, a]) => a);
    assert.ok(runs(build).some((r) => /\bnpm ci\b/.test(r) && !r.includes('--omit=dev')));
    assert.ok(runs(build).some((r) => r.includes('npm run build')));
    assert.ok(runs(runtime).some((r) => /\bnpm ci\b.*--omit=dev/.test(r)), 'runtime installs production dependencies only');
    assert.ok(!runs(runtime).some((r) => r.includes('npm run build')));
    const copies = runtime.lines.filter(([i]) => i === 'COPY').map(([, a]) => a);
    assert.ok(copies.includes('--from=build /app/dist ./dist'));
    assert.ok(copies.includes('schema ./schema'));
    assert.ok(copies.includes('examples ./examples'));
    assert.ok(!copies.some((c) => /\bsrc\b|node_modules|\btest\b/.test(c)), 'no sources, tests or dev modules in the runtime stage');
    // The last USER of the final stage is numeric and not root (Kubernetes' runAsNonRoot needs a number).
    const user = runtime.lines.filter(([i]) => i === 'USER').at(-1)?.[1];
    assert.equal(user, '1000:1000');
    const d = deploymentOf(renderKustomize('deploy/kubernetes/overlays/oci-public'));
    assert.equal(String(d.spec.template.spec.securityContext.runAsUser), user.split(':')[0]);
    const expose = runtime.lines.filter(([i]) => i === 'EXPOSE').map(([, a]) => a);
    assert.deepEqual(expose, ['8000 8443 8001 8442 8100 8101']);
    const last = (instr: string): unknown => JSON.parse(runtime.lines.filter(([i]) => i === instr).at(-1)![1]);
    assert.deepEqual(last('ENTRYPOINT'), ['node', 'dist/main.js']);
    assert.deepEqual(last('CMD'), ['start', '--config', '/etc/inference-gateway/gateway.yaml', '--watch']);
    assert.deepEqual(last('CMD'), d.spec.template.spec.containers[0]!.args, 'the Deployment runs what the image runs');
    // What the image is built from exists, and .dockerignore keeps it in while keeping the rest out.
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { bin: Record<string, string>; scripts: Record<string, string> };
    assert.equal(Object.values(pkg.bin)[0], 'dist/main.js');
    assert.ok(pkg.scripts.build);
    const sources = stages.flatMap((s) => s.lines.filter(([i, a]) => i === 'COPY' && !a.startsWith('--from')).flatMap(([, a]) => a.split(/\s+/).slice(0, -1)));
    assert.deepEqual([...new Set(sources)].sort(), ['examples', 'package-lock.json', 'package.json', 'schema', 'src', 'tsconfig.build.json', 'tsconfig.json']);
    const ignored = readFileSync('.dockerignore', 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
    for (const p of ['node_modules', 'dist', '.git', 'test']) assert.ok(ignored.includes(p), `.dockerignore has ${p}`);
    for (const s of sources) assert.ok(!ignored.includes(s), `.dockerignore keeps ${s}`);
  });
});

describe('deploy: external URL script', () => {
  const script = 'scripts/external-url.sh';

  it('prints https://A-B-C-D.nip.io and a curl line from a given IP, and refuses what is not an IPv4 address', () => {
    const ok = spawnSync('bash', [script, '140.10.23.76'], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(ok.stdout, 'https://140-10-23-76.nip.io\ncurl https://140-10-23-76.nip.io/ai/models/v1/models -H "apikey: <your-api-key>"\n');
    const http = spawnSync('bash', [script, '--scheme', 'http', '10.0.0.7'], { encoding: 'utf8' });
    assert.equal(http.stdout.split('\n')[0], 'http://10-0-0-7.nip.io');
    for (const bad of ['300.1.1.1', '10.0.0', 'fd00::1', 'example.com']) {
      const r = spawnSync('bash', [script, bad], { encoding: 'utf8' });
      assert.equal(r.status, 1, bad);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /not an IPv4 address/);
    }
  });

  it('reads the load balancer IP with kubectl get svc, and says so when there is none yet', () => {
    // A stand-in kubectl first on PATH records its arguments and answers like the real one.
    const bin = tempDir();
    const argsFile = join(bin, 'args');
    writeFileSync(join(bin, 'kubectl'), `#!/usr/bin/env bash\nprintf '%s\\n' "$@" > '${argsFile}'\nprintf '%s' "$FAKE_LB_IP"\n`);
    chmodSync(join(bin, 'kubectl'), 0o755);
    const run = (ip: string, ...args: string[]) => spawnSync('bash', [script, ...args], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, FAKE_LB_IP: ip } });
    const r = run('129.146.1.2');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.split('\n')[0], 'https://129-146-1-2.nip.io');
    assert.deepEqual(readFileSync(argsFile, 'utf8').trim().split('\n'), ['get', 'svc', 'inference-gateway-proxy', '-n', 'inference-gateway', '-o', 'jsonpath={.status.loadBalancer.ingress[0].ip}']);
    run('129.146.1.2', '-n', 'gw', '-s', 'my-proxy');
    assert.deepEqual(readFileSync(argsFile, 'utf8').trim().split('\n').slice(0, 5), ['get', 'svc', 'my-proxy', '-n', 'gw']);
    const pending = run('');
    assert.equal(pending.status, 1);
    assert.equal(pending.stdout, '');
    assert.match(pending.stderr, /no load balancer IP yet/);
  });
});

describe('deploy: config and certificate from a mounted ConfigMap/Secret (kubelet ..data swap) with --watch', () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());

  it('a swapped ConfigMap adds a route (config and a new recipe file together); a broken one is refused and the old routes keep serving', async () => {
    const sim = await startSim(cleanup, { model: SIM_MODEL });
    const [proxyPort, statusPort] = [await freePort(), await freePort()];
    const base = { proxy: { listen: `127.0.0.1:${proxyPort}` }, status: { listen: `127.0.0.1:${statusPort}` }, admin: { listen: '127.0.0.1:0' }, log: { access_log: false } };
    const modelA = { name: 'a', targets: [{ url: sim.url }] };
    const vol = new ConfigMapVolume(tempDir(), { 'gateway.yaml': stringify({ ...base, models: [modelA] }) });
    const gw = await startGatewayProcess(cleanup, { configPath: join(vol.dir, 'gateway.yaml'), statusPort, watch: true });
    const ask = async (model: string): Promise<number> => {
      const res = await post(`http://127.0.0.1:${proxyPort}/v1/chat/completions`, chat(SIM_MODEL), { 'x-model': model });
      await res.arrayBuffer();
      return res.status;
    };
    const reloads = async (result: string): Promise<number> => valueOf(parsePrometheus(await (await fetch(`${gw.statusUrl}/metrics`)).text()), 'igw_config_reloads_total', { result });
    const hash = async (): Promise<string> => ((await (await fetch(`${gw.statusUrl}/status`)).json()) as { configuration_hash: string }).configuration_hash;
    assert.equal(await ask('a'), 200);
    assert.equal(await ask('b'), 404);
    const firstHash = await hash();

    // The kubelet's update: a new timestamped folder, ..data renamed over, a new visible name for the new key.
    const recipe = { deployment_name: 'b', recipe_container_port: '8000', recipe_inference_gateway: { model_name: 'b' } };
    vol.update({
      'gateway.yaml': stringify({ ...base, models: [modelA], blueprints: [{ file: './b.json', targets: [{ url: sim.url }] }] }),
      'b.json': JSON.stringify(recipe),
    });
    assert.deepEqual(readdirSync(vol.dir).sort(), ['..2026_01_01_00_00_02.2', '..data', 'b.json', 'gateway.yaml']);
    await waitFor('the new route b to be served', async () => (await ask('b')) === 200);
    assert.equal(await ask('a'), 200);
    assert.ok((await reloads('applied')) >= 1);
    const secondHash = await hash();
    assert.notEqual(secondHash, firstHash);

    // A broken ConfigMap (a path the gateway refuses): reported, not applied, the process lives on.
    vol.update({ 'gateway.yaml': stringify({ ...base, models: [{ ...modelA, path: 'no-leading-slash' }] }), 'b.json': JSON.stringify(recipe) });
    await waitFor('the broken config to be refused', async () => (await reloads('failed')) >= 1);
    await waitFor('the refusal to be logged', () => /config reload failed/.test(gw.stderr()));
    assert.ok(gw.isAlive());
    assert.equal(await ask('a'), 200);
    assert.equal(await ask('b'), 200);
    assert.equal(await hash(), secondHash);
    assert.equal((await fetch(`${gw.statusUrl}/status/ready`)).status, 200);
  });

  it('a renewed certificate in the projected TLS Secret is served without a restart, by the proxy, admin and status HTTPS listeners', async () => {
    const sim = await startSim(cleanup, { model: SIM_MODEL });
    const [proxyPort, tlsPort, statusPort, statusTlsPort, adminTlsPort] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
    const config = {
      proxy: { listen: `127.0.0.1:${proxyPort}`, tls_listen: `127.0.0.1:${tlsPort}`, tls: { cert: './tls.crt', key: './tls.key' } },
      status: { listen: `127.0.0.1:${statusPort}`, tls_listen: `127.0.0.1:${statusTlsPort}` },
      admin: { listen: '127.0.0.1:0', tls_listen: `127.0.0.1:${adminTlsPort}` },
      log: { access_log: false },
      models: [{ name: 'a', targets: [{ url: sim.url }] }],
    };
    const pem = (name: string): { 'tls.crt': string; 'tls.key': string } => {
      const c = makeCertificate(tempDir(), name);
      return { 'tls.crt': readFileSync(c.cert, 'utf8'), 'tls.key': readFileSync(c.key, 'utf8') };
    };
    const vol = new ConfigMapVolume(tempDir(), { 'gateway.yaml': stringify(config), ...pem('first-cert') });
    const gw = await startGatewayProcess(cleanup, { configPath: join(vol.dir, 'gateway.yaml'), statusPort, watch: true });
    for (const port of [tlsPort, adminTlsPort, statusTlsPort]) assert.equal(await peerCommonName(port), 'first-cert');
    vol.update({ 'gateway.yaml': stringify(config), ...pem('renewed-cert') });
    for (const port of [tlsPort, adminTlsPort, statusTlsPort]) await waitFor(`port ${port} to serve the renewed certificate`, async () => (await peerCommonName(port)) === 'renewed-cert');
    assert.ok(gw.isAlive());
  });
});

/** peerCommonName opens a TLS connection and returns the CN of the certificate the server shows. */
function peerCommonName(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => {
      const cn = socket.getPeerCertificate().subject?.CN;
      socket.end();
      resolve(String(cn));
    });
    socket.on('error', reject);
  });
}

describe('deploy: three gateway processes behind a load balancer (nginx), one Redis, one config file', () => {
  const cleanup = new Cleanup();
  const LIMITED = 'team-a-key-0123456789';
  const OPEN = 'load-key-0123456789';
  let redis: RedisServer;
  let sim: Awaited<ReturnType<typeof startSim>>;
  let lb: Nginx;
  let configPath: string;
  let config: Record<string, unknown>;
  const gateways: Array<{ proc: GatewayProcess; url: string }> = [];

  const totalRequests = async (g: { proc: GatewayProcess }): Promise<number> =>
    ((await (await fetch(`${g.proc.statusUrl}/status`)).json()) as { server: { total_requests: number } }).server.total_requests;

  before(async () => {
    redis = await RedisServer.launch();
    cleanup.add(() => redis.kill());
    sim = await startSim(cleanup, { model: SIM_MODEL });
    // One file for all three, as one ConfigMap serves every pod; each process gets its ports from
    // its environment, as each pod has its own address.
    config = {
      proxy: { listen: '127.0.0.1:${IGW_TEST_PROXY_PORT}' },
      status: { listen: '127.0.0.1:${IGW_TEST_STATUS_PORT}' },
      admin: { listen: '127.0.0.1:0' },
      log: { access_log: false },
      shutdown_grace_s: 1,
      limits_store: { policy: 'redis', redis_url: redis.url },
      models: [{ name: 'm', api_keys: [{ key: LIMITED, name: 'team-a', limits: { requests: { per_minute: 60 } } }, { key: OPEN, name: 'load' }], targets: [{ url: sim.url }] }],
    };
    configPath = join(tempDir(), 'gateway.yaml');
    writeFileSync(configPath, stringify(config));
    const ports = await Promise.all([0, 1, 2].map(async () => ({ proxy: await freePort(), status: await freePort() })));
    const procs = await Promise.all(
      ports.map((p) =>
        startGatewayProcess(cleanup, { configPath, statusPort: p.status, watch: true, env: { IGW_TEST_PROXY_PORT: String(p.proxy), IGW_TEST_STATUS_PORT: String(p.status) } }),
      ),
    );
    procs.forEach((proc, i) => gateways.push({ proc, url: `http://127.0.0.1:${ports[i]!.proxy}` }));
    lb = await Nginx.launch(cleanup, ports.map((p) => `127.0.0.1:${p.proxy}`));
  });
  after(() => cleanup.run());

  it('a 60/minute key limit holds exactly across the three: 60 of 150 requests through the balancer pass', async () => {
    redis.cli('FLUSHALL');
    // Stay inside one Redis-clock minute (150 requests take well under a second).
    const now = Number(redis.cli('TIME').split('\n')[0]);
    if (60 - (now % 60) < 5) await waitFor('the next minute', () => Number(redis.cli('TIME').split('\n')[0]) % 60 < 30, 6000, 100);
    const before = await Promise.all(gateways.map(totalRequests));
    const simBefore = sim.stats.requests;
    const statuses = await Promise.all(
      Array.from({ length: 150 }, async () => {
        const res = await post(`${lb.url}/v1/chat/completions`, chat(SIM_MODEL), { 'x-model': 'm', apikey: LIMITED });
        await res.arrayBuffer();
        return res.status;
      }),
    );
    assert.equal(statuses.filter((s) => s === 200).length, 60);
    assert.equal(statuses.filter((s) => s === 429).length, 90);
    assert.equal(sim.stats.requests - simBefore, 60);
    // Every gateway took part, and no request went to two of them.
    const served = (await Promise.all(gateways.map(totalRequests))).map((n, i) => n - before[i]!);
    assert.ok(served.every((n) => n > 0), `each gateway served some: ${served.join(', ')}`);
    assert.equal(served.reduce((a, b) => a + b, 0), 150);
  });

  it('a change of the shared config file reaches all three (--watch)', async () => {
    const models = config.models as object[];
    writeFileSync(configPath, stringify({ ...config, models: [...models, { name: 'm2', targets: [{ url: sim.url }] }] }));
    for (const g of gateways) {
      await waitFor(`gateway ${g.url} to serve m2`, async () => {
        const res = await post(`${g.url}/v1/chat/completions`, chat(SIM_MODEL), { 'x-model': 'm2' });
        await res.arrayBuffer();
        return res.status === 200;
      });
    }
    const hashes = await Promise.all(gateways.map(async (g) => ((await (await fetch(`${g.proc.statusUrl}/status`)).json()) as { configuration_hash: string }).configuration_hash));
    assert.equal(new Set(hashes).size, 1, 'one configuration everywhere');
  });

  it('SIGKILL of one gateway under load: only requests in flight at the kill may fail, every later one is served by the others', async (t) => {
    // W workers, each with one request in flight at a time, through the balancer. Requests in
    // flight on the victim when it dies fail, and so may requests nginx sent it while the kernel
    // was still tearing it down (a dying process keeps its sockets for a few ms). All of these
    // end at the one moment its sockets close, one per worker at most. From then on a connection
    // to it is refused, and nginx passes the request to the next gateway; nginx never resends a
    // POST it had already sent (the gateway may have processed it), and opens a connection per
    // request, so none goes out on a pooled connection of the dead gateway. Hence: failures <= W,
    // each a 502 from nginx for a request under way during the kill, and every request started
    // after the kill succeeds.
    const W = 6;
    const results: Array<{ status: number; startedAt: number; at: number }> = [];
    let isStopping = false;
    let killStart = Infinity;
    let killEnd = Infinity;
    const worker = async (): Promise<void> => {
      while (!isStopping) {
        const startedAt = performance.now();
        // 5 ms of simulated inference keeps a few requests in flight on every gateway.
        const status = await post(`${lb.url}/v1/chat/completions`, chat(SIM_MODEL), { 'x-model': 'm', apikey: OPEN, 'x-sim-latency-ms': '5' }).then(
          async (r) => (await r.arrayBuffer(), r.status),
          () => 0,
        );
        results.push({ status, startedAt, at: performance.now() });
      }
    };
    const victim = gateways[1]!;
    const workers = Array.from({ length: W }, () => worker());
    try {
      await waitFor('load to build up', () => results.length >= 150, 15_000);
      assert.ok((await totalRequests(victim)) > 0, 'the victim was serving');
      killStart = performance.now();
      await victim.proc.kill('SIGKILL');
      killEnd = performance.now();
      await waitFor('300 requests started after the kill', () => results.filter((r) => r.startedAt > killEnd).length >= 300, 15_000);
    } finally {
      isStopping = true;
      await Promise.all(workers);
    }
    const failed = results.filter((r) => r.status !== 200);
    t.diagnostic(`${results.length} requests, ${failed.length} failed; the kill took ${(killEnd - killStart).toFixed(1)} ms`);
    assert.ok(failed.length <= W, `at most ${W} requests fail: ${failed.length} did`);
    assert.ok(failed.every((f) => f.status === 502), `a lost request is a 502 from the balancer: ${failed.map((f) => f.status).join(', ')}`);
    assert.ok(failed.every((f) => f.startedAt < killEnd && f.at >= killStart), 'only requests in flight during the kill failed');
    const later = results.filter((r) => r.startedAt > killEnd);
    assert.ok(later.length >= 300);
    assert.ok(later.every((r) => r.status === 200), 'every request started after the kill succeeded');
    assert.ok(!victim.proc.isAlive());
    for (const g of gateways.filter((x) => x !== victim)) assert.ok(g.proc.isAlive());
  });
});
