// The business wing of the Cluster controller: everything done in the business cluster, through
// its apiserver, in a queue of its own (a slow or hostile business apiserver holds up only this
// loop, never the control plane's pass). One pass: the built-in add-ons, the custom add-ons, the
// approval of kubelet serving certificates, the evidence of kubelet renewals during a CA
// rotation, and a round trip through the tunnel. It works from what the control-plane pass last
// reported and reports back AddonsReady, TunnelConnected, the nodes and the renewals it saw.
// Neither condition is part of Ready: a control plane without a node yet is ready to be joined.
import type { V1ConfigMap } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { BusinessApplier } from '../../../business/applier.ts';
import { businessListMax, listBounded, signerCsrs } from '../../../business/bounded-list.ts';
import { BusinessClients } from '../../../business/clients.ts';
import { kubeletServingSigner } from '../../../business/serving-csr.ts';
import { NotLeaderError, type Writer } from '../../../kube/apply.ts';
import type { EventSink } from '../../../kube/events.ts';
import { customAddons } from '../../../model/addons.ts';
import { secrets } from '../../../names/cluster-names.ts';
import { trustBundle } from '../../../pki/ca-rotation.ts';
import type { Renderer } from '../../../render/renderer.ts';
import type { Result } from '../../../runtime/work-queue.ts';
import { notReady, ready, Reasons, unknown } from '../conditions.ts';
import type { ClusterObject, Settings } from '../context.ts';
import type { ClusterCaches } from '../watches.ts';
import { clusterKind } from '../watches.ts';
import { reconcileBuiltinAddons, updateServerList } from './builtin-addons.ts';
import type { BusinessContext, BusinessSession } from './context.ts';
import { reconcileCustomAddons } from './custom-addons.ts';
import { readInventories } from './inventories.ts';
import { observeKubeletRenewals } from './kubelet-renewals.ts';
import type { BusinessReport, ClusterReports } from './reports.ts';
import { approveServingCsrs } from './serving-csr-approval.ts';
import { checkTunnel } from './tunnel-check.ts';

/** How often the business cluster is looked at again while all is well (nodes join, CSRs arrive), and while something moves. */
const steadyRecheckMs = 30_000;
const busyRecheckMs = 3_000;
const unreachableRecheckMs = 5_000;

export interface BusinessWingDeps {
  caches: ClusterCaches;
  reports: ClusterReports;
  writer: Writer;
  renderer: Renderer;
  settings: Settings;
  log: Logger;
  events: (cluster: ClusterObject) => EventSink;
  /** Reads a ConfigMap of the meta-cluster (undefined when there is none): custom add-on templates. */
  configMap: (namespace: string, name: string) => Promise<V1ConfigMap | undefined>;
  /** Clients of the business clusters (one per Cluster); made here when not given. */
  business?: BusinessClients;
  now?: () => Date;
}

export class BusinessReconciler {
  readonly #deps: BusinessWingDeps;
  readonly #clients: BusinessClients;

  constructor(deps: BusinessWingDeps) {
    this.#deps = deps;
    this.#clients = deps.business ?? new BusinessClients();
  }

  async reconcile(key: string): Promise<Result> {
    const [namespace = '', name = ''] = key.split('/');
    const live = this.#deps.caches.primary.get(name, namespace) as ClusterObject | undefined;
    if (!live) {
      this.#clients.forget(key);
      return undefined;
    }
    // the control-plane pass reports first (and wakes this loop when it does)
    const inputs = this.#deps.reports.controlPlane(key);
    if (!inputs || live.metadata?.deletionTimestamp || live.spec.paused) return undefined;
    // the spec the control plane accepted: a spec refused there (invalid, forbidden, a change that
    // cannot be made) builds nothing here either, while what was built from the last one is kept
    const cluster: ClusterObject = { ...live, spec: inputs.spec };
    let requeueMs: number | undefined;
    const report: BusinessReport = { conditions: {} };
    const ctx: BusinessContext = {
      cluster,
      name,
      namespace,
      inputs,
      report,
      owner: { apiVersion: clusterKind.apiVersion, kind: clusterKind.kind, name, uid: cluster.metadata?.uid ?? '' },
      log: this.#deps.log.child({ cluster: name, namespace, wing: 'business' }),
      now: this.#deps.now?.() ?? new Date(),
      caches: this.#deps.caches,
      renderer: this.#deps.renderer,
      settings: this.#deps.settings,
      writer: this.#deps.writer,
      events: this.#deps.events(cluster),
      configMap: (configMap) => this.#deps.configMap(namespace, configMap),
      setCondition: (type, update) => {
        report.conditions[type] = update;
      },
      requeueAfter: (ms) => {
        requeueMs = Math.max(1000, Math.min(requeueMs ?? Infinity, ms));
      },
    };
    try {
      await this.#pass(ctx);
    } catch (err) {
      if (err instanceof NotLeaderError) throw err;
      const message = (err as Error).message.replace(/\s+/g, ' ').slice(0, 300);
      ctx.log.info({ err: message }, 'business cluster not reachable');
      // what was found before the failure stays unknown rather than half-known
      report.nodes = undefined;
      report.kubeletRenewals = undefined;
      ctx.setCondition(
        'AddonsReady',
        unknown(
          Reasons.BusinessClusterUnreachable,
          `the business cluster's apiserver did not answer as expected: ${message}`,
        ),
      );
      ctx.requeueAfter(unreachableRecheckMs);
    }
    this.#deps.reports.publishBusiness(key, report);
    return requeueMs === undefined ? undefined : { requeueAfter: requeueMs };
  }

  /**
   * The client of this Cluster's business cluster, as the operator's own user, once the CA and the
   * apiserver's address are known. Nothing of the kubeconfig Secrets goes into it: their text is the
   * tenant's to edit (the PKI unit restores it), never the operator's to load.
   */
  async #session(ctx: BusinessContext): Promise<BusinessSession | undefined> {
    const ca = ctx.inputs.ca;
    const address = ctx.inputs.apiserverAddresses[0];
    if (!ca || !address) return undefined;
    const server = `https://${address.includes(':') ? `[${address}]` : address}:6443`;
    const client = await this.#clients.forCluster(
      `${ctx.namespace}/${ctx.name}`,
      server,
      ca.signer,
      trustBundle(ca),
      ctx.now,
    );
    return { client, applier: new BusinessApplier(client, ctx.writer) };
  }

  async #pass(ctx: BusinessContext): Promise<void> {
    const tunnel = ctx.cluster.spec.tunnel?.enabled !== false;
    // an apiserver without etcd quorum holds every request for a minute: nothing to do there now
    if (!ctx.inputs.etcdQuorum) {
      ctx.setCondition('AddonsReady', unknown(Reasons.WaitingForEtcd, 'waiting for etcd quorum'));
      if (tunnel) ctx.setCondition('TunnelConnected', unknown(Reasons.WaitingForEtcd, 'waiting for etcd quorum'));
      return;
    }
    if (!ctx.inputs.apiserverReady) {
      await updateServerList(ctx, () => this.#session(ctx));
      ctx.setCondition('AddonsReady', unknown(Reasons.WaitingForAPIServer, 'waiting for the apiserver'));
      if (tunnel)
        ctx.setCondition('TunnelConnected', unknown(Reasons.WaitingForAPIServer, 'waiting for the apiserver'));
      // the control-plane pass reports the end of the rollout (and each apiserver Pod on the way)
      ctx.requeueAfter(busyRecheckMs);
      return;
    }
    const session = await this.#session(ctx);
    if (!session) {
      ctx.setCondition(
        'AddonsReady',
        unknown(Reasons.WaitingForAPIServer, "waiting for the certificate authority and the apiserver's address"),
      );
      return;
    }
    const { client } = session;
    const inventories = await readInventories(client);
    const builtin = await reconcileBuiltinAddons(ctx, session, inventories);
    const custom = await reconcileCustomAddons(ctx, client, session.applier, inventories);
    const progressing = [...builtin.progressing, ...custom.progressing];

    const nodes = await listBounded((page) => client.core.listNode(page));
    // a list cut at the bound does not name every node: not known, rather than some waited for
    ctx.report.nodes = nodes.length < businessListMax ? nodes.map((n) => n.metadata?.name ?? '') : undefined;
    const servingCsrs = await signerCsrs(client, kubeletServingSigner);
    const csrWaiting = await approveServingCsrs(ctx, client, nodes, servingCsrs);
    await observeKubeletRenewals(ctx, client, servingCsrs);
    if (builtin.problems.length > 0 || custom.problems.length > 0) {
      const reason = builtin.problems.length > 0 ? Reasons.AddonConflict : custom.problems[0]!.reason;
      ctx.setCondition(
        'AddonsReady',
        notReady(reason, [...builtin.problems, ...custom.problems.map((p) => p.message)].join('; ')),
      );
    } else if (progressing.length > 0 && nodes.length === 0) {
      ctx.setCondition(
        'AddonsReady',
        notReady(
          Reasons.NoNodes,
          `no node has joined; add-on workloads wait for one (a worker joins with the Secret ${secrets.join(ctx.name)})`,
        ),
      );
    } else if (progressing.length > 0)
      ctx.setCondition('AddonsReady', notReady(Reasons.AddonsProgressing, progressing.join('; ')));
    else
      ctx.setCondition(
        'AddonsReady',
        ready(
          `${[...builtin.wanted, ...customAddons(ctx.cluster.spec).map((a) => a.name)].join(', ')} applied and available`,
        ),
      );

    let tunnelUp = true;
    if (!tunnel)
      ctx.setCondition(
        'TunnelConnected',
        notReady(Reasons.TunnelDisabled, 'spec.tunnel.enabled is false: the apiserver dials nodes directly'),
      );
    else tunnelUp = await checkTunnel(ctx, client, nodes);
    // a conflict or a template to fix waits for a person: looked at with the steady recheck
    const settled = !custom.retrySoon && progressing.length === 0 && !csrWaiting && tunnelUp;
    ctx.requeueAfter(settled || nodes.length === 0 ? steadyRecheckMs : busyRecheckMs);
  }
}
