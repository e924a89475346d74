import { describe, expect, it } from 'vitest';
import type { ClusterSpec } from './context.ts';
import { defaultPolicy, parsePolicy, policyViolations } from './policy.ts';
import { withDefaults } from '../../api/defaults.ts';

const base: ClusterSpec = withDefaults({
  version: 'v1.34.4',
  mode: 'minimal',
  etcd: { version: 'v3.6.16', storage: { claimTemplate: { resources: { requests: { storage: '1Gi' } } } } },
});

describe('policy', () => {
  it('allows what the operator derives, refuses foreign images and host paths by default', () => {
    expect(policyViolations(base, defaultPolicy)).toEqual([]);
    expect(
      policyViolations(
        { ...base, controlPlane: { apiServer: { image: 'registry.k8s.io/kube-apiserver:v1.34.4' } } },
        defaultPolicy,
      ),
    ).toEqual([]);
    expect(
      policyViolations({ ...base, controlPlane: { apiServer: { image: 'evil.example.com/x:1' } } }, defaultPolicy),
    ).toEqual([
      "spec.controlPlane.apiServer.image: evil.example.com/x:1 is not allowed by the operator's policy (allowed prefixes: registry.k8s.io/)",
    ]);
    expect(
      policyViolations(
        {
          ...base,
          etcd: {
            version: 'v3.6.16',
            storage: { volumeSource: { hostPath: { path: '/' } }, deletionPolicy: 'Retain' },
          },
        },
        defaultPolicy,
      ),
    ).toEqual([
      "spec.etcd.storage.volumeSource.hostPath: not allowed by the operator's policy (allowed: emptyDir, ephemeral)",
    ]);
  });

  it('refuses a Cluster without the tunnel unless the policy allows it', () => {
    const off = { ...base, tunnel: { enabled: false } };
    expect(policyViolations(off, defaultPolicy)).toEqual([
      "spec.tunnel.enabled: false is not allowed by the operator's policy (allowTunnelDisabled): without the tunnel the apiserver would dial whatever the business cluster names from inside the meta-cluster",
    ]);
    expect(policyViolations(off, { ...defaultPolicy, allowTunnelDisabled: true })).toEqual([]);
    expect(policyViolations({ ...base, tunnel: { enabled: true } }, defaultPolicy)).toEqual([]);
  });

  it('lets the apiserver Service have only the types and annotation keys the policy names', () => {
    const service = (svc: object) => ({ ...base, endpoint: { service: svc } }) as ClusterSpec;
    expect(policyViolations(service({ type: 'LoadBalancer' }), defaultPolicy)).toEqual([]);
    expect(
      policyViolations(
        service({ type: 'NodePort', annotations: { 'external-dns.alpha.kubernetes.io/hostname': 'bank.example.com' } }),
        defaultPolicy,
      ),
    ).toEqual([
      "spec.endpoint.service.annotations.external-dns.alpha.kubernetes.io/hostname: not allowed by the operator's policy (allowed prefixes: none)",
    ]);
    const lbOnly = {
      ...defaultPolicy,
      allowedServiceTypes: ['ClusterIP'],
      allowedServiceAnnotations: ['service.beta.kubernetes.io/'],
    };
    expect(
      policyViolations(
        service({
          type: 'LoadBalancer',
          annotations: { 'service.beta.kubernetes.io/aws-load-balancer-internal': 'true' },
        }),
        lbOnly,
      ),
    ).toEqual([
      "spec.endpoint.service.type: LoadBalancer is not allowed by the operator's policy (allowed: ClusterIP)",
    ]);
  });

  it('is read from JSON, with defaults for what is left out, and refuses what it does not know', () => {
    expect(parsePolicy(undefined)).toEqual(defaultPolicy);
    expect(parsePolicy('{"allowedVolumeSources":["hostPath"]}')).toEqual({
      ...defaultPolicy,
      allowedVolumeSources: ['hostPath'],
    });
    expect(() => parsePolicy('{"allowedImages":[]}')).toThrow('unknown field allowedImages');
    expect(() => parsePolicy('{"allowedVolumeSources":"hostPath"}')).toThrow('must be a list of strings');
    expect(() => parsePolicy('{')).toThrow('not valid JSON');
    expect(parsePolicy('{"allowTunnelDisabled":true}').allowTunnelDisabled).toBe(true);
    expect(parsePolicy('{"allowedEgressCIDRs":["192.0.2.0/24"]}').allowedEgressCIDRs).toEqual(['192.0.2.0/24']);
    expect(() => parsePolicy('{"allowedEgressCIDRs":["192.0.2.0"]}')).toThrow(
      'allowedEgressCIDRs: 192.0.2.0 is not a CIDR',
    );
    expect(() => parsePolicy('{"allowTunnelDisabled":"yes"}')).toThrow('allowTunnelDisabled must be true or false');
  });
});
