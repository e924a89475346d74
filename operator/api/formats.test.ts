import { describe, expect, it } from 'vitest';
import { cidrContainsCidr, durationMs, parseCidr, parseGoDuration } from './formats.ts';

describe('Go durations', () => {
  it.each([
    ['8760h', 8760n * 3_600_000_000_000n],
    ['1h30m', 5_400_000_000_000n],
    ['1.5s', 1_500_000_000n],
    ['300ms', 300_000_000n],
    ['2us', 2000n],
    ['2µs', 2000n],
    ['0', 0n],
    ['-5m', -300_000_000_000n],
  ])('%s', (s, ns) => {
    expect(parseGoDuration(s)).toBe(ns);
  });

  it.each(['', '1', '1d', 'h', '1h 30m', '.', '99999999999h'])('refuses %j', (s) => {
    expect(parseGoDuration(s)).toBeUndefined();
  });

  it('converts to milliseconds', () => {
    expect(durationMs('720h')).toBe(720 * 3600_000);
    expect(() => durationMs('1 day')).toThrow(/not a Go duration/);
  });
});

describe('CIDRs, as the apiserver CEL reads them', () => {
  it.each([
    '10.96.0.0/12',
    '0.0.0.0/0',
    '10.96.0.1/12',
    'fd00::/108',
    '::/0',
    '2001:db8::1/64',
    '1:2:3:4:5:6:7::/112',
    '::1.2.3.4/120',
    '1:2:3:4:5:6:1.2.3.4/128',
    'FD00::/8',
  ])('accepts %s', (s) => {
    expect(parseCidr(s)).toBeDefined();
  });

  it.each([
    '10.96.0.0',
    '10.96.0.0/33',
    '010.96.0.0/12',
    '10.96.0/12',
    '10.96.0.0/012',
    '10.96.0.0/+1',
    'fd00::/129',
    'fe80::1%eth0/64',
    '::ffff:10.0.0.0/104',
    '1::2::3/64',
    '1:2:3:4:5:6:7:8:9/64',
    '12345::/16',
    'banana/8',
    '',
  ])('refuses %j', (s) => {
    expect(parseCidr(s)).toBeUndefined();
  });

  it('contains what lies inside, of the same family', () => {
    const c = (s: string) => parseCidr(s) ?? expect.fail(s);
    expect(cidrContainsCidr(c('10.0.0.0/8'), c('10.244.0.0/16'))).toBe(true);
    expect(cidrContainsCidr(c('10.244.0.0/16'), c('10.0.0.0/8'))).toBe(false);
    expect(cidrContainsCidr(c('10.96.0.0/12'), c('10.112.0.0/12'))).toBe(false);
    expect(cidrContainsCidr(c('0.0.0.0/0'), c('fd00::/8'))).toBe(false);
    expect(cidrContainsCidr(c('fd00::/8'), c('fd00:10::/64'))).toBe(true);
  });
});
