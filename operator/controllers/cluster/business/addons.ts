// What the operator keeps in the business cluster, through its apiserver: the control plane's own
// RBAC and node bootstrapping there, the tunnel agent, kube-proxy and CoreDNS (each switchable in the
// spec), the approval of kubelet serving certificates, and a real round trip through the tunnel.
// Runs once the apiserver is ready; AddonsReady and TunnelConnected say how it stands. Neither is
// part of Ready: a control plane without a node yet is ready to be joined.
import { request, type RequestOptions } from 'node:https';
import type { KubeConfig, V1CertificateSigningRequest, V1Node, V1Secret } from '@kubernetes/client-node';
import { addonLabel, AddonConflict, BusinessApplier } from '../../../business/applier.ts';
import type { BusinessClient, BusinessClients } from '../../../business/clients.ts';
import { judgeServingCsr, kubeletServingSigner } from '../../../business/serving-csr.ts';
import { kubeletClientSigner, kubeletsSignedBy, type IssuedRequest } from '../../../business/kubelet-certificates.ts';
import {
  addonTemplates, controlPlaneAddonContext, corednsAddonContext, customAddons, kubeProxyAddonContext, tunnelAgentAddonContext, wantedAddons,
  type BuiltinAddon,
} from '../../../model/addons.ts';
import { joinSecret } from '../../../model/join.ts';
import { workloadNotReady } from '../../../business/readiness.ts';
import { reconcileCustomAddons } from './custom-addons.ts';
import { externalServer } from '../../../pki/cluster-pki.ts';
import { phaseOf, trustBundle } from '../../../pki/ca-rotation.ts';
import type { RenderedObject } from '../../../render/renderer.ts';
import { notReady, ready, Reasons, unknown } from '../conditions.ts';
import { cached, type ReconcileContext } from '../context.ts';
import { decode } from '../../../kube/secret-data.ts';
import { apiserverPods, serverAgents } from '../tunnel-facts.ts';
import { serverListConfigMap } from '../../../tunnel/protocol.ts';
import { tunnelEnabled } from '../../../model/control-plane.ts';

const allAddons: BuiltinAddon[] = ['control-plane', 'tunnel-agent', 'kube-proxy', 'coredns'];
/** How often the business cluster is looked at again while all is well (nodes join, CSRs arrive). */
const steadyRecheckMs = 30_000;
const busyRecheckMs = 3_000;
/** Objects one page of a list in a business cluster holds, and the most a list reads in all (what its tenant made is read in bounded pieces). */
const businessListLimit = 500;
const businessListMax = 5000;

/** Every page of a business-cluster list, up to businessListMax objects. */
async function listBounded<T>(page: (opts: { limit: number; _continue?: string }) => Promise<{ items: T[]; metadata?: { _continue?: string } }>): Promise<T[]> {
  const items: T[] = [];
  let next: string | undefined;
  do {
    const answer = await page({ limit: businessListLimit, ...(next ? { _continue: next } : {}) });
    items.push(...answer.items);
    next = answer.metadata?._continue || undefined;
  } while (next && items.length < businessListMax);
  return items.slice(0, businessListMax);
}

/** A GET through the business apiserver with a deadline: the answer's status and body. */
export async function businessGet(kc: KubeConfig, server: string, path: string, timeoutMs = 5000): Promise<{ status: number; body: string }> {
  const url = new URL(path, server);
  const options: RequestOptions = { method: 'GET', hostname: url.hostname, port: url.port, path: url.pathname + url.search, timeout: timeoutMs };
  await kc.applyToHTTPSOptions(options);
  return new Promise((resolve, reject) => {
    // the whole exchange has the deadline, not only each silence: a trickling answer is cut too
    const deadline = setTimeout(() => req.destroy(new Error(`no whole answer within ${timeoutMs / 1000} s`)), timeoutMs);
    const req = request(options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
        // only the start is ever read (a status, a message): the rest is not waited for
        if (body.length >= 4096) {
          clearTimeout(deadline);
          resolve({ status: res.statusCode ?? 0, body: body.slice(0, 4096) });
          req.destroy();
        }
      });
      res.on('end', () => { clearTimeout(deadline); resolve({ status: res.statusCode ?? 0, body }); });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)));
    req.on('error', (err) => { clearTimeout(deadline); reject(err); });
    req.end();
  });
}

/** The objects of one built-in add-on for this Cluster (undefined: its inputs are not there yet). */
function render(ctx: ReconcileContext, addon: BuiltinAddon): RenderedObject[] | undefined {
  const spec = ctx.cluster.spec;
  const template = addonTemplates[addon];
  const server = externalServer({ endpoint: ctx.facts.endpoint });
  switch (addon) {
    case 'control-plane': {
      const token = ctx.facts.bootstrapToken;
      return token ? ctx.renderer.render(template, controlPlaneAddonContext(token)) : undefined;
    }
    case 'tunnel-agent': {
      const secret = cached<V1Secret>(ctx, 'Secret', `${ctx.name}-tunnel-agent`);
      const [cert, key, ca] = [decode(secret, 'tls.crt'), decode(secret, 'tls.key'), decode(secret, 'ca.crt')];
      const endpoint = ctx.facts.tunnelEndpoint;
      if (!cert || !key || !ca || !endpoint) return undefined;
      return ctx.renderer.render(template, tunnelAgentAddonContext(spec, { server: endpoint, tls: { cert, key, ca }, image: ctx.settings.operatorImage, servers: serverNames(ctx) }));
    }
    case 'kube-proxy':
      return server ? ctx.renderer.render(template, kubeProxyAddonContext(spec, server)) : undefined;
    case 'coredns':
      return ctx.renderer.render(template, corednsAddonContext(spec));
  }
}

/** The apiserver Pods there are, by name, in a stable order. */
const serverNames = (ctx: ReconcileContext) => apiserverPods(ctx).map((p) => p.metadata?.name ?? '').sort();

/**
 * During an apiserver rollout (the add-ons wait for it to end), only the agents' list of servers is
 * kept current, through an apiserver that answers: the agents chase the new Pod's server.
 */
async function updateServerList(ctx: ReconcileContext, clients: BusinessClients): Promise<void> {
  const answering = apiserverPods(ctx).some((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
  const client = answering ? await businessClient(ctx, clients) : undefined;
  if (!client || !tunnelEnabled(ctx.cluster.spec)) return;
  const list = render(ctx, 'tunnel-agent')?.find((o) => o.kind === 'ConfigMap' && o.metadata.name === serverListConfigMap.name);
  if (list) await new BusinessApplier(client, ctx.writer).apply('tunnel-agent', list);
}

/**
 * The client of this Cluster's business cluster, as the operator's own user, once the CA and the
 * apiserver's address are known. Nothing of the kubeconfig Secrets goes into it: their text is the
 * tenant's to edit (the PKI unit restores it), never the operator's to load.
 */
async function businessClient(ctx: ReconcileContext, clients: BusinessClients): Promise<BusinessClient | undefined> {
  const ca = ctx.facts.authorities?.ca;
  const address = ctx.facts.apiserverAddresses[0];
  if (!ca || !address) return undefined;
  const server = `https://${address.includes(':') ? `[${address}]` : address}:6443`;
  return clients.forCluster(`${ctx.namespace}/${ctx.name}`, server, ca.signer, trustBundle(ca), ctx.now);
}

/** The names an add-on's objects have whatever its inputs: for removing one no longer wanted. */
function shapes(ctx: ReconcileContext, addon: BuiltinAddon): RenderedObject[] {
  const spec = ctx.cluster.spec;
  const template = addonTemplates[addon];
  switch (addon) {
    case 'control-plane':
      return ctx.renderer.render(template, controlPlaneAddonContext({ id: 'aaaaaa', secret: 'a'.repeat(16) })).filter((o) => o.kind !== 'Secret');
    case 'tunnel-agent':
      return ctx.renderer.render(template, tunnelAgentAddonContext(spec, { server: { host: 'x', port: 1 }, tls: { cert: '', key: '', ca: '' }, image: 'x', servers: [] }));
    case 'kube-proxy':
      return ctx.renderer.render(template, kubeProxyAddonContext(spec, 'https://x'));
    case 'coredns':
      return ctx.renderer.render(template, corednsAddonContext(spec));
  }
}

/**
 * Removes what was applied for bootstrap tokens other than the current one and the one before a
 * renewal while it is accepted (a join Secret re-made by hand leaves no old token behind).
 */
async function removeOldTokens(client: BusinessClient, applier: BusinessApplier, keep: string[]): Promise<void> {
  const secrets = await listBounded((page) => client.core.listNamespacedSecret({ namespace: 'kube-system', labelSelector: `${addonLabel}=control-plane`, ...page }));
  for (const s of secrets) {
    if (s.type === 'bootstrap.kubernetes.io/token' && !keep.includes(s.metadata?.name ?? '')) await applier.remove('control-plane', { apiVersion: 'v1', kind: 'Secret', metadata: s.metadata });
  }
}

/** The business cluster's CSRs of one signer, a bounded number at a time (the rest come next pass). */
const signerCsrs = (client: BusinessClient, signer: string) =>
  listBounded((page) => client.certificates.listCertificateSigningRequest({ fieldSelector: `spec.signerName=${signer}`, ...page }));

async function approveServingCsrs(ctx: ReconcileContext, client: BusinessClient, nodes: V1Node[], csrs: V1CertificateSigningRequest[]): Promise<boolean> {
  const nodeFacts = nodes.map((n) => ({ name: n.metadata?.name ?? '', addresses: n.status?.addresses ?? [] }));
  const spec = ctx.cluster.spec;
  const servingPolicy = {
    serviceCIDR: spec.network.serviceCIDR,
    nodeCIDRs: spec.nodeNetworks,
    dnsDomain: spec.network.dnsDomain,
    apiserverNames: [...ctx.facts.apiserverAddresses, ...(ctx.facts.endpoint ? [ctx.facts.endpoint.host] : []), ...(ctx.facts.tunnelAddresses ?? [])],
  };
  let waiting = false;
  for (const csr of csrs) {
    const verdict = judgeServingCsr({
      name: csr.metadata?.name ?? '',
      signerName: csr.spec.signerName,
      username: csr.spec.username ?? '',
      groups: csr.spec.groups ?? [],
      usages: csr.spec.usages ?? [],
      request: Buffer.from(csr.spec.request, 'base64').toString('utf8'),
      decided: (csr.status?.conditions ?? []).length > 0,
    }, nodeFacts, servingPolicy);
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
          conditions: [{
            type: approved ? 'Approved' : 'Denied', status: 'True', reason: approved ? 'KubeonkubeApproved' : 'KubeonkubeDenied',
            message: approved ? 'a node\'s serving certificate for addresses its Node reports' : verdict.reason, lastUpdateTime: ctx.now,
          }],
        },
      },
    });
    ctx.log.info({ csr: csr.metadata?.name, username: csr.spec.username, approved }, approved ? 'approved a kubelet serving certificate' : 'denied a kubelet serving certificate');
    if (!approved) ctx.events.warning('ServingCertificateDenied', `denied CSR ${csr.metadata?.name} of ${csr.spec.username}: ${verdict.reason}`);
  }
  return waiting;
}

/**
 * While the cluster CA is in its signing phase: which kubelets the business cluster's CSRs show
 * with a client or serving certificate of the new CA (the CA rotation waits for every one).
 */
async function observeKubeletRenewals(ctx: ReconcileContext, client: BusinessClient, servingCsrs: V1CertificateSigningRequest[]): Promise<void> {
  const ca = ctx.facts.authorities?.ca;
  const serving = ctx.facts.authorities?.['kubelet-serving-ca'];
  if (!ca || !serving || (phaseOf(ca) !== 'signing' && phaseOf(serving) !== 'signing')) return;
  const requests: IssuedRequest[] = [];
  for (const csr of [...await signerCsrs(client, kubeletClientSigner), ...servingCsrs]) {
    const issued = csr.status?.certificate;
    if (issued) requests.push({ signerName: csr.spec.signerName, certificate: Buffer.from(issued, 'base64').toString('utf8') });
  }
  ctx.facts.kubeletRenewals = await kubeletsSignedBy(requests, { client: ca.signer.certificate, serving: serving.signer.certificate });
}

/** Connected agents as each ready tunnel server counts them (its metrics): the fewest any server holds. */
async function agentsPerServer(ctx: ReconcileContext): Promise<number | undefined> {
  const ready = apiserverPods(ctx).filter((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
  const known = (await Promise.all(ready.map(serverAgents))).filter((c): c is number => c !== undefined);
  return known.length > 0 ? Math.min(...known) : undefined;
}

async function checkTunnel(ctx: ReconcileContext, client: BusinessClient, nodes: V1Node[]): Promise<boolean> {
  const readyNodes = nodes.filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
  const agents = await agentsPerServer(ctx);
  if (agents !== undefined) ctx.status.tunnel = { agents };
  const node = readyNodes[0]?.metadata?.name;
  if (!node) {
    ctx.setCondition('TunnelConnected', notReady(Reasons.NoNodes, `no node is ready; the tunnel agent runs on one (a worker joins with the Secret ${joinSecret(ctx.name)})`));
    return false;
  }
  try {
    // the apiserver dials the kubelet through its egress selector: the tunnel, end to end
    const res = await businessGet(client.kc, client.server, `/api/v1/nodes/${encodeURIComponent(node)}/proxy/healthz`);
    if (res.status === 200) {
      // the agent count is in status.tunnel: a message that moved with it would be a write per change
      ctx.setCondition('TunnelConnected', ready(`the apiserver reached node ${node}'s kubelet through the tunnel`));
      return true;
    }
    const reason = res.body.match(/"message":"([^"]*)"/)?.[1] ?? res.body.slice(0, 300);
    ctx.setCondition('TunnelConnected', notReady(Reasons.TunnelRoundTripFailed, `the apiserver could not reach node ${node}'s kubelet through the tunnel: ${reason}`));
  } catch (err) {
    ctx.setCondition('TunnelConnected', notReady(Reasons.TunnelRoundTripFailed, `asking the apiserver for node ${node}'s kubelet failed: ${(err as Error).message}`));
  }
  return false;
}

export async function reconcileAddons(ctx: ReconcileContext, clients: BusinessClients): Promise<void> {
  // an apiserver without etcd quorum holds every request for a minute: nothing to do there now
  if (!ctx.facts.etcdQuorum) {
    ctx.setCondition('AddonsReady', unknown(Reasons.WaitingForEtcd, 'waiting for etcd quorum'));
    if (ctx.cluster.spec.tunnel?.enabled !== false) ctx.setCondition('TunnelConnected', unknown(Reasons.WaitingForEtcd, 'waiting for etcd quorum'));
    return;
  }
  if (!ctx.facts.apiserverReady) {
    await updateServerList(ctx, clients);
    ctx.setCondition('AddonsReady', unknown(Reasons.WaitingForAPIServer, 'waiting for the apiserver'));
    if (ctx.cluster.spec.tunnel?.enabled !== false) ctx.setCondition('TunnelConnected', unknown(Reasons.WaitingForAPIServer, 'waiting for the apiserver'));
    return;
  }
  const client = await businessClient(ctx, clients);
  if (!client) {
    ctx.setCondition('AddonsReady', unknown(Reasons.WaitingForAPIServer, 'waiting for the certificate authority and the apiserver\'s address'));
    return;
  }
  const applier = new BusinessApplier(client, ctx.writer);
  const wanted = wantedAddons(ctx.cluster.spec);
  const problems: string[] = [];
  const progressing: string[] = [];
  for (const addon of allAddons) {
    if (!wanted.includes(addon)) {
      for (const obj of shapes(ctx, addon)) {
        if (await applier.remove(addon, obj)) ctx.events.normal('AddonRemoved', `removed ${obj.kind} ${obj.metadata.name} of add-on ${addon} from the business cluster: the spec no longer asks for it`);
      }
      continue;
    }
    const objects = render(ctx, addon);
    if (!objects) {
      progressing.push(`${addon}: waiting for its inputs (endpoint, certificates)`);
      continue;
    }
    try {
      for (const obj of objects) {
        const live = await applier.apply(addon, obj);
        const why = workloadNotReady(live);
        if (why) progressing.push(why);
      }
    } catch (err) {
      if (!(err instanceof AddonConflict)) throw err;
      problems.push(err.message);
    }
  }
  const token = ctx.facts.bootstrapToken;
  const previous = ctx.facts.previousBootstrapToken;
  if (token) await removeOldTokens(client, applier, [token, ...(previous ? [previous] : [])].map((t) => `bootstrap-token-${t.id}`));
  const custom = await reconcileCustomAddons(ctx, client, applier);
  progressing.push(...custom.progressing);

  const nodes = await listBounded((page) => client.core.listNode(page));
  // a list cut at the bound does not name every node: not known, rather than some waited for
  ctx.facts.businessNodes = nodes.length < businessListMax ? nodes.map((n) => n.metadata?.name ?? '') : undefined;
  const servingCsrs = await signerCsrs(client, kubeletServingSigner);
  const csrWaiting = await approveServingCsrs(ctx, client, nodes, servingCsrs);
  await observeKubeletRenewals(ctx, client, servingCsrs);
  if (problems.length > 0 || custom.problems.length > 0) {
    const reason = problems.length > 0 ? Reasons.AddonConflict : custom.problems[0]!.reason;
    ctx.setCondition('AddonsReady', notReady(reason, [...problems, ...custom.problems.map((p) => p.message)].join('; ')));
  } else if (progressing.length > 0 && nodes.length === 0) ctx.setCondition('AddonsReady', notReady(Reasons.NoNodes, `no node has joined; add-on workloads wait for one (a worker joins with the Secret ${joinSecret(ctx.name)})`));
  else if (progressing.length > 0) ctx.setCondition('AddonsReady', notReady(Reasons.AddonsProgressing, progressing.join('; ')));
  else ctx.setCondition('AddonsReady', ready(`${[...wanted, ...customAddons(ctx.cluster.spec).map((a) => a.name)].join(', ')} applied and available`));

  let tunnelUp = true;
  if (ctx.cluster.spec.tunnel?.enabled === false) {
    ctx.setCondition('TunnelConnected', notReady(Reasons.TunnelDisabled, 'spec.tunnel.enabled is false: the apiserver dials nodes directly'));
    delete ctx.status.tunnel;
  } else {
    tunnelUp = await checkTunnel(ctx, client, nodes);
  }
  // a conflict or a template to fix waits for a person: looked at with the steady recheck
  const settled = !custom.retrySoon && progressing.length === 0 && !csrWaiting && tunnelUp;
  ctx.requeueAfter(settled || nodes.length === 0 ? steadyRecheckMs : busyRecheckMs);
}
