import { describe, expect, it } from 'vitest';
import {
  bootstrapTokenRenewBeforeMs,
  bootstrapTokenTtlMs,
  newBootstrapToken,
  parseBootstrapToken,
  tokenRenewAt,
} from './join.ts';

describe('bootstrap tokens', () => {
  const now = new Date('2026-12-04T12:00:00.123Z');

  it('expire a day after they are made, in the form the token authenticator reads, and are renewed eight hours before', () => {
    const token = newBootstrapToken(now);
    expect(token.id).toMatch(/^[a-z0-9]{6}$/);
    expect(token.secret).toMatch(/^[a-z0-9]{16}$/);
    expect(token.expires).toBe('2026-12-05T12:00:00Z');
    expect(Date.parse(token.expires!) - now.getTime()).toBeLessThanOrEqual(bootstrapTokenTtlMs);
    expect(tokenRenewAt(token).toISOString()).toBe(
      new Date(Date.parse(token.expires!) - bootstrapTokenRenewBeforeMs).toISOString(),
    );
  });

  it('are read back from the join Secret, and one without an end is due at once', () => {
    expect(parseBootstrapToken('abcdef.0123456789abcdef', '2026-12-05T12:00:00Z')).toEqual({
      id: 'abcdef',
      secret: '0123456789abcdef',
      expires: '2026-12-05T12:00:00Z',
    });
    const legacy = parseBootstrapToken('abcdef.0123456789abcdef');
    expect(legacy?.expires).toBeUndefined();
    expect(tokenRenewAt(legacy!).getTime()).toBe(0);
    expect(parseBootstrapToken('abcdef.0123456789abcdef', 'tomorrow')?.expires).toBeUndefined();
    expect(parseBootstrapToken('ABCDEF.0123456789abcdef')).toBeUndefined();
  });
});
