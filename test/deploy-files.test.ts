// The deployment files, checked offline (no Kubernetes cluster or Docker engine runs here): every
// manifest under deploy/kubernetes/ validates against the Kubernetes schemas (kubernetes-models),
// the kustomization lists them all, the pods keep Shoal's rules (a memory /dev/shm with a
// sizeLimit the object store fits in, the token from a Secret, `shoal health` probes, non-root),
// and every `shoal` command line in the manifests, the compose file and the Dockerfile is one the
// CLI accepts (`shoal start … --dry-run` resolves its options; other commands parse with --help).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Service } from 'kubernetes-models/v1/Service';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { parse, parseAllDocuments } from 'yaml';
import { CLI } from './cluster-helpers.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const kubernetes = join(root, 'deploy/kubernetes');
const home = mkdtempSync(join(tmpdir(), 'shoal-deploy-'));
after(() => rmSync(home, { recursive: true, force: true }));

type Manifest = { apiVersion: string; kind: string; metadata: { name: string }; spec?: Record<string, unknown> };
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string }; fieldRef?: { fieldPath: string }; resourceFieldRef?: { resource: string } };
}
interface Probe {
  exec?: { command: string[] };
}
interface Container {
  name: string;
  image: string;
  args?: string[];
  env?: EnvVar[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  startupProbe?: Probe;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  volumeMounts?: { name: string; mountPath: string }[];
}
interface PodSpec {
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
  containers: Container[];
  volumes?: { name: string; emptyDir?: { medium?: string; sizeLimit?: string } }[];
}

const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'apps/v1/DaemonSet': DaemonSet,
};

const UNITS: Record<string, number> = { '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };
/** A Kubernetes quantity (or Docker's `4gb`) in bytes. */
function bytes(quantity: string): number {
  const match = /^(\d+(?:\.\d+)?)(k|M|G|T|Ki|Mi|Gi|Ti|gb|mb)?$/.exec(quantity);
  assert.ok(match, `a size: ${quantity}`);
  const unit = match[2] === 'gb' ? 'Gi' : match[2] === 'mb' ? 'Mi' : (match[2] ?? '');
  return Number(match[1]) * UNITS[unit]!;
}

const run = promisify(execFile);
/** Runs the CLI with `args`: its exit code and output. */
async function shoal(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, SHOAL_HOME: home, SHOAL_TOKEN: 'a-token-long-enough-for-0.0.0.0' };
  delete env.SHOAL_ADDRESS;
  try {
    return { code: 0, ...(await run(process.execPath, [CLI, ...args], { env })) };
  } catch (error) {
    return error as { code: number; stdout: string; stderr: string };
  }
}

/**
 * Checks one `shoal …` command line: `start` resolves its options with --dry-run; `health` (no
 * daemon runs for this test's home) gets past its options to say so, which bad usage never does.
 */
async function checkCommandLine(argv: string[]): Promise<Record<string, unknown> | undefined> {
  assert.equal(argv[0], 'shoal', `${argv.join(' ')} runs the shoal command`);
  if (argv[1] === 'start') {
    const started = await shoal([...argv.slice(1), '--dry-run']);
    assert.equal(started.code, 0, `shoal ${argv.slice(1).join(' ')} was refused: ${started.stderr}`);
    return JSON.parse(started.stdout) as Record<string, unknown>;
  }
  assert.equal(argv[1], 'health', `a command the files may use: ${argv.join(' ')}`);
  const checked = await shoal(argv.slice(1));
  assert.deepEqual({ code: checked.code, usage: /unhealthy: no Shoal daemon runs/.test(checked.stderr) }, { code: 1, usage: true }, checked.stderr);
  return undefined;
}

function loadManifests(): Manifest[] {
  return readdirSync(kubernetes)
    .filter((name) => name.endsWith('.yaml') && name !== 'kustomization.yaml')
    .flatMap((name) => parseAllDocuments(readFileSync(join(kubernetes, name), 'utf8')).map((document) => document.toJS() as Manifest));
}

test('every Kubernetes manifest validates against the schemas, and the kustomization lists them all', () => {
  const kustomization = parse(readFileSync(join(kubernetes, 'kustomization.yaml'), 'utf8')) as { resources: string[]; namespace: string; images: { name: string }[] };
  const files = readdirSync(kubernetes).filter((name) => name.endsWith('.yaml') && name !== 'kustomization.yaml');
  assert.deepEqual([...kustomization.resources].sort(), files.sort(), 'kustomization.yaml lists every manifest');
  const manifests = loadManifests();
  assert.deepEqual(manifests.map((manifest) => `${manifest.kind}/${manifest.metadata.name}`).sort(), [
    'DaemonSet/shoal-node',
    'Deployment/shoal-head',
    'Namespace/shoal',
    'Service/shoal-head',
  ]);
  for (const manifest of manifests) {
    const Model = MODELS[`${manifest.apiVersion}/${manifest.kind}`];
    assert.ok(Model, `a schema for ${manifest.apiVersion} ${manifest.kind}`);
    assert.doesNotThrow(() => new Model(manifest as never).validate(), `${manifest.kind}/${manifest.metadata.name} is valid`);
  }
  assert.ok(manifests.some((manifest) => manifest.kind === 'Namespace' && manifest.metadata.name === kustomization.namespace));
  // The validator does catch a mistake (so the checks above mean something).
  const broken = structuredClone(manifests.find((manifest) => manifest.kind === 'DaemonSet')!) as unknown as { spec: { template: { spec: PodSpec } } };
  (broken.spec.template.spec.containers[0] as unknown as { ports: unknown }).ports = [{ containerPort: 'data' }];
  assert.throws(() => new DaemonSet(broken as never).validate(), /containerPort must be integer/);
});

test('the pods keep Shoal rules: memory /dev/shm sized for the store, token from a Secret, health probes, non-root, commands the CLI takes', async () => {
  type Workload = { selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: PodSpec } };
  const workloads = loadManifests().filter((manifest) => manifest.kind === 'Deployment' || manifest.kind === 'DaemonSet');
  for (const workload of workloads) {
    const { selector, template } = workload.spec as unknown as Workload;
    for (const [key, value] of Object.entries(selector.matchLabels)) assert.equal(template.metadata.labels[key], value, `${workload.metadata.name}: its selector matches its pods`);
  }
  const pods = workloads.map((manifest) => ({ name: manifest.metadata.name, spec: (manifest.spec as unknown as Workload).template.spec }));
  const service = loadManifests().find((manifest) => manifest.kind === 'Service')!;
  const { selector: serviceSelector, ports: servicePorts } = service.spec as { selector: Record<string, string>; ports: { port: number; targetPort: string }[] };
  const headPort = servicePorts[0]!.port;
  const headPods = workloads.filter((workload) => Object.entries(serviceSelector).every(([key, value]) => (workload.spec as unknown as Workload).template.metadata.labels[key] === value));
  assert.deepEqual(headPods.map((workload) => workload.metadata.name), ['shoal-head'], 'the Service selects the head and nothing else');
  const headContainer = (headPods[0]!.spec as unknown as Workload).template.spec.containers[0] as Container & { ports: { name: string; containerPort: number }[] };
  assert.equal(headContainer.ports.find((port) => port.name === servicePorts[0]!.targetPort)?.containerPort, headPort, "the Service's targetPort names the head's port");
  for (const { name, spec } of pods) {
    assert.equal(spec.securityContext?.runAsNonRoot, true, `${name} runs as non-root`);
    const shm = spec.volumes?.find((volume) => volume.emptyDir?.medium === 'Memory');
    assert.ok(shm?.emptyDir?.sizeLimit, `${name} has a memory emptyDir with a sizeLimit`);
    const container = spec.containers.find((candidate) => candidate.name === 'shoal')!;
    assert.equal(container.image, 'shoal', 'the image the kustomization sets');
    assert.ok(container.volumeMounts?.some((mount) => mount.name === shm.name && mount.mountPath === '/dev/shm'), `${name} mounts it at /dev/shm`);
    const env = new Map((container.env ?? []).map((variable) => [variable.name, variable]));
    assert.deepEqual(env.get('SHOAL_TOKEN')?.valueFrom?.secretKeyRef, { name: 'shoal-token', key: 'token' }, `${name} takes the token from the Secret`);

    // $(VAR) as the kubelet expands it, with what the downward API would give.
    const values: Record<string, string> = { POD_IP: '10.244.1.7' };
    for (const [variable, definition] of env) {
      if (definition.value !== undefined) values[variable] = definition.value;
      else if (definition.valueFrom?.resourceFieldRef?.resource === 'requests.cpu') values[variable] = String(Math.ceil(Number(container.resources!.requests!.cpu)));
    }
    const args = container.args!.map((arg) => arg.replace(/\$\((\w+)\)/g, (_, variable: string) => values[variable] ?? `$(${variable})`));
    const resolved = (await checkCommandLine(args))!;
    const shmBytes = bytes(shm.emptyDir!.sizeLimit!);
    // A share of /dev/shm, which the kubelet sizes to the volume's sizeLimit: the store follows the volume.
    const share = /^--object-store-memory=(\d+)%$/.exec(args.find((arg) => arg.startsWith('--object-store-memory=')) ?? '');
    assert.ok(share && Number(share[1]) <= 90, `${name}: the object store is at most 90% of /dev/shm`);
    assert.equal(typeof resolved.objectStoreMemory, 'number');
    assert.ok(bytes(container.resources!.limits!.memory!) >= shmBytes + 2 ** 30, `${name}: the memory limit covers /dev/shm plus 1 GiB of heaps`);
    // Its own directory under the volume: the volume is root's (mode 0777, not sticky), which the store refuses as a root.
    assert.equal(resolved.spillDirectory, '/var/spill/shoal');
    assert.ok(container.volumeMounts!.some((mount) => mount.mountPath === '/var/spill'), `${name}: the spill directory is in a volume`);
    const volumes = new Set(spec.volumes!.map((volume) => volume.name));
    for (const mount of container.volumeMounts!) assert.ok(volumes.has(mount.name), `${name}: mount ${mount.name} has a volume`);
    if (resolved.join !== undefined) assert.equal(resolved.join, `ws://${service.metadata.name}:${headPort}`, 'nodes join the head through its Service');
    else assert.deepEqual(resolved.head, { host: '0.0.0.0', port: headPort });

    for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe'] as const) {
      const command = container[probe]?.exec?.command;
      assert.deepEqual(command?.slice(0, 2), ['shoal', 'health'], `${name}'s ${probe} is shoal health`);
      await checkCommandLine(command!);
    }
    assert.ok(container.readinessProbe!.exec!.command.includes('--ready'), 'readiness asks the head');
    assert.ok(!container.livenessProbe!.exec!.command.includes('--ready'), 'liveness does not: a head away must not restart every node');
  }
});

test('the Dockerfile builds in one stage and runs non-root with a health check in a small one; compose keeps shm_size and waits for a healthy head', async () => {
  const dockerfile = readFileSync(join(root, 'docker/Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const stages = dockerfile.split(/^FROM /m).slice(1);
  assert.equal(stages.length, 2, 'a build stage and a final stage');
  const [build, final] = stages as [string, string];
  assert.match(build, /apt-get install[^\n]*g\+\+/, 'build tools in the build stage');
  assert.doesNotMatch(final, /apt-get|g\+\+|COPY packages/, 'no build tools and no sources in the final stage');
  assert.match(final, /^USER node$/m, 'the final stage runs as the node user');
  assert.match(final, /npm install --ignore-scripts/, 'it installs the packed packages with scripts blocked');
  const image = /^ARG NODE_IMAGE=node:(\d+)-slim$/m.exec(dockerfile);
  assert.ok(image && [22, 24].includes(Number(image[1])), `the base image is on a supported Node line: ${image?.[1]}`);
  const exec = (line: string) => JSON.parse(line) as string[];
  const healthcheck = /^HEALTHCHECK .* CMD (\[.*\])$/m.exec(final);
  assert.ok(healthcheck, 'a HEALTHCHECK in exec form');
  await checkCommandLine(exec(healthcheck[1]!));
  assert.ok(!exec(healthcheck[1]!).includes('--ready'), "the image's check is liveness: a head away must not get every node replaced");
  await checkCommandLine(exec(/^CMD (\[.*\])$/m.exec(final)![1]!));

  const compose = parse(readFileSync(join(root, 'docker/compose.yaml'), 'utf8')) as {
    services: Record<string, { command: string[]; shm_size: string; depends_on?: Record<string, { condition: string }>; healthcheck?: { test: string[] } }>;
  };
  for (const [name, service] of Object.entries(compose.services)) {
    const resolved = (await checkCommandLine(service.command))!;
    assert.ok((resolved.objectStoreMemory as number) <= 0.9 * bytes(service.shm_size), `${name}: the store fits in its shm_size`);
    if (resolved.join !== undefined) assert.deepEqual(service.depends_on, { head: { condition: 'service_healthy' } }, `${name} waits for a healthy head`);
  }
  const headCheck = compose.services.head!.healthcheck?.test;
  assert.deepEqual(headCheck?.slice(0, 1), ['CMD']);
  await checkCommandLine(headCheck!.slice(1));
  assert.ok(headCheck!.includes('--ready'), "the head's check is readiness: the nodes wait until its node is a member");
});
