// The PKI of a Cluster in Secrets. A CA or service-account key that exists is never replaced:
// doing so would invalidate every kubeconfig and token. If one is unreadable the unit stops and
// says so. Leaves are re-issued when they no longer match their spec or enter their renew window,
// and the unit asks to be run again at the earliest renew deadline. A leaf that its CA's own end
// cuts short is not re-issued again and again: the CA's expiry is reported instead.
import { createHash } from 'node:crypto';
import type { V1Secret } from '@kubernetes/client-node';
import { isOwnedBy, objectHash, ownedBy } from '../../../kube/apply.ts';
import { decode, encode } from '../../../kube/secret-data.ts';
import { kubeconfigClientKey, renderKubeconfig } from '../../../kube/kubeconfig.ts';
import { etcdMembers, tunnelEnabled } from '../../../model/control-plane.ts';
import { durationMs as parseDuration } from '../../../api/formats.ts';
import { clusterLabel, clusterLabels, mountedSecrets, secrets } from '../../../names/cluster-names.ts';
import {
  createCertificateAuthority,
  describeCertificate,
  issueCertificate,
  isSignedBy,
  keyMatchesCertificate,
  pemCertificates,
  type CertificateAndKey,
  type CertificateDescription,
} from '../../../pki/certificates.ts';
import {
  authorities,
  plannedCertificates,
  plannedSecretNames,
  type Authority,
  type PlannedCertificate,
} from '../../../pki/cluster-pki.ts';
import { generateKeyPair, privateKeyToPem, publicKeyToPem } from '../../../pki/keys.ts';
import {
  authorityData,
  caRotationRequestAnnotation,
  rotateCaAnnotation,
  stillValid,
  trustBundle,
  type AuthorityState,
} from '../../../pki/ca-rotation.ts';
import { renewalVerdict } from '../../../pki/renewal.ts';
import { PkiError, readAuthority } from '../../../pki/authority-secret.ts';
import { notReady, ready, Reasons, type ConditionUpdate } from '../conditions.ts';
import { cached, type ClusterSpec, type ObjectRef, type ReconcileContext } from '../context.ts';

export const serverAnnotation = 'kubeonkube.io/server';
/**
 * On the Cluster: a value not yet honoured (status.certificates.forcedRenewal.request) re-issues
 * every leaf certificate at once, e.g. after a key may have leaked. Any new value asks again.
 */
export const renewCertificatesAnnotation = 'kubeonkube.io/renew-certificates';

function secretObject(
  ctx: ReconcileContext,
  name: string,
  type: string,
  data: Record<string, string>,
  component: 'pki' | 'kubeconfig',
  annotations: Record<string, string> = {},
): V1Secret {
  return ownedBy(
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name, namespace: ctx.namespace, labels: clusterLabels(ctx.name, component), annotations },
      type,
      data: encode(data),
    },
    ctx.owner,
  );
}

/**
 * Reads a CA, creating it only when its Secret does not exist. `legacy`: the CAs that signed what
 * the new one will sign, until now (see AuthorityState.legacy).
 */
async function ensureAuthority(
  ctx: ReconcileContext,
  authority: Authority,
  commonName: string,
  caValidityMs: number,
  legacy?: { bundle: string; request: string },
): Promise<AuthorityState> {
  const name = secrets.authority(ctx.name, authority);
  const live = cached<V1Secret>(ctx, 'Secret', name);
  if (live) return readAuthority(name, live);
  const ca = await createCertificateAuthority(commonName, caValidityMs, ctx.now);
  // a Cluster created with a rotation request already on it has nothing to rotate; a CA added to
  // a Cluster that has others was rotated when they were (so the next request rotates it with them)
  const request = legacy?.request ?? ctx.cluster.metadata?.annotations?.[rotateCaAnnotation] ?? '';
  const state: AuthorityState = { signer: ca, request, ...(legacy ? { legacy: legacy.bundle } : {}) };
  // create, never apply: if the cache lags and the CA exists after all, the existing one wins
  const { created, live: existing } = await ctx.writer.createOnly(
    secretObject(
      ctx,
      name,
      'kubernetes.io/tls',
      authorityData(state),
      'pki',
      request ? { [caRotationRequestAnnotation]: request } : {},
    ),
  );
  if (!created) return readAuthority(name, existing);
  ctx.events.normal(
    'CACreated',
    `created certificate authority ${name}${legacy ? ' (the cluster CA stays trusted for the serving certificates kubelets hold until the next CA rotation)' : ''}`,
  );
  return state;
}

async function ensureServiceAccountKey(ctx: ReconcileContext): Promise<string> {
  const name = secrets.serviceAccount(ctx.name);
  const live = cached<V1Secret>(ctx, 'Secret', name);
  if (live) {
    const pub = decode(live, 'sa.pub');
    if (!pub || !decode(live, 'sa.key'))
      throw new PkiError(`Secret ${name} exists but lacks sa.key or sa.pub; it is never regenerated, restore it`);
    return pub;
  }
  const keys = await generateKeyPair();
  const pub = await publicKeyToPem(keys.publicKey);
  const { created, live: existing } = await ctx.writer.createOnly(
    secretObject(ctx, name, 'Opaque', { 'sa.key': await privateKeyToPem(keys.privateKey), 'sa.pub': pub }, 'pki'),
  );
  if (!created) return decode(existing, 'sa.pub') ?? '';
  ctx.events.normal('ServiceAccountKeyCreated', `created service-account signing key ${name}`);
  return pub;
}

/** Key pairs found to belong together, by a digest of both: a pass checks each pair once, not on every pass. */
const matchingPairs = new Set<string>();

async function pairMatches(certificate: string, privateKey: string): Promise<boolean> {
  const digest = createHash('sha256').update(certificate).update('\0').update(privateKey).digest('hex');
  if (matchingPairs.has(digest)) return true;
  const matches = await keyMatchesCertificate({ certificate, privateKey }).catch(() => false);
  if (matches) {
    if (matchingPairs.size >= 20_000) matchingPairs.clear();
    matchingPairs.add(digest);
  }
  return matches;
}

/** Reasons a Secret is re-issued because its content is not what the operator wrote (an Event says so). */
const editedReasons = new Set(['kubeconfig edited', 'key does not match', 'keys added']);

/**
 * Whether the Secret still holds exactly what the operator would write for its certificate: the
 * keys it writes and no others, a key that belongs to the certificate, and for a kubeconfig the
 * very text renderKubeconfig makes of them (an added credential plugin, token, proxy or skipped
 * verification is an edit). The tenant may edit these Secrets; the operator puts back its own.
 */
async function editedReason(
  ctx: ReconcileContext,
  planned: PlannedCertificate,
  live: V1Secret,
  certificate: string,
  bundle: string,
): Promise<string | undefined> {
  const expected = planned.kubeconfig ? ['ca.crt', 'tls.crt', 'value'] : ['ca.crt', 'tls.crt', 'tls.key'];
  if (Object.keys(live.data ?? {}).some((k) => !expected.includes(k))) return 'keys added';
  if (planned.kubeconfig) {
    const value = decode(live, 'value') ?? '';
    const key = kubeconfigClientKey(value);
    if (key === undefined || !(await pairMatches(certificate, key))) return 'kubeconfig edited';
    const server = planned.kubeconfig.server ?? '';
    if (
      value !==
      renderKubeconfig({
        name: ctx.name,
        server,
        caCertificate: bundle,
        clientCertificate: certificate,
        clientKey: key,
      })
    )
      return 'kubeconfig edited';
    return undefined;
  }
  return (await pairMatches(certificate, decode(live, 'tls.key') ?? '')) ? undefined : 'key does not match';
}

/** Why the live Secret of `planned` must be (re-)written, or undefined while it is fine. */
async function reissueReason(
  ctx: ReconcileContext,
  planned: PlannedCertificate,
  live: V1Secret | undefined,
  ca: CertificateAndKey,
  bundle: string,
  chain: string,
  caInfo: CertificateDescription,
  renewBeforeMs: number,
): Promise<{ reason?: string; clipped?: boolean }> {
  const text = decode(live, 'tls.crt');
  if (!live || !text) return { reason: 'missing' };
  const [certificate = ''] = pemCertificates(text);
  // what follows the leaf: the compat chain for holders of an older CA, and nothing else
  if (text !== certificate + (planned.kubeconfig ? '' : chain)) return { reason: 'chain changed' };
  // what a hand edit may have broken: the kubeconfig or key beside the certificate
  if (planned.kubeconfig) {
    if (live.metadata?.annotations?.[serverAnnotation] !== planned.kubeconfig.server)
      return { reason: 'server changed' };
    if (!decode(live, 'value')) return { reason: 'kubeconfig missing' };
  } else if (!decode(live, 'tls.key')) {
    return { reason: 'key missing' };
  }
  // the CAs its holder trusts: they change in a CA rotation
  if (decode(live, 'ca.crt') !== bundle) return { reason: 'trusted CAs changed' };
  const edited = await editedReason(ctx, planned, live, certificate, bundle);
  if (edited) return { reason: edited };
  if (!(await isSignedBy(certificate, ca.certificate).catch(() => false))) return { reason: 'issued by another CA' };
  const verdict = renewalVerdict(
    describeCertificate(certificate),
    planned.spec,
    { subject: caInfo.issuer, notAfter: caInfo.notAfter },
    renewBeforeMs,
    ctx.now,
  );
  // a deadline already passed would requeue at once: a clipped leaf waits for a new CA instead
  if (verdict.renewAt > ctx.now) ctx.requeueAfter(verdict.renewAt.getTime() - ctx.now.getTime());
  return verdict.reason ? { reason: verdict.reason } : { clipped: verdict.clippedByIssuer ?? false };
}

function pkiInput(ctx: ReconcileContext, spec: ClusterSpec, validityMs: number) {
  return {
    name: ctx.name,
    namespace: ctx.namespace,
    metaDnsDomain: ctx.settings.metaDnsDomain,
    serviceCIDR: spec.network.serviceCIDR,
    dnsDomain: spec.network.dnsDomain,
    endpoint: ctx.facts.apiserverService.endpoint,
    apiserverAddresses: ctx.facts.apiserverService.addresses,
    tunnelAddresses: ctx.facts.apiserverService.tunnelAddresses,
    tunnelEndpoint: ctx.facts.apiserverService.tunnelEndpoint,
    etcdMembers: etcdMembers(spec),
    users: (spec.users ?? []).map((u) => ({
      name: u.name,
      groups: u.groups ?? [],
      validityMs: u.validity ? parseDuration(u.validity) : validityMs,
    })),
    validityMs,
    tunnel: tunnelEnabled(spec),
  };
}

/** Every Secret of the PKI: CAs, the service-account key, each leaf and kubeconfig. */
export function wantedPkiObjects(cluster: string, spec: ClusterSpec): ObjectRef[] {
  const leaves = plannedSecretNames({
    name: cluster,
    etcdMembers: etcdMembers(spec),
    tunnel: tunnelEnabled(spec),
    users: (spec.users ?? []).map((u) => u.name),
  });
  return [
    ...authorities.map((a) => ({ kind: 'Secret' as const, name: secrets.authority(cluster, a.authority) })),
    { kind: 'Secret', name: secrets.serviceAccount(cluster) },
    ...leaves.map((name) => ({ kind: 'Secret' as const, name })),
  ];
}

/** Marks the immutable copies pods mount of a Secret; such a copy goes once no Pod can mount it (see the garbage collection). */
export const mountedCopyAnnotation = 'kubeonkube.io/copy-of';

/**
 * The name of an immutable copy of `secret`, named by its content, made if missing. kube-apiserver
 * reloads its kubelet client certificate from the files and, when they changed, closes every
 * connection to kubelets: requests under way, logs and exec streams (client-go's transport with
 * ReloadTLSFiles). A Pod that mounts the Secret itself sees a renewal up to a minute after it was
 * written, while it still serves; with a copy per content, each Pod of a rollout keeps the files
 * it started with, and the new ones start with the new files.
 */
async function mountedCopy(
  ctx: ReconcileContext,
  secret: string,
  written: V1Secret | undefined,
): Promise<string | undefined> {
  // what this pass wrote, which the cache shows only later: one rollout per renewal, not two
  const source = written ?? cached<V1Secret>(ctx, 'Secret', secret);
  const data = source?.data;
  if (!data) return undefined;
  const digest = objectHash(data);
  const name = `${secret}-${digest.slice(0, 10)}`;
  const ours = (s: V1Secret) =>
    objectHash(s.data ?? {}) === digest &&
    s.metadata?.labels?.[clusterLabel] === ctx.name &&
    isOwnedBy(s, ctx.owner.uid) &&
    s.immutable === true;
  let live = cached<V1Secret>(ctx, 'Secret', name);
  if (!live) {
    const copy = ownedBy(
      {
        apiVersion: 'v1',
        kind: 'Secret',
        immutable: true,
        type: source.type,
        metadata: {
          name,
          namespace: ctx.namespace,
          labels: clusterLabels(ctx.name, 'pki'),
          annotations: { [mountedCopyAnnotation]: secret },
        },
        data,
      },
      ctx.owner,
    ) as V1Secret;
    const made = await ctx.writer.createOnly(copy);
    if (made.created) return name;
    live = made.live;
  }
  if (ours(live)) return name;
  // someone else's Secret under that name (made first, or edited): the apiserver would mount what
  // the operator never issued; it goes, and the next pass makes the copy (a Pod that starts
  // meanwhile waits for it; the template keeps the name, so nothing rolls for it)
  await ctx.writer.delete({ ...live, apiVersion: 'v1', kind: 'Secret' });
  ctx.events.warning(
    'SecretEdited',
    `Secret ${name} did not hold the copy of ${secret} its name says: deleted, to be made again`,
  );
  ctx.requeueAfter(1000);
  return name;
}

/** CertificatesReady from the CAs' ends and what had to wait. */
function certificatesCondition(
  ctx: ReconcileContext,
  caInfo: Record<Authority, CertificateDescription>,
  renewBeforeMs: number,
  clipped: string[],
  waiting: string[],
): ConditionUpdate {
  const [first] = authorities
    .map((a) => ({ secret: secrets.authority(ctx.name, a.authority), notAfter: caInfo[a.authority].notAfter }))
    .sort((a, b) => a.notAfter.getTime() - b.notAfter.getTime());
  if (first && first.notAfter <= ctx.now)
    return notReady(
      Reasons.CAExpired,
      `certificate authority ${first.secret} expired at ${first.notAfter.toISOString()}; nothing it signed is valid: rotate the CAs (annotate the Cluster with ${rotateCaAnnotation}=<a new value>)`,
    );
  if (first && first.notAfter.getTime() - ctx.now.getTime() < renewBeforeMs) {
    const cut =
      clipped.length > 0 ? `; ${clipped.length} certificate(s) end with it and cannot be renewed past it` : '';
    return notReady(
      Reasons.CAExpiring,
      `certificate authority ${first.secret} expires at ${first.notAfter.toISOString()}, within renewBefore${cut}: rotate the CAs (annotate the Cluster with ${rotateCaAnnotation}=<a new value>)`,
    );
  }
  if (waiting.length > 0)
    return notReady(
      Reasons.WaitingForEndpoint,
      `${waiting.join(', ')} wait for the apiserver's endpoint (a load balancer without an ingress address yet, and no spec.endpoint.host)`,
    );
  return ready('every certificate is current');
}

export async function reconcilePki(ctx: ReconcileContext): Promise<void> {
  const spec = ctx.cluster.spec;
  const validityMs = parseDuration(spec.certificates.validity);
  const renewBeforeMs = parseDuration(spec.certificates.renewBefore);
  const caValidityMs = parseDuration(spec.certificates.caValidity);

  const states = {} as Record<Authority, AuthorityState>;
  // a Cluster made before kubelets had a serving CA of their own: theirs come from the cluster CA
  const kubeletsServeClusterCa = cached<V1Secret>(ctx, 'Secret', secrets.authority(ctx.name, 'ca')) !== undefined;
  for (const a of authorities) {
    const legacy =
      a.authority === 'kubelet-serving-ca' && kubeletsServeClusterCa
        ? { bundle: trustBundle(states.ca), request: states.ca.request }
        : undefined;
    states[a.authority] = await ensureAuthority(ctx, a.authority, a.commonName, caValidityMs, legacy);
  }
  ctx.facts.pki.authorities = states;
  const cas = Object.fromEntries(authorities.map((a) => [a.authority, states[a.authority].signer])) as Record<
    Authority,
    CertificateAndKey
  >;
  const bundles = Object.fromEntries(authorities.map((a) => [a.authority, trustBundle(states[a.authority])])) as Record<
    Authority,
    string
  >;
  // served after each leaf a CA signs (see compat.crt in ca-rotation.ts); '' for most
  const chains = Object.fromEntries(
    authorities.map((a) => [a.authority, stillValid(states[a.authority].compat, ctx.now).join('')]),
  ) as Record<Authority, string>;
  await ensureServiceAccountKey(ctx);

  const plan = plannedCertificates(pkiInput(ctx, spec, validityMs));

  // each CA is parsed once per pass, not once per leaf it signs
  const caInfo = Object.fromEntries(
    authorities.map((a) => [a.authority, describeCertificate(cas[a.authority].certificate)]),
  ) as Record<Authority, CertificateDescription>;
  const issuedCerts = new Map<string, string>();
  const clipped: string[] = [];
  const waiting: string[] = [];
  const renewalRequest = ctx.cluster.metadata?.annotations?.[renewCertificatesAnnotation] ?? '';
  const renewalDue =
    renewalRequest !== '' && renewalRequest !== ctx.cluster.status?.certificates?.forcedRenewal?.request;
  const reissued: string[] = [];
  // first what is to be re-issued and why, announced in one Event before anything is written
  const verdicts: { planned: PlannedCertificate; live: V1Secret | undefined; reason: string | undefined }[] = [];
  for (const planned of plan) {
    if (planned.kubeconfig && planned.kubeconfig.server === undefined) {
      waiting.push(planned.secretName);
      continue;
    }
    const live = cached<V1Secret>(ctx, 'Secret', planned.secretName);
    const verdict = await reissueReason(
      ctx,
      planned,
      live,
      cas[planned.issuer],
      bundles[planned.trusts ?? planned.issuer],
      chains[planned.issuer],
      caInfo[planned.issuer],
      renewBeforeMs,
    );
    const reason = verdict.reason ?? (renewalDue ? `renewal requested (${renewCertificatesAnnotation})` : undefined);
    if (verdict.clipped && !reason) clipped.push(planned.secretName);
    if (reason && live) reissued.push(`${planned.secretName} (${reason})`);
    verdicts.push({ planned, live, reason });
  }
  if (reissued.length > 0) ctx.events.normal('CertificatesRenewing', `re-issuing ${reissued.join(', ')}`);
  for (const { planned, reason } of verdicts) {
    if (reason && editedReasons.has(reason))
      ctx.events.warning(
        'SecretEdited',
        `Secret ${planned.secretName} did not hold what the operator issued (${reason}): re-issued`,
      );
  }
  let earliestRenewed: Date | undefined;
  const written = new Map<string, V1Secret>();
  for (const { planned, live, reason } of verdicts) {
    const server = planned.kubeconfig?.server;
    let certificate = pemCertificates(decode(live, 'tls.crt') ?? '')[0] ?? '';
    if (reason) {
      const issued = await issueCertificate(cas[planned.issuer], planned.spec, ctx.now);
      certificate = issued.certificate;
      const secret =
        server !== undefined
          ? secretObject(
              ctx,
              planned.secretName,
              'Opaque',
              {
                value: renderKubeconfig({
                  name: ctx.name,
                  server,
                  caCertificate: bundles.ca,
                  clientCertificate: issued.certificate,
                  clientKey: issued.privateKey,
                }),
                'tls.crt': issued.certificate,
                // the CAs the kubeconfig trusts, beside it: the controller-manager hands them to the business cluster's pods
                'ca.crt': bundles.ca,
              },
              'kubeconfig',
              { [serverAnnotation]: server },
            )
          : secretObject(
              ctx,
              planned.secretName,
              'kubernetes.io/tls',
              {
                'tls.crt': issued.certificate + chains[planned.issuer],
                'tls.key': issued.privateKey,
                'ca.crt': bundles[planned.trusts ?? planned.issuer],
              },
              'pki',
            );
      written.set(planned.secretName, secret);
      if (reason === 'missing' && !live) {
        // a Secret the cache has not seen yet may exist: creating never overwrites it
        const { created, live: existing } = await ctx.writer.createOnly(secret);
        if (!created) certificate = pemCertificates(decode(existing, 'tls.crt') ?? '')[0] ?? '';
      } else {
        // what the tenant added to an edited Secret stays under an apply (it is another field
        // manager's): that one is written whole
        if (live && editedReasons.has(reason)) await ctx.writer.replace(secret, live);
        else await ctx.writer.apply(secret, live);
        const notAfter = describeCertificate(certificate).notAfter;
        if (!earliestRenewed || notAfter < earliestRenewed) earliestRenewed = notAfter;
      }
      ctx.facts.pki.certificates.lastRotation = ctx.now;
      ctx.requeueAfter(planned.spec.validityMs - renewBeforeMs);
    }
    issuedCerts.set(planned.secretName, certificate);
    const notAfter = describeCertificate(certificate).notAfter;
    ctx.facts.pki.certificates.expiries.set(planned.secretName, notAfter);
    if (!ctx.facts.pki.certificates.notAfter || notAfter < ctx.facts.pki.certificates.notAfter)
      ctx.facts.pki.certificates.notAfter = notAfter;
  }
  if (earliestRenewed)
    ctx.events.normal(
      'CertificatesRotated',
      `re-issued ${reissued.length} certificate(s); the first of them ends at ${earliestRenewed.toISOString()}; their components roll onto them`,
    );
  for (const a of authorities) {
    const notAfter = caInfo[a.authority].notAfter;
    ctx.facts.pki.certificates.expiries.set(secrets.authority(ctx.name, a.authority), notAfter);
    if (!ctx.facts.pki.certificates.caNotAfter || notAfter < ctx.facts.pki.certificates.caNotAfter)
      ctx.facts.pki.certificates.caNotAfter = notAfter;
  }
  // a CA rotation moves on only from a pass that found every certificate as it should be
  ctx.facts.pki.current =
    reissued.length === 0 &&
    waiting.length === 0 &&
    plan.every((p) => issuedCerts.has(p.secretName) && cached<V1Secret>(ctx, 'Secret', p.secretName) !== undefined);
  // honoured once every leaf was written (a kubeconfig still waiting for the endpoint is issued
  // new when it can be); a pass that fails before here re-issues them all again, which is harmless
  if (renewalDue && waiting.length === 0) {
    ctx.status.certificates = {
      ...ctx.status.certificates,
      forcedRenewal: { request: renewalRequest, time: ctx.now.toISOString() },
    };
    ctx.events.normal(
      'CertificatesRenewed',
      `re-issued ${reissued.length} certificates as asked by ${renewCertificatesAnnotation}=${renewalRequest}`,
    );
  }

  ctx.facts.pki.kubeletClientSecret = await mountedCopy(
    ctx,
    secrets.apiserverKubeletClient(ctx.name),
    written.get(secrets.apiserverKubeletClient(ctx.name)),
  );

  // a component's pods roll when any certificate they mount changes
  const mounted = mountedSecrets(ctx.name);
  // (each Secret by its name without the Cluster's: the hashes of earlier releases stay, and no
  // control plane rolls because the operator was upgraded)
  const hashOf = (...mounted: string[]) => {
    const h = createHash('sha256');
    for (const secret of mounted) h.update(secret.slice(ctx.name.length + 1)).update(issuedCerts.get(secret) ?? '');
    for (const a of authorities) h.update(cas[a.authority].certificate).update(bundles[a.authority]);
    return h.digest('hex').slice(0, 16);
  };
  // etcd reads its key pair from the files on every TLS handshake, as server and as a peer's
  // client (client/pkg/transport: TLSInfo's GetCertificate and GetClientCertificate), but its
  // trusted CAs only when it starts: a re-issued leaf reaches it through the kubelet's update of
  // the Secret volume, without a restart; only a change of what it trusts restarts members
  const etcdTrust = createHash('sha256').update(bundles['etcd-ca']).digest('hex').slice(0, 16);
  ctx.facts.pki.inputHashes = {
    // the certificates each mounts (the service-account key pair is never re-issued)
    apiserver: hashOf(
      mounted.apiserver.tls,
      mounted.apiserver.etcdClient,
      mounted.apiserver.kubeletClient,
      mounted.apiserver.frontProxyClient,
      mounted.apiserver.tunnelServer,
    ),
    controllerManager: hashOf(mounted.controllerManager.kubeconfig),
    scheduler: hashOf(mounted.scheduler.kubeconfig),
    etcd: Array.from({ length: etcdMembers(spec) }, () => etcdTrust),
  };
  ctx.setCondition('CertificatesReady', certificatesCondition(ctx, caInfo, renewBeforeMs, clipped, waiting));
}
