// The apiserver reaches the kubelet for the streaming calls users rely on: logs, exec and
// port-forward, each through the real kubectl.
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxImage } from './images.ts';
import { apply, eventually, kubectl, kubectlBackground, namespaceObject, uniqueNamespace } from './kubectl.ts';

const ns = uniqueNamespace('e2e-streaming');

function httpGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    request(url, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(body));
    })
      .on('error', reject)
      .end();
  });
}

beforeAll(async () => {
  await apply(namespaceObject(ns), {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'httpd', namespace: ns },
    spec: {
      containers: [
        {
          name: 'httpd',
          image: busyboxImage,
          imagePullPolicy: 'IfNotPresent',
          command: [
            'sh',
            '-c',
            'mkdir -p /www && echo "served by httpd" > /www/index.html && echo "httpd starting" && exec httpd -f -p 8080 -h /www',
          ],
          readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
        },
      ],
    },
  });
  await kubectl(['-n', ns, 'wait', '--for=condition=Ready', 'pod/httpd', '--timeout=120s']);
});
afterAll(async () => {
  await kubectl(['delete', 'namespace', ns, '--wait=false']);
});

describe('kubectl against a pod on the node', () => {
  it('reads its logs', async () => {
    expect(await kubectl(['-n', ns, 'logs', 'httpd'])).toContain('httpd starting');
  });

  it('executes a command in it', async () => {
    expect(await kubectl(['-n', ns, 'exec', 'httpd', '--', 'cat', '/www/index.html'])).toBe('served by httpd\n');
    await expect(kubectl(['-n', ns, 'exec', 'httpd', '--', 'sh', '-c', 'exit 3'])).rejects.toThrow(/exit code 3/);
  });

  it('forwards a local port to it', async () => {
    const forward = kubectlBackground(['-n', ns, 'port-forward', 'pod/httpd', ':8080']);
    try {
      let output = '';
      forward.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
      const port = await eventually(
        'port-forward to listen',
        () => Promise.resolve(/Forwarding from 127\.0\.0\.1:(\d+)/.exec(output)?.[1]),
        30_000,
      );
      expect(await httpGet(`http://127.0.0.1:${port}/index.html`)).toBe('served by httpd\n');
    } finally {
      forward.kill();
    }
  });
});
