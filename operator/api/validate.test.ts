import { describe, expect, it } from 'vitest';
import { clusterSchema } from './cluster.generated.ts';
import type { Cluster } from './cluster.generated.ts';
import { twinProblems, validate, validateUpdate } from './validate.ts';

// The expected messages of the CEL rules are those kube-apiserver v1.34.4 gave for the same
// objects (kubectl apply --dry-run=server against the CRD), minus its `Invalid value: "..."` part.

const minimal = () => ({
  apiVersion: 'kubeonkube.io/v1alpha1',
  kind: 'Cluster',
  metadata: { name: 'prod-a', namespace: 'clusters' },
  spec: {
    version: 'v1.34.4',
    etcd: { storage: { claimTemplate: { resources: { requests: { storage: '1Gi' } } } } },
  } as Record<string, unknown>,
});

/** The minimal object with `patch` merged into it (null deletes, as in a JSON merge patch). */
function withPatch(patch: Record<string, unknown>, base: Record<string, unknown> = minimal()): Record<string, unknown> {
  const merge = (a: unknown, b: unknown): unknown => {
    if (
      typeof a !== 'object' ||
      a === null ||
      Array.isArray(a) ||
      typeof b !== 'object' ||
      b === null ||
      Array.isArray(b)
    )
      return b;
    const out: Record<string, unknown> = { ...(a as Record<string, unknown>) };
    for (const [k, v] of Object.entries(b)) {
      if (v === null) delete out[k];
      else out[k] = merge(out[k], v);
    }
    return out;
  };
  return merge(base, patch) as Record<string, unknown>;
}

const spec = (s: Record<string, unknown>) => withPatch({ spec: s });

function errorsOf(object: unknown): string[] {
  const result = validate(object);
  return result.ok ? [] : result.errors;
}

describe('validate: good objects', () => {
  it('fills in the same defaults as the apiserver', () => {
    const result = validate(minimal());
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    // what kube-apiserver returned for the same object
    expect(result.cluster.spec).toEqual({
      version: 'v1.34.4',
      mode: 'standard',
      network: { serviceCIDR: '10.96.0.0/12', podCIDR: '10.244.0.0/16', dnsDomain: 'cluster.local' },
      endpoint: { service: { type: 'ClusterIP' } },
      etcd: {
        version: 'v3.6.16',
        storage: { claimTemplate: { resources: { requests: { storage: '1Gi' } } }, deletionPolicy: 'Retain' },
      },
      certificates: { validity: '8760h', renewBefore: '720h', caValidity: '87600h', kubeletValidity: '168h' },
      tunnel: { enabled: true },
      addons: [{ name: 'kube-proxy' }, { name: 'coredns' }],
      paused: false,
    } satisfies Cluster['spec']);
  });

  it('does not change its argument', () => {
    const object = minimal();
    const copy = structuredClone(object);
    validate(object);
    expect(object).toEqual(copy);
  });

  it('keeps every field a complete spec gives', () => {
    const full = {
      apiVersion: 'kubeonkube.io/v1alpha1',
      kind: 'Cluster',
      metadata: { name: 'prod-b', namespace: 'clusters', labels: { team: 'sre' } },
      spec: {
        version: 'v1.33.7',
        mode: 'minimal',
        controlPlane: {
          nodeSelector: { 'node-role.kubernetes.io/control-plane': '' },
          tolerations: [
            { key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' },
            { key: 'dedicated', operator: 'Equal', value: 'masters', effect: 'NoExecute', tolerationSeconds: 300 },
            { operator: 'Exists' },
          ],
          apiServer: {
            replicas: 5,
            extraArgs: { v: '2' },
            resources: { requests: { cpu: '500m', memory: '1Gi' }, limits: { memory: 2147483648 } },
          },
          controllerManager: { image: 'registry.local/kube-controller-manager:v1.33.7' },
          scheduler: { replicas: 1 },
        },
        network: { serviceCIDR: 'fd00:10:96::/108', podCIDR: '10.32.0.0/12', dnsDomain: 'prod-b.local' },
        endpoint: {
          service: { type: 'LoadBalancer', annotations: { 'lb.example.com/internal': 'true' } },
          host: 'api.prod-b.example.com',
        },
        etcd: {
          version: 'v3.6.16',
          storage: {
            volumeSource: { hostPath: { path: '/var/lib/etcd-prod-b', type: 'DirectoryOrCreate' } },
            deletionPolicy: 'Retain',
          },
        },
        certificates: { validity: '2160h', renewBefore: '360h', caValidity: '43800h', kubeletValidity: '168h' },
        users: [
          { name: 'alice', groups: ['system:masters'], validity: '720h' },
          { name: 'bob', groups: ['dev', 'ops'] },
        ],
        tunnel: { enabled: false },
        addons: [
          { name: 'coredns' },
          {
            name: 'metrics',
            template: { configMapRef: { name: 'metrics-template' } },
            values: { replicas: 2, nested: { any: ['thing'] } },
          },
        ],
        paused: true,
      },
      status: {
        observedGeneration: 3,
        phase: 'Ready',
        conditions: [
          {
            type: 'Ready',
            status: 'True',
            lastTransitionTime: '2026-01-01T00:00:00Z',
            reason: 'AllComponentsReady',
            message: '',
          },
        ],
        version: 'v1.33.7',
        endpoint: 'https://10.96.12.4:6443',
        kubeconfigSecretRef: { name: 'prod-b-kubeconfig', key: 'value' },
        components: { apiServer: { version: 'v1.33.7', replicas: 5, readyReplicas: 5 } },
        etcd: {
          members: [
            {
              name: 'prod-b-etcd-0',
              id: '8e9e05c52164694d',
              peerURL: 'https://prod-b-etcd-0:2380',
              healthy: true,
              learner: false,
            },
          ],
          leader: 'prod-b-etcd-0',
        },
        certificates: {
          notAfter: '2026-04-01T00:00:00Z',
          caNotAfter: '2031-01-01T00:00:00Z',
          lastRotation: '2026-01-01T00:00:00Z',
        },
        tunnel: { agents: 3 },
      },
    } satisfies Cluster;
    const result = validate(full);
    expect(result).toEqual({ ok: true, cluster: full });
  });

  it('treats null as absent, then defaults it, as the apiserver does', () => {
    // built by hand: withPatch takes null for "delete"
    const object = minimal();
    object.spec.mode = null;
    object.spec.network = { serviceCIDR: null, podCIDR: '10.200.0.0/16' };
    const result = validate(object);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.cluster.spec.network).toEqual({
      serviceCIDR: '10.96.0.0/12',
      podCIDR: '10.200.0.0/16',
      dnsDomain: 'cluster.local',
    });
    expect(result.cluster.spec.mode).toBe('standard');
  });

  it('accepts names of 53 characters and a generateName without a name', () => {
    expect(errorsOf(withPatch({ metadata: { name: `a${'b'.repeat(52)}` } }))).toEqual([]);
    expect(errorsOf(withPatch({ metadata: { name: null, generateName: 'prod-' } }))).toEqual([]);
  });

  it('accepts service and pod ranges of different families, and adjacent ones', () => {
    expect(errorsOf(spec({ network: { serviceCIDR: 'fd00::/108', podCIDR: '10.0.0.0/8' } }))).toEqual([]);
    expect(errorsOf(spec({ network: { serviceCIDR: '10.96.0.0/12', podCIDR: '10.112.0.0/12' } }))).toEqual([]);
  });
});

describe('validate: schema errors name the field', () => {
  it.each([
    ['an unknown mode', spec({ mode: 'big' }), ['spec.mode: must be one of minimal, standard']],
    ['no version', spec({ version: null }), ['spec.version: is required']],
    ['no etcd', spec({ etcd: null }), ['spec.etcd: is required']],
    ['no storage', spec({ etcd: { storage: null } }), ['spec.etcd.storage: is required']],
    [
      'no storage size',
      spec({ etcd: { storage: { claimTemplate: { resources: { requests: null } } } } }),
      ['spec.etcd.storage.claimTemplate.resources.requests: is required'],
    ],
    [
      'a malformed version',
      spec({ version: '1.34' }),
      ['spec.version: must match ^v1\\.[0-9]+\\.[0-9]+$ (got "1.34")'],
    ],
    [
      'a malformed etcd version',
      spec({ etcd: { version: 'v2.3' } }),
      ['spec.etcd.version: must match ^v3\\.[0-9]+\\.[0-9]+$ (got "v2.3")'],
    ],
    [
      'too many replicas',
      spec({ controlPlane: { scheduler: { replicas: 10 } } }),
      ['spec.controlPlane.scheduler.replicas: must be <= 9'],
    ],
    [
      'no replicas',
      spec({ controlPlane: { apiServer: { replicas: 0 } } }),
      ['spec.controlPlane.apiServer.replicas: must be >= 1'],
    ],
    [
      'a fractional replica count',
      spec({ controlPlane: { apiServer: { replicas: 1.5 } } }),
      ['spec.controlPlane.apiServer.replicas: must be an integer'],
    ],
    [
      'a bad quantity',
      spec({ controlPlane: { apiServer: { resources: { requests: { cpu: 'lots' } } } } }),
      ['spec.controlPlane.apiServer.resources.requests.cpu: must be a quantity such as 500m, 1Gi or 2 (got "lots")'],
    ],
    [
      'a quantity of the wrong type',
      spec({ controlPlane: { apiServer: { resources: { limits: { cpu: true } } } } }),
      ['spec.controlPlane.apiServer.resources.limits.cpu: must be an integer or a string'],
    ],
    [
      'an unknown service type',
      spec({ endpoint: { service: { type: 'ExternalName' } } }),
      ['spec.endpoint.service.type: must be one of ClusterIP, NodePort, LoadBalancer'],
    ],
    [
      'a host that is no DNS name',
      spec({ endpoint: { host: 'Api_Server' } }),
      [expect.stringMatching(/^spec\.endpoint\.host: must match .* \(got "Api_Server"\)$/)],
    ],
    [
      'an unknown toleration effect',
      spec({ controlPlane: { tolerations: [{ key: 'a', effect: 'Sometimes' }] } }),
      ['spec.controlPlane.tolerations[0].effect: must be one of NoSchedule, PreferNoSchedule, NoExecute'],
    ],
    [
      'a user name that is no DNS label',
      spec({ users: [{ name: 'Alice' }] }),
      ['spec.users[0].name: must match ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ (got "Alice")'],
    ],
    ['a user without a name', spec({ users: [{ groups: ['x'] }] }), ['spec.users[0].name: is required']],
    [
      'a user named as the tunnel agent',
      spec({ users: [{ name: 'kubeonkube-tunnel-agent' }] }),
      [
        'spec.users[0].name: the name is reserved for an identity of the control plane (kubeonkube-*, kube-apiserver*, front-proxy-client)',
      ],
    ],
    [
      "a user named as the apiserver's kubelet client",
      spec({ users: [{ name: 'kube-apiserver-kubelet-client' }] }),
      [
        'spec.users[0].name: the name is reserved for an identity of the control plane (kubeonkube-*, kube-apiserver*, front-proxy-client)',
      ],
    ],
    ['an unknown field', spec({ replicas: 3 }), ['spec.replicas: unknown field']],
    [
      'an unknown nested field',
      spec({ network: { serviceCidr: '10.96.0.0/12' } }),
      ['spec.network.serviceCidr: unknown field'],
    ],
    ['a string for a boolean', spec({ paused: 'yes' }), ['spec.paused: must be a boolean']],
    ['a map for a list', spec({ users: { alice: {} } }), ['spec.users: must be a list']],
    ['a wrong kind', withPatch({ kind: 'Deployment' }), ['kind: must be Cluster']],
    [
      'a wrong apiVersion',
      withPatch({ apiVersion: 'kubeonkube.io/v1' }),
      ['apiVersion: must be kubeonkube.io/v1alpha1'],
    ],
    ['no spec', withPatch({ spec: null }), ['spec: is required']],
  ])('refuses %s', (_, object, expected) => {
    expect(errorsOf(object)).toEqual(expected);
  });

  it('refuses something that is not an object', () => {
    expect(errorsOf('apiVersion: v1')).toEqual(['must be an object (a Cluster)']);
  });

  it('refuses duplicate list entries as the apiserver words it', () => {
    expect(errorsOf(spec({ users: [{ name: 'alice' }, { name: 'alice', groups: ['a', 'a'] }] }))).toEqual([
      'spec.users[1]: Duplicate value: {"name":"alice"}',
      'spec.users[1].groups[1]: Duplicate value: "a"',
    ]);
    expect(errorsOf(spec({ addons: [{ name: 'coredns' }, { name: 'coredns' }] }))).toEqual([
      'spec.addons[1]: Duplicate value: {"name":"coredns"}',
    ]);
  });

  it('reports every error at once', () => {
    expect(errorsOf(spec({ mode: 'big', paused: 1, version: 'x' }))).toHaveLength(3);
  });
});

describe('validate: the CEL rules, with the apiserver messages', () => {
  it.each([
    [
      'an invalid serviceCIDR',
      spec({ network: { serviceCIDR: '10.96.0.0/33' } }),
      ['spec.network.serviceCIDR: serviceCIDR must be a valid CIDR such as 10.96.0.0/12'],
    ],
    [
      'an invalid podCIDR',
      spec({ network: { podCIDR: 'banana' } }),
      ['spec.network.podCIDR: podCIDR must be a valid CIDR such as 10.244.0.0/16'],
    ],
    [
      'a podCIDR inside the serviceCIDR',
      spec({ network: { serviceCIDR: '10.0.0.0/8', podCIDR: '10.244.0.0/16' } }),
      ['spec.network: serviceCIDR 10.0.0.0/8 and podCIDR 10.244.0.0/16 must not overlap'],
    ],
    [
      'a serviceCIDR inside the podCIDR',
      spec({ network: { podCIDR: '10.0.0.0/8' } }),
      ['spec.network: serviceCIDR 10.96.0.0/12 and podCIDR 10.0.0.0/8 must not overlap'],
    ],
    [
      'overlapping ranges with host bits set',
      spec({ network: { serviceCIDR: '10.96.0.1/12', podCIDR: '10.100.0.0/16' } }),
      ['spec.network: serviceCIDR 10.96.0.1/12 and podCIDR 10.100.0.0/16 must not overlap'],
    ],
    [
      'both storage modes',
      spec({ etcd: { storage: { volumeSource: { hostPath: { path: '/x' } } } } }),
      ['spec.etcd.storage: exactly one of claimTemplate or volumeSource must be set'],
    ],
    [
      'no storage mode',
      spec({ etcd: { storage: { claimTemplate: null } } }),
      ['spec.etcd.storage: exactly one of claimTemplate or volumeSource must be set'],
    ],
    [
      'renewBefore longer than validity',
      spec({ certificates: { validity: '24h', renewBefore: '48h' } }),
      [
        'spec.certificates.renewBefore: renewBefore must be at least 1m shorter than validity (a certificate is renewed validity - renewBefore after it is issued)',
      ],
    ],
    [
      'renewBefore as long as validity',
      spec({ certificates: { validity: '24h', renewBefore: '1440m' } }),
      [
        'spec.certificates.renewBefore: renewBefore must be at least 1m shorter than validity (a certificate is renewed validity - renewBefore after it is issued)',
      ],
    ],
    [
      'a renewal every 59 s',
      spec({ certificates: { validity: '5m', renewBefore: '4m1s' } }),
      [
        'spec.certificates.renewBefore: renewBefore must be at least 1m shorter than validity (a certificate is renewed validity - renewBefore after it is issued)',
      ],
    ],
    [
      'an unparseable validity',
      spec({ certificates: { validity: '1 year' } }),
      ['spec.certificates.validity: validity must be a positive Go duration such as 8760h'],
    ],
    [
      'an unparseable renewBefore',
      spec({ certificates: { renewBefore: '30d' } }),
      ['spec.certificates.renewBefore: renewBefore must be a positive Go duration such as 720h'],
    ],
    [
      'a zero caValidity',
      spec({ certificates: { caValidity: '0h' } }),
      ['spec.certificates.caValidity: caValidity must be a positive Go duration such as 87600h'],
    ],
    [
      'a negative validity',
      spec({ certificates: { validity: '-1h' } }),
      ['spec.certificates.validity: validity must be a positive Go duration such as 8760h'],
    ],
    // the apiserver refuses it too, prefixed by CEL's "type conversion error ... evaluating rule:"
    [
      'a caValidity beyond Go durations',
      spec({ certificates: { caValidity: '99999999999h' } }),
      ['spec.certificates.caValidity: caValidity must be a positive Go duration such as 87600h'],
    ],
    [
      'a kubeletValidity under two minutes',
      spec({ certificates: { kubeletValidity: '90s' } }),
      ['spec.certificates.kubeletValidity: kubeletValidity must be a Go duration of at least 2m, such as 168h'],
    ],
    [
      'an unparseable user validity',
      spec({ users: [{ name: 'alice', validity: 'forever' }] }),
      ['spec.users[0].validity: validity must be a positive Go duration such as 720h'],
    ],
    [
      'a value with operator Exists',
      spec({ controlPlane: { tolerations: [{ key: 'a', operator: 'Exists', value: 'b' }] } }),
      ['spec.controlPlane.tolerations[0]: value must be empty when operator is Exists'],
    ],
    [
      'an empty key without operator Exists',
      spec({ controlPlane: { tolerations: [{ key: 'a' }, { value: 'x' }] } }),
      ['spec.controlPlane.tolerations[1]: operator must be Exists when key is empty (which matches all taints)'],
    ],
    [
      'an add-on without a template',
      spec({ addons: [{ name: 'coredns' }, { name: 'mine' }] }),
      ['spec.addons[1]: template is required for add-ons other than the built-in kube-proxy and coredns'],
    ],
    [
      'a template for a built-in add-on',
      spec({ addons: [{ name: 'coredns', template: { configMapRef: { name: 'dns' } } }] }),
      ['spec.addons[0]: kube-proxy and coredns are built in and take no template; give your own add-on another name'],
    ],
    [
      "an add-on named like one of the operator's own",
      spec({ addons: [{ name: 'tunnel-agent', template: { configMapRef: { name: 't' } } }] }),
      [
        "spec.addons[0]: control-plane and tunnel-agent are the operator's own add-ons (the tunnel agent is switched by spec.tunnel.enabled)",
      ],
    ],
    [
      'a name that is no DNS-1035 label',
      withPatch({ metadata: { name: '9lives' } }),
      [
        "metadata.name: metadata.name must be at most 53 characters of lower-case letters, digits and '-', start with a letter and end with a letter or digit (it prefixes Service names)",
      ],
    ],
    [
      'a snapshot path that leaves the volume',
      spec({ etcd: { restoreFrom: { volume: { persistentVolumeClaim: { claimName: 'b' } }, path: '../x.db' } } }),
      [expect.stringMatching(/^spec\.etcd\.restoreFrom\.path: must match/)],
    ],
    [
      'a backup schedule that is no cron line',
      spec({ etcd: { backup: { schedule: 'every hour', volume: { emptyDir: {} } } } }),
      [expect.stringMatching(/^spec\.etcd\.backup\.schedule: must match/)],
    ],
    [
      'a name longer than 53 characters',
      withPatch({ metadata: { name: `a${'b'.repeat(53)}` } }),
      [expect.stringMatching(/^metadata\.name: metadata\.name must be at most 53 characters/)],
    ],
  ])('refuses %s', (_, object, expected) => {
    expect(errorsOf(object)).toEqual(expected);
  });

  it('skips the rules while the shape is wrong, as the apiserver does', () => {
    // an enum error blocks CEL there: only the enum error is reported
    expect(errorsOf(spec({ mode: 'big', network: { serviceCIDR: '10.0.0.0/8' } }))).toEqual([
      'spec.mode: must be one of minimal, standard',
    ]);
    // a pattern error does not
    expect(errorsOf(spec({ version: 'v1.34', network: { serviceCIDR: '10.0.0.0/8' } }))).toHaveLength(2);
  });
});

describe('validateUpdate: transition rules', () => {
  const at = (version: string, storage?: Record<string, unknown>) =>
    spec({ version, ...(storage ? { etcd: { storage } } : {}) });

  it.each([
    ['v1.33.5', 'v1.33.10'],
    ['v1.33.5', 'v1.34.0'],
    ['v1.33.5', 'v1.33.5'],
  ])('allows %s → %s', (from, to) => {
    expect(validateUpdate(at(from), at(to)).ok).toBe(true);
  });

  it.each([
    ['v1.33.5', 'v1.33.4', 'spec.version: version must not be downgraded (from v1.33.5 to v1.33.4)'],
    ['v1.33.5', 'v1.32.9', 'spec.version: version must not be downgraded (from v1.33.5 to v1.32.9)'],
    [
      'v1.33.5',
      'v1.35.0',
      'spec.version: version may only move up one minor version at a time (from v1.33.5 to v1.35.0)',
    ],
  ])('refuses %s → %s', (from, to, message) => {
    expect(validateUpdate(at(from), at(to))).toEqual({ ok: false, errors: [message] });
  });

  it('refuses any change of the etcd storage: its mode, either way, or its volume', () => {
    const claim = { claimTemplate: { resources: { requests: { storage: '1Gi' } } } };
    const volume = { volumeSource: { hostPath: { path: '/x' } } };
    const message =
      'spec.etcd.storage: etcd storage cannot change after creation (neither the mode nor the volume): members would start without their data';
    expect(
      validateUpdate(
        at('v1.34.4', claim),
        withPatch({ spec: { etcd: { storage: { claimTemplate: null, ...volume } } } }),
      ),
    ).toEqual({ ok: false, errors: [message] });
    expect(validateUpdate(at('v1.34.4', { claimTemplate: null, ...volume }), at('v1.34.4'))).toEqual({
      ok: false,
      errors: [message],
    });
    expect(
      validateUpdate(
        at('v1.34.4', claim),
        spec({ etcd: { storage: { claimTemplate: { storageClassName: 'fast' } } } }),
      ),
    ).toEqual({ ok: false, errors: [message] });
    expect(validateUpdate(at('v1.34.4', claim), at('v1.34.4', claim)).ok).toBe(true);
    // what becomes of the claims on deletion is no part of the data's place: it may change
    expect(validateUpdate(at('v1.34.4', claim), at('v1.34.4', { ...claim, deletionPolicy: 'Delete' })).ok).toBe(true);
  });

  it('refuses adding, changing or removing etcd.restoreFrom after creation', () => {
    const from = { volume: { persistentVolumeClaim: { claimName: 'backups' } }, path: 'a-20261123T101500Z.db' };
    const message = 'spec.etcd.restoreFrom: restoreFrom can only be given when the Cluster is created';
    expect(validateUpdate(spec({}), spec({ etcd: { restoreFrom: from } }))).toEqual({ ok: false, errors: [message] });
    expect(
      validateUpdate(spec({ etcd: { restoreFrom: from } }), withPatch({ spec: { etcd: { restoreFrom: null } } })),
    ).toEqual({ ok: false, errors: [message] });
    expect(
      validateUpdate(spec({ etcd: { restoreFrom: from } }), spec({ etcd: { restoreFrom: { ...from, path: 'b.db' } } })),
    ).toEqual({ ok: false, errors: ['spec.etcd.restoreFrom: restoreFrom cannot change after creation'] });
    expect(validateUpdate(spec({ etcd: { restoreFrom: from } }), spec({ etcd: { restoreFrom: from } })).ok).toBe(true);
  });

  it('refuses standard → minimal, except to undo a refused growth of a one-member etcd', () => {
    const message =
      'spec.mode: mode cannot change from standard to minimal: the operator never removes etcd members of a running cluster';
    const standard = (size?: number) =>
      withPatch({ spec: { mode: 'standard' }, ...(size ? { status: { etcd: { size } } } : {}) });
    expect(validateUpdate(standard(3), spec({ mode: 'minimal' }))).toEqual({ ok: false, errors: [message] });
    expect(validateUpdate(standard(), spec({ mode: 'minimal' }))).toEqual({ ok: false, errors: [message] });
    expect(validateUpdate(standard(1), spec({ mode: 'minimal' })).ok).toBe(true);
    expect(validateUpdate(spec({ mode: 'minimal' }), spec({ mode: 'standard' })).ok).toBe(true);
  });

  it('refuses a user whose validity is not a minute longer than renewBefore, and names, not network changes', () => {
    expect(errorsOf(spec({ users: [{ name: 'alice', validity: '720h59s' }] }))).toEqual([
      "spec.users: a user's validity must be at least 1m longer than certificates.renewBefore (its certificate is renewed validity - renewBefore after it is issued)",
    ]);
    expect(errorsOf(spec({ users: [{ name: 'alice', validity: '720h1m' }] }))).toEqual([]);
    expect(validateUpdate(minimal(), spec({ network: { serviceCIDR: '10.100.0.0/16' } })).ok).toBe(false);
  });

  it('runs the create rules too, and the transition rules only on update', () => {
    expect(validateUpdate(minimal(), spec({ version: 'v1.36.0', mode: 'big' })).ok).toBe(false);
    expect(validate(at('v1.20.0')).ok).toBe(true);
  });

  it('leaves a malformed version to the pattern', () => {
    expect(validateUpdate(at('v1.33.5'), at('v1.33'))).toEqual({
      ok: false,
      errors: ['spec.version: must match ^v1\\.[0-9]+\\.[0-9]+$ (got "v1.33")'],
    });
  });
});

describe('every CEL rule has its TypeScript twin', () => {
  it('in the generated schema', () => {
    expect(twinProblems(clusterSchema)).toEqual([]);
  });

  it('and a rule without one is found', () => {
    const schema = structuredClone(clusterSchema) as unknown as {
      properties: { spec: { properties: { paused: Record<string, unknown> } } };
    };
    schema.properties.spec.properties.paused['x-kubernetes-validations'] = [{ rule: 'self == false', message: 'no' }];
    expect(twinProblems(schema)).toEqual([
      'spec.paused: CEL rule without a TypeScript twin in operator/api/validate.ts: self == false',
    ]);
  });
});
