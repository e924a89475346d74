// Kubelets' serving certificates: the business cluster's CSRs of the kubelet-serving signer,
// approved only for what the node is (business/serving-csr.ts judges each one) and denied, with
// a Warning event, otherwise.
import type { V1CertificateSigningRequest, V1Node } from '@kubernetes/client-node';
import type { BusinessClient } from '../../../business/clients.ts';
import { judgeServingCsr } from '../../../business/serving-csr.ts';
import type { BusinessContext } from './context.ts';

/** Decides every undecided CSR of `csrs`; true when one waits for its Node to report an address. */
export async function approveServingCsrs(
  ctx: BusinessContext,
  client: BusinessClient,
  nodes: V1Node[],
  csrs: V1CertificateSigningRequest[],
): Promise<boolean> {
  const nodeFacts = nodes.map((n) => ({ name: n.metadata?.name ?? '', addresses: n.status?.addresses ?? [] }));
  const spec = ctx.cluster.spec;
  const servingPolicy = {
    serviceCIDR: spec.network.serviceCIDR,
    nodeCIDRs: spec.nodeNetworks,
    dnsDomain: spec.network.dnsDomain,
    apiserverNames: [
      ...ctx.inputs.apiserverAddresses,
      ...(ctx.inputs.endpoint ? [ctx.inputs.endpoint.host] : []),
      ...ctx.inputs.tunnelAddresses,
    ],
  };
  let waiting = false;
  for (const csr of csrs) {
    const verdict = judgeServingCsr(
      {
        name: csr.metadata?.name ?? '',
        signerName: csr.spec.signerName,
        username: csr.spec.username ?? '',
        groups: csr.spec.groups ?? [],
        usages: csr.spec.usages ?? [],
        request: Buffer.from(csr.spec.request, 'base64').toString('utf8'),
        decided: (csr.status?.conditions ?? []).length > 0,
      },
      nodeFacts,
      servingPolicy,
    );
    if (verdict.action === 'ignore') continue;
    if (verdict.action === 'wait') {
      waiting = true;
      continue;
    }
    const approved = verdict.action === 'approve';
    ctx.writer.count('business-approve', 'CertificateSigningRequest');
    await client.certificates.replaceCertificateSigningRequestApproval({
      name: csr.metadata?.name ?? '',
      body: {
        ...csr,
        status: {
          ...csr.status,
          conditions: [
            {
              type: approved ? 'Approved' : 'Denied',
              status: 'True',
              reason: approved ? 'KubeonkubeApproved' : 'KubeonkubeDenied',
              message: approved ? "a node's serving certificate for addresses its Node reports" : verdict.reason,
              lastUpdateTime: ctx.now,
            },
          ],
        },
      },
    });
    ctx.log.info(
      { csr: csr.metadata?.name, username: csr.spec.username, approved },
      approved ? 'approved a kubelet serving certificate' : 'denied a kubelet serving certificate',
    );
    if (!approved)
      ctx.events.warning(
        'ServingCertificateDenied',
        `denied CSR ${csr.metadata?.name} of ${csr.spec.username}: ${verdict.reason}`,
      );
  }
  return waiting;
}
