// Which kubelet serving CSRs the operator approves: real PKCS#10 requests, judged against Nodes.
import { webcrypto } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { x509 } from '../pki/x509.ts';
import { judgeServingCsr, kubeletServingSigner, type CsrFacts } from './serving-csr.ts';

const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);

async function csr(subject: string, names: { type: 'ip' | 'dns' | 'email'; value: string }[]): Promise<string> {
  const request = await x509.Pkcs10CertificateRequestGenerator.create({
    name: subject, keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names)] : [],
  });
  return request.toString('pem');
}

const node = { name: 'w0', addresses: [{ type: 'InternalIP', address: '10.250.0.2' }, { type: 'Hostname', address: 'w0' }] };
const base = async (over: Partial<CsrFacts> = {}, subject = 'CN=system:node:w0, O=system:nodes', names: { type: 'ip' | 'dns' | 'email'; value: string }[] = [{ type: 'dns', value: 'w0' }, { type: 'ip', value: '10.250.0.2' }]): Promise<CsrFacts> => ({
  name: 'csr-1', signerName: kubeletServingSigner, username: 'system:node:w0', groups: ['system:nodes', 'system:authenticated'],
  usages: ['digital signature', 'server auth'], request: await csr(subject, names), decided: false, ...over,
});

describe('kubelet serving CSRs', () => {
  it('approves a node asking for its own addresses', async () => {
    expect(judgeServingCsr(await base(), [node])).toEqual({ action: 'approve' });
  });

  it('leaves other signers and decided requests alone', async () => {
    expect(judgeServingCsr(await base({ signerName: 'kubernetes.io/kube-apiserver-client-kubelet' }), [node])).toEqual({ action: 'ignore' });
    expect(judgeServingCsr(await base({ decided: true }), [node])).toEqual({ action: 'ignore' });
  });

  it('waits for a node not registered yet, or for an address it does not report yet', async () => {
    expect(judgeServingCsr(await base(), [])).toMatchObject({ action: 'wait' });
    const verdict = judgeServingCsr(await base({}, undefined, [{ type: 'ip', value: '10.0.0.9' }]), [node]);
    expect(verdict.action).toBe('wait');
    expect((verdict as { reason: string }).reason).toContain('10.0.0.9');
  });

  it.each([
    ['another user', { username: 'bob', groups: ['system:authenticated'] }, undefined, undefined, 'not by a node'],
    ['a client usage', { usages: ['digital signature', 'server auth', 'client auth'] }, undefined, undefined, 'usages'],
    ['another node\'s name in the subject', {}, 'CN=system:node:w1, O=system:nodes', undefined, 'subject'],
    ['an email name', {}, undefined, [{ type: 'email' as const, value: 'a@b.c' }], 'email'],
    ['no name at all', {}, undefined, [], 'names no address'],
  ])('denies %s', async (_what, over, subject, names, reason) => {
    const verdict = judgeServingCsr(await base(over, subject, names), [node]);
    expect(verdict.action).toBe('deny');
    expect((verdict as { reason: string }).reason).toContain(reason);
  });
});
