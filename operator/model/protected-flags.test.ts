import { describe, expect, it } from 'vitest';
import { refusedExtraArgs } from './protected-flags.ts';

describe('flags that hold the boundary', () => {
  it('refuses each, naming the flag, whatever dashes it is given with', () => {
    expect(
      refusedExtraArgs({
        controlPlane: {
          apiServer: {
            extraArgs: {
              'egress-selector-config-file': '/dev/null',
              '--authorization-mode': 'AlwaysAllow',
              'kubelet-certificate-authority': '',
            },
          },
        },
      }),
    ).toEqual([
      'spec.controlPlane.apiServer.extraArgs.egress-selector-config-file: --egress-selector-config-file holds the boundary between the business cluster and the meta-cluster; the operator sets it and it cannot be overridden',
      'spec.controlPlane.apiServer.extraArgs.--authorization-mode: --authorization-mode holds the boundary between the business cluster and the meta-cluster; the operator sets it and it cannot be overridden',
      'spec.controlPlane.apiServer.extraArgs.kubelet-certificate-authority: --kubelet-certificate-authority holds the boundary between the business cluster and the meta-cluster; the operator sets it and it cannot be overridden',
    ]);
    for (const flag of [
      'service-account-issuer',
      'service-account-key-file',
      'etcd-servers',
      'client-ca-file',
      'requestheader-allowed-names',
      'tls-cert-file',
      'token-auth-file',
      'authentication-token-webhook-config-file',
    ]) {
      expect(refusedExtraArgs({ controlPlane: { apiServer: { extraArgs: { [flag]: 'x' } } } }), flag).toHaveLength(1);
    }
    expect(
      refusedExtraArgs({
        controlPlane: {
          controllerManager: {
            extraArgs: { 'cluster-signing-cert-file': 'x', 'root-ca-file': 'x', 'kubeconfig': 'x' },
          },
        },
      }),
    ).toHaveLength(3);
    expect(
      refusedExtraArgs({ controlPlane: { scheduler: { extraArgs: { 'authorization-kubeconfig': 'x' } } } }),
    ).toHaveLength(1);
  });

  it('reads _ as - as the components do, refuses what is no flag name, and refuses the older names of the same flags', () => {
    expect(
      refusedExtraArgs({ controlPlane: { apiServer: { extraArgs: { 'etcd_servers': 'https://evil:2379' } } } }),
    ).toEqual([
      'spec.controlPlane.apiServer.extraArgs.etcd_servers: --etcd-servers holds the boundary between the business cluster and the meta-cluster; the operator sets it and it cannot be overridden',
    ]);
    expect(
      refusedExtraArgs({
        controlPlane: { apiServer: { extraArgs: { 'enable_admission_plugins': 'PodNodeSelector' } } },
      }),
    ).toHaveLength(1);
    expect(
      refusedExtraArgs({ controlPlane: { apiServer: { extraArgs: { 'admission-control': 'AlwaysAdmit' } } } }),
    ).toHaveLength(1);
    expect(
      refusedExtraArgs({
        controlPlane: {
          controllerManager: { extraArgs: { master: 'https://evil' } },
          scheduler: { extraArgs: { master: 'https://evil' } },
        },
      }),
    ).toHaveLength(2);
    expect(
      refusedExtraArgs({
        controlPlane: { apiServer: { extraArgs: { 'Etcd-Servers': 'x', 'v=9 --etcd-servers': 'x' } } },
      }),
    ).toEqual([
      'spec.controlPlane.apiServer.extraArgs.Etcd-Servers: not a flag name (lower-case letters, digits and dashes)',
      'spec.controlPlane.apiServer.extraArgs.v=9 --etcd-servers: not a flag name (lower-case letters, digits and dashes)',
    ]);
  });

  it('keeps NodeRestriction among the admission plugins', () => {
    expect(
      refusedExtraArgs({
        controlPlane: { apiServer: { extraArgs: { 'enable-admission-plugins': 'PodNodeSelector' } } },
      }),
    ).toEqual([
      'spec.controlPlane.apiServer.extraArgs.enable-admission-plugins: must keep NodeRestriction (it keeps each node to its own objects)',
    ]);
    expect(
      refusedExtraArgs({
        controlPlane: {
          apiServer: { extraArgs: { 'disable-admission-plugins': 'DefaultStorageClass, NodeRestriction' } },
        },
      }),
    ).toHaveLength(1);
    expect(
      refusedExtraArgs({
        controlPlane: {
          apiServer: {
            extraArgs: {
              'enable-admission-plugins': 'NodeRestriction,PodNodeSelector',
              'disable-admission-plugins': 'DefaultStorageClass',
            },
          },
        },
      }),
    ).toEqual([]);
  });

  it('lets a component be tuned', () => {
    expect(refusedExtraArgs({})).toEqual([]);
    expect(
      refusedExtraArgs({
        controlPlane: {
          apiServer: {
            extraArgs: {
              'v': '2',
              'max-requests-inflight': '800',
              'oidc-issuer-url': 'https://id.example.com',
              'feature-gates': 'X=true',
            },
          },
          controllerManager: { extraArgs: { 'node-monitor-grace-period': '50s', 'controllers': '*,-ttl' } },
          scheduler: { extraArgs: { 'v': '4' } },
        },
      }),
    ).toEqual([]);
  });
});
