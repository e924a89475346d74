import { describe, expect, it } from 'vitest';
import { containsDesired, quantityValue } from './drift.ts';

describe('quantityValue', () => {
  it.each([
    ['500m', 0.5],
    ['1Gi', 2 ** 30],
    ['2', 2],
    [2, 2],
    ['1.5Gi', 1.5 * 2 ** 30],
    ['1e3', 1000],
    ['100M', 1e8],
  ])('%s', (q, v) => expect(quantityValue(q)).toBe(v));
  it.each(['abc', '1Gb', '', 'v1.34'])('refuses %s', (q) => expect(quantityValue(q)).toBeUndefined());
});

describe('containsDesired', () => {
  const desired = {
    metadata: { labels: { a: '1' }, annotations: {} },
    spec: {
      replicas: 3,
      template: {
        spec: {
          nodeSelector: {},
          tolerations: [],
          containers: [{ name: 'c', resources: { requests: { cpu: '0.5', memory: '256Mi' } } }],
        },
      },
    },
  };
  const live = {
    metadata: { labels: { a: '1', extra: 'x' }, resourceVersion: '7' },
    spec: {
      replicas: 3,
      progressDeadlineSeconds: 600,
      template: {
        spec: {
          dnsPolicy: 'ClusterFirst',
          containers: [
            { name: 'c', imagePullPolicy: 'IfNotPresent', resources: { requests: { cpu: '500m', memory: '256Mi' } } },
          ],
        },
      },
    },
  };

  it('holds for an object as the apiserver stores it: defaults added, empty maps dropped, quantities canonical', () => {
    expect(containsDesired(live, desired)).toBe(true);
  });

  it('sees a scaled Deployment, a removed label, a changed or missing list item', () => {
    expect(containsDesired({ ...live, spec: { ...live.spec, replicas: 0 } }, desired)).toBe(false);
    expect(containsDesired({ ...live, metadata: { labels: { extra: 'x' } } }, desired)).toBe(false);
    expect(containsDesired({ ...live, spec: { ...live.spec, template: { spec: { containers: [] } } } }, desired)).toBe(
      false,
    );
    const bigger = structuredClone(live);
    bigger.spec.template.spec.containers[0]!.resources.requests.cpu = '1';
    expect(containsDesired(bigger, desired)).toBe(false);
  });
});

describe('containsDesired with client-node spellings', () => {
  it("takes a listed NetworkPolicy's _from for from", () => {
    const desired = { spec: { ingress: [{ from: [{ podSelector: { matchLabels: { a: '1' } } }] }] } };
    expect(
      containsDesired({ spec: { ingress: [{ _from: [{ podSelector: { matchLabels: { a: '1' } } }] }] } }, desired),
    ).toBe(true);
    expect(containsDesired({ spec: { ingress: [{ ports: [] }] } }, desired)).toBe(false);
  });
});
