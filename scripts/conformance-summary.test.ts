import { describe, expect, it } from 'vitest';
import { chosen, tally, testCases } from './conformance-summary.ts';

const report = (cases: [string, string][]) =>
  `<?xml version="1.0"?><testsuites><testsuite name="Kubernetes e2e suite">${cases
    .map(
      ([name, status]) =>
        `<testcase name="${name}" classname="Kubernetes e2e suite" status="${status}" time="1"></testcase>`,
    )
    .join('')}</testsuite></testsuites>`;

describe('the conformance summary', () => {
  it('reads ginkgo JUnit test cases, names unescaped', () => {
    expect(testCases(report([['[It] a &quot;b&quot; [Conformance]', 'failed']]))).toEqual([
      { name: '[It] a "b" [Conformance]', status: 'failed' },
    ]);
  });

  it('counts each focused spec once, by the phase that ran it', () => {
    const parallel = report([
      ['[SynchronizedBeforeSuite]', 'passed'],
      ['[It] [sig-network] dns [Conformance]', 'passed'],
      ['[It] [sig-apps] serial thing [Serial] [Conformance]', 'skipped'],
      ['[It] [sig-node] not conformance', 'skipped'],
      ['[It] [sig-node] broken [Conformance]', 'failed'],
    ]);
    const serial = report([
      ['[It] [sig-network] dns [Conformance]', 'skipped'],
      ['[It] [sig-apps] serial thing [Serial] [Conformance]', 'passed'],
      ['[It] [sig-node] broken [Conformance]', 'skipped'],
    ]);
    const { outcomes, failed } = tally([parallel, serial], chosen());
    expect(Object.fromEntries(outcomes)).toEqual({
      '[It] [sig-network] dns [Conformance]': 'passed',
      '[It] [sig-apps] serial thing [Serial] [Conformance]': 'passed',
      '[It] [sig-node] broken [Conformance]': 'failed',
    });
    expect(failed).toEqual(['[It] [sig-node] broken [Conformance]']);
  });

  it('chooses conformance specs by the focus and skip of the run', () => {
    const network = chosen('sig-network', 'dns');
    expect(network('[It] [sig-network] services [Conformance]')).toBe(true);
    expect(network('[It] [sig-network] dns [Conformance]')).toBe(false);
    expect(network('[It] [sig-node] pods [Conformance]')).toBe(false);
    expect(network('[It] [sig-network] not conformance')).toBe(false);
  });
});
