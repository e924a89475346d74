// The reverse tunnel, end to end: the business apiserver asked for a ready node's kubelet
// /healthz, which it dials through its egress selector, i.e. the tunnel. TunnelConnected says how
// it went; the agents the tunnel servers count go into status.tunnel.
import { request, type RequestOptions } from 'node:https';
import type { KubeConfig, V1Node } from '@kubernetes/client-node';
import type { BusinessClient } from '../../../business/clients.ts';
import { secrets } from '../../../names/cluster-names.ts';
import { notReady, ready, Reasons } from '../conditions.ts';
import { apiserverPods, serverAgents } from '../tunnel-facts.ts';
import type { BusinessContext } from './context.ts';
import { isReady } from '../../../kube/ready.ts';

/** A GET through the business apiserver with a deadline: the answer's status and at most 4 KiB of its body. */
export async function businessGet(
  kc: KubeConfig,
  server: string,
  path: string,
  timeoutMs = 5000,
): Promise<{ status: number; body: string }> {
  const url = new URL(path, server);
  const options: RequestOptions = {
    method: 'GET',
    hostname: url.hostname,
    port: url.port,
    path: url.pathname + url.search,
    timeout: timeoutMs,
  };
  await kc.applyToHTTPSOptions(options);
  return new Promise((resolve, reject) => {
    // the whole exchange has the deadline, not only each silence: a trickling answer is cut too
    const deadline = setTimeout(
      () => req.destroy(new Error(`no whole answer within ${timeoutMs / 1000} s`)),
      timeoutMs,
    );
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
      res.on('end', () => {
        clearTimeout(deadline);
        resolve({ status: res.statusCode ?? 0, body });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)));
    req.on('error', (err) => {
      clearTimeout(deadline);
      reject(err);
    });
    req.end();
  });
}

/** Connected agents as each ready tunnel server counts them (its metrics): the fewest any server holds. */
async function agentsPerServer(ctx: BusinessContext): Promise<number | undefined> {
  const ready = apiserverPods(ctx).filter(isReady);
  const known = (await Promise.all(ready.map(serverAgents))).filter((c): c is number => c !== undefined);
  return known.length > 0 ? Math.min(...known) : undefined;
}

/** Sets TunnelConnected; true when the round trip went through. */
export async function checkTunnel(ctx: BusinessContext, client: BusinessClient, nodes: V1Node[]): Promise<boolean> {
  const readyNodes = nodes.filter(isReady);
  ctx.report.tunnelAgents = await agentsPerServer(ctx);
  const node = readyNodes[0]?.metadata?.name;
  if (!node) {
    ctx.setCondition(
      'TunnelConnected',
      notReady(
        Reasons.NoNodes,
        `no node is ready; the tunnel agent runs on one (a worker joins with the Secret ${secrets.join(ctx.name)})`,
      ),
    );
    return false;
  }
  try {
    const res = await businessGet(client.kc, client.server, `/api/v1/nodes/${encodeURIComponent(node)}/proxy/healthz`);
    if (res.status === 200) {
      // the agent count is in status.tunnel: a message that moved with it would be a write per change
      ctx.setCondition('TunnelConnected', ready(`the apiserver reached node ${node}'s kubelet through the tunnel`));
      return true;
    }
    const reason = res.body.match(/"message":"([^"]*)"/)?.[1] ?? res.body.slice(0, 300);
    ctx.setCondition(
      'TunnelConnected',
      notReady(
        Reasons.TunnelRoundTripFailed,
        `the apiserver could not reach node ${node}'s kubelet through the tunnel: ${reason}`,
      ),
    );
  } catch (err) {
    ctx.setCondition(
      'TunnelConnected',
      notReady(
        Reasons.TunnelRoundTripFailed,
        `asking the apiserver for node ${node}'s kubelet failed: ${(err as Error).message}`,
      ),
    );
  }
  return false;
}
