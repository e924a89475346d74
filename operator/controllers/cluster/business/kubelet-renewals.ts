// While a CA rotation signs with the new cluster CA (or kubelet-serving CA): which kubelets the
// business cluster's issued CSRs show with a certificate of it. The rotation keeps the old CA
// until every node has renewed both; this is its evidence (business/kubelet-certificates.ts).
import type { V1CertificateSigningRequest } from '@kubernetes/client-node';
import type { BusinessClient } from '../../../business/clients.ts';
import { kubeletClientSigner, kubeletsSignedBy, type IssuedRequest } from '../../../business/kubelet-certificates.ts';
import { phaseOf } from '../../../pki/ca-rotation.ts';
import type { BusinessContext } from './context.ts';
import { signerCsrs } from '../../../business/bounded-list.ts';

export async function observeKubeletRenewals(
  ctx: BusinessContext,
  client: BusinessClient,
  servingCsrs: V1CertificateSigningRequest[],
): Promise<void> {
  const { ca, kubeletServingCa: serving } = ctx.inputs;
  if (!ca || !serving || (phaseOf(ca) !== 'signing' && phaseOf(serving) !== 'signing')) return;
  const requests: IssuedRequest[] = [];
  for (const csr of [...(await signerCsrs(client, kubeletClientSigner)), ...servingCsrs]) {
    const issued = csr.status?.certificate;
    if (issued)
      requests.push({ signerName: csr.spec.signerName, certificate: Buffer.from(issued, 'base64').toString('utf8') });
  }
  const cas = { client: ca.signer.certificate, serving: serving.signer.certificate };
  ctx.report.kubeletRenewals = {
    ...(await kubeletsSignedBy(requests, cas)),
    clientCa: cas.client,
    servingCa: cas.serving,
  };
}
